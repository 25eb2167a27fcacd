// The chart's CRD files (charts/ambit/crds/*.yaml), found from this package wherever the tests run from.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export interface CrdFile {
  path: string;
  text: string;
  /** Every document, aliases resolved. */
  documents: Record<string, any>[];
}

export function crdDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'charts', 'ambit', 'crds');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`charts/ambit/crds not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function loadCrdFiles(): CrdFile[] {
  const dir = crdDirectory();
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => {
    const path = join(dir, f);
    const text = readFileSync(path, 'utf8');
    const docs = parseAllDocuments(text);
    const documents: Record<string, any>[] = [];
    for (const d of docs) {
      if (d.errors.length > 0) throw new Error(`${path}: ${d.errors.map((e) => e.message).join('; ')}`);
      const js = d.toJS({ maxAliasCount: -1 }) as Record<string, any> | null;
      if (js) documents.push(js);
    }
    return { path, text, documents };
  });
}
