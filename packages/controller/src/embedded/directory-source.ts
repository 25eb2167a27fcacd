// Embedded mode's source of objects: every *.yaml / *.yml / *.json file in a directory (multi-document YAML,
// `kind: List` too), fed into the same object index and work queue as the informers would. The directory is
// watched; a changed file is re-read as a whole, objects that left it are deleted. A file that does not parse
// (or holds an invalid object) is reported with its name and line, and its last good objects stay in force.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Logger } from 'pino';
import { LineCounter, parseAllDocuments } from 'yaml';
import { WATCHED_KINDS, apiVersionOf, isWatchedKind, type KubeObject } from '@ambit/api';
import type { ObjectIndexLike } from '../k8s/contracts.js';
import { objectKey } from '../k8s/dispatcher.js';
import type { WorkQueue } from '../k8s/work-queue.js';

const EXTENSIONS = ['.yaml', '.yml', '.json'];

export interface DirectorySourceOptions {
  dir: string;
  index: ObjectIndexLike;
  queue: WorkQueue<string>;
  logger: Logger;
  /** Quiet time after a change before re-reading. Default 100 ms. */
  debounceMs?: number;
  /** Full rescan interval, in case a watch event is missed. Default 5 s. */
  rescanMs?: number;
}

export interface DirectorySource {
  /** Reads the directory once (resolves when the objects are in the index) and starts watching it. */
  start(): Promise<void>;
  stop(): void;
  /** Files currently rejected, with why (file:line:column: message). */
  errors(): Record<string, string>;
  /** Resolves after the next completed scan (tests). */
  nextScan(): Promise<void>;
}

interface FileState {
  hash: string;
  /** key -> object, of the last good parse. */
  objects: Map<string, KubeObject>;
}

/** Parses one file's text into objects; throws an Error naming the file, line and field. */
export function parseConfigFile(file: string, text: string): KubeObject[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const out: KubeObject[] = [];
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    const err = doc.errors[0];
    if (err) {
      const pos = lineCounter.linePos(err.pos[0]);
      throw new Error(`${file}:${pos.line}:${pos.col}: ${err.message.split('\n')[0]}`);
    }
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const line = doc.contents ? lineCounter.linePos(doc.contents.range[0]).line : 1;
    const items = isObject(value) && value.kind === 'List' && Array.isArray(value.items) ? value.items as unknown[] : [value];
    for (const item of items) out.push(validate(item, `${file}:${line}`));
  }
  return out;
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validate(value: unknown, where: string): KubeObject {
  if (!isObject(value)) throw new Error(`${where}: a document must be a Kubernetes object (a mapping), got ${Array.isArray(value) ? 'a list' : typeof value}`);
  const kind = value.kind;
  if (typeof kind !== 'string' || !kind) throw new Error(`${where}: kind: required`);
  if (!isWatchedKind(kind)) throw new Error(`${where}: kind: "${kind}" is not one the controller uses (${Object.keys(WATCHED_KINDS).join(', ')})`);
  if (!isObject(value.metadata) || typeof value.metadata.name !== 'string' || !value.metadata.name) {
    throw new Error(`${where}: ${kind}: metadata.name: required`);
  }
  const expected = apiVersionOf(kind);
  if (value.apiVersion !== undefined && value.apiVersion !== expected && !(typeof value.apiVersion === 'string' && value.apiVersion.startsWith(`${WATCHED_KINDS[kind].group}/`))) {
    throw new Error(`${where}: ${kind} ${value.metadata.name}: apiVersion: "${String(value.apiVersion)}" is not ${expected}`);
  }
  const obj = value as KubeObject;
  obj.apiVersion ??= expected;
  if (WATCHED_KINDS[kind].namespaced) obj.metadata.namespace ??= 'default';
  else delete obj.metadata.namespace;
  // What the apiserver would have added: a stable uid (from the name, so restarts agree) and a generation.
  obj.metadata.uid ??= uidFor(kind, obj.metadata.namespace ?? '', obj.metadata.name);
  obj.metadata.generation ??= 1;
  return obj;
}

function uidFor(kind: string, namespace: string, name: string): string {
  const h = createHash('sha256').update(`${kind}/${namespace}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function createDirectorySource(options: DirectorySourceOptions): DirectorySource {
  const logger = options.logger.child({ component: 'config-dir', dir: options.dir });
  const files = new Map<string, FileState>();
  const errors = new Map<string, string>();
  /** key -> file that defines it (the last file read wins a duplicate). */
  const owner = new Map<string, string>();
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let rescan: NodeJS.Timeout | undefined;
  let scanning: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const scanWaiters: (() => void)[] = [];

  async function listFiles(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue; // the state dir (.ambit) and editors' temp files
      const p = join(dir, e.name);
      if (e.isDirectory()) out.push(...await listFiles(p));
      else if (EXTENSIONS.some((x) => e.name.endsWith(x))) out.push(p);
    }
    return out.sort();
  }

  function apply(file: string, next: Map<string, KubeObject>): void {
    const prev = files.get(file)?.objects ?? new Map<string, KubeObject>();
    for (const [key, obj] of next) {
      const other = owner.get(key);
      if (other && other !== file && files.get(other)?.objects.has(key)) {
        logger.warn({ object: key, files: [other, file].map((f) => relative(options.dir, f)) }, 'object defined in two files; the later one wins');
      }
      owner.set(key, file);
      const old = prev.get(key);
      if (old && JSON.stringify(old) === JSON.stringify(obj)) continue;
      options.index.set(obj);
      options.queue.add(key);
    }
    for (const [key, obj] of prev) {
      if (next.has(key) || owner.get(key) !== file) continue;
      owner.delete(key);
      options.index.delete(obj.kind!, obj.metadata.namespace ?? '', obj.metadata.name);
      options.queue.add(key);
    }
  }

  async function scanOnce(): Promise<void> {
    let present: string[];
    try {
      present = await listFiles(options.dir);
    } catch (err) {
      errors.set(options.dir, `cannot read the configuration directory: ${(err as Error).message}`);
      logger.error({ err: (err as Error).message }, 'cannot read the configuration directory; keeping the objects read so far');
      return;
    }
    errors.delete(options.dir);
    for (const file of present) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue; // removed between readdir and read: the next scan sees it gone
      }
      const hash = createHash('sha256').update(text).digest('hex');
      const state = files.get(file);
      if (state?.hash === hash) continue;
      const name = relative(options.dir, file);
      try {
        const objs = parseConfigFile(name, text);
        const next = new Map<string, KubeObject>();
        for (const o of objs) next.set(objectKey(o.kind!, o.metadata.namespace ?? '', o.metadata.name), o);
        apply(file, next);
        files.set(file, { hash, objects: next });
        if (errors.delete(file)) logger.info({ file: name }, 'file is valid again');
        logger.debug({ file: name, objects: next.size }, 'read configuration file');
      } catch (err) {
        const msg = (err as Error).message;
        if (errors.get(file) !== msg) logger.error({ file: name, err: msg }, 'invalid configuration file; keeping its last good objects');
        errors.set(file, msg);
        // Remember the hash so an unchanged bad file is not re-reported; its last good objects stay.
        files.set(file, { hash, objects: state?.objects ?? new Map() });
      }
    }
    const presentSet = new Set(present);
    for (const file of [...files.keys()]) {
      if (presentSet.has(file)) continue;
      apply(file, new Map());
      files.delete(file);
      errors.delete(file);
      logger.info({ file: relative(options.dir, file) }, 'configuration file removed; its objects are deleted');
    }
  }

  function scan(): Promise<void> {
    if (scanning) {
      again = true;
      return scanning;
    }
    scanning = (async () => {
      do {
        again = false;
        await scanOnce();
      } while (again && !stopped);
    })().finally(() => {
      scanning = undefined;
      for (const w of scanWaiters.splice(0)) w();
    });
    return scanning;
  }

  function schedule(): void {
    if (stopped) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      void scan();
    }, options.debounceMs ?? 100);
  }

  return {
    async start() {
      await stat(options.dir).catch((err: Error) => {
        throw new Error(`AMBIT_CONFIG_DIR ${options.dir}: ${err.message}`, { cause: err });
      });
      await scan();
      try {
        watcher = watch(options.dir, { recursive: true }, () => schedule());
        watcher.on('error', (err) => logger.warn({ err: err.message }, 'directory watch failed; relying on periodic rescans'));
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'cannot watch the directory; relying on periodic rescans');
      }
      const tick = (): void => {
        rescan = setTimeout(() => {
          void scan().finally(() => {
            if (!stopped) tick();
          });
        }, options.rescanMs ?? 5_000);
        rescan.unref();
      };
      tick();
    },
    stop() {
      stopped = true;
      watcher?.close();
      if (debounce) clearTimeout(debounce);
      if (rescan) clearTimeout(rescan);
    },
    errors: () => Object.fromEntries([...errors].map(([f, m]) => [relative(options.dir, f) || f, m])),
    nextScan() {
      return new Promise((resolve) => {
        scanWaiters.push(resolve);
        schedule();
      });
    },
  };
}
