import { readFileSync } from 'node:fs';

/** This package's version (package.json), the one `ambitctl version` prints. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
