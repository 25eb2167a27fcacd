// Flag parsing for every command, built on node:util parseArgs so unknown flags and missing values fail with
// parseArgs' own clear messages. Global flags (kubectl's) are accepted anywhere on the command line.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './io.js';

export type FlagSpec = NonNullable<ParseArgsConfig['options']>;

export const GLOBAL_FLAGS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpec;

export interface Parsed<T> {
  values: T;
  positionals: string[];
}

export function parseFlags(argv: readonly string[], flags: FlagSpec): Parsed<Record<string, string | boolean | string[] | undefined>> {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: { ...GLOBAL_FLAGS, ...flags }, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    throw new CliError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

export function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function bool(values: Record<string, unknown>, name: string): boolean {
  return values[name] === true;
}

/** Go-style durations as istioctl takes them: 90s, 2m, 1m30s, 500ms; a bare number is seconds. */
export function parseDurationMs(value: string, flag: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of value.matchAll(re)) {
    if (m.index !== consumed) break;
    consumed += m[0].length;
    total += Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[m[2] as 'ms' | 's' | 'm' | 'h'];
  }
  if (consumed !== value.length || value.length === 0) throw new CliError(`invalid duration "${value}" for --${flag}: use e.g. 90s, 2m, 1m30s`);
  return total;
}
