// How the waypoint learns its configuration objects: the controller's delta xDS stream (CONFIG_OBJECT_TYPE_URL,
// through the agent's xDS client's raw-type hook) or a local YAML file/directory. Both feed the same ConfigStore.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CONFIG_OBJECT_TYPE_URL, configObjectName, decodeConfigObject, type KubeObject } from '@ambit/api';
import type { XdsClientOptions } from '@ambit/ztunnel';
import type { ConfigStore } from '../state/config-store.js';
import type { Diagnostic } from '../routing/types.js';

type RawXdsType = NonNullable<XdsClientOptions['rawTypes']>[number];

/** The xDS raw-type handler: decodes each resource's JSON, applies the batch, returns the rejections to NACK. */
export function configObjectXdsType(store: ConfigStore): RawXdsType {
  return {
    typeUrl: CONFIG_OBJECT_TYPE_URL,
    apply({ resources, removed }) {
      const upserts: KubeObject[] = [];
      const undecodable: Diagnostic[] = [];
      for (const r of resources) {
        if (r.typeUrl !== undefined && r.typeUrl !== CONFIG_OBJECT_TYPE_URL) {
          undecodable.push({ name: r.name, message: `${r.name}: payload type ${r.typeUrl} in a ${CONFIG_OBJECT_TYPE_URL} response` });
          continue;
        }
        try {
          if (!r.value) throw new Error('the resource has no payload');
          const obj = decodeConfigObject(r.value);
          const name = configObjectName(obj);
          if (name !== r.name) throw new Error(`resource name ${r.name} does not match the object inside (${name})`);
          upserts.push(obj);
        } catch (err) {
          undecodable.push({ name: r.name, message: `${r.name}: ${(err as Error).message}` });
        }
      }
      return store.apply({ upserts, removed, undecodable }).rejected;
    },
  };
}

/** Parses a multi-document YAML text into configuration objects (documents without kind/metadata are reported). */
export function parseConfigObjects(text: string, file: string): { objects: KubeObject[]; problems: Diagnostic[] } {
  const objects: KubeObject[] = [];
  const problems: Diagnostic[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length) {
      problems.push({ name: `${file}#${i}`, message: `${file}: document ${i + 1}: ${doc.errors[0]!.message}` });
      return;
    }
    const o = doc.toJS() as KubeObject | null;
    if (o === null || o === undefined) return;
    if (typeof o !== 'object' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
      problems.push({ name: `${file}#${i}`, message: `${file}: document ${i + 1}: not a Kubernetes object (kind and metadata.name are required)` });
      return;
    }
    objects.push({ ...o, metadata: { namespace: 'default', ...o.metadata } });
  });
  return { objects, problems };
}

/** Reads a file, or every *.yaml / *.yml / *.json file of a directory (sorted), as configuration objects. */
export async function readConfigObjects(path: string): Promise<{ objects: KubeObject[]; problems: Diagnostic[] }> {
  const st = await stat(path);
  const files = st.isDirectory()
    ? (await readdir(path)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort().map((f) => join(path, f))
    : [path];
  const objects: KubeObject[] = [];
  const problems: Diagnostic[] = [];
  for (const f of files) {
    const r = parseConfigObjects(await readFile(f, 'utf8'), f);
    objects.push(...r.objects);
    problems.push(...r.problems);
  }
  return { objects, problems };
}

export interface LocalConfigObjectSource {
  /** Resolves after the first load. */
  readonly ready: Promise<void>;
  reload(): Promise<void>;
  close(): void;
}

/** Loads the local file/directory, then reloads it on change (debounced). Broken objects keep their last good version. */
export function watchConfigObjects(path: string, store: ConfigStore, logger: { info(o: object, m: string): void; warn(o: object, m: string): void }): LocalConfigObjectSource {
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const reload = async (): Promise<void> => {
    const { objects, problems } = await readConfigObjects(path);
    for (const p of problems) logger.warn({ file: path }, p.message);
    const r = store.replaceAll(objects);
    logger.info({ path, objects: objects.length, rejected: r.rejected.length, version: r.version }, 'local configuration objects loaded');
  };
  const ready = reload().then(() => {
    try {
      watcher = watch(path, { persistent: false }, () => {
        clearTimeout(timer);
        timer = setTimeout(() => { reload().catch((err: Error) => logger.warn({ err: err.message }, 'reloading local configuration objects failed')); }, 100);
      });
    } catch (err) {
      logger.warn({ err: (err as Error).message, path }, 'cannot watch local configuration objects; changes need a restart');
    }
  });
  return {
    ready,
    reload,
    close() { clearTimeout(timer); watcher?.close(); },
  };
}
