// The one writer of the waypoint's L7 configuration. Discovery (the xDS client's raw-resource callback, or the
// local file source) hands it batches of configuration objects; each changed object is compiled on its own, an
// object that fails keeps its last good compiled version (and is reported by name and field, so xDS can NACK it),
// and the data path's CompiledConfig is replaced in one assignment: a request sees the old table or the new one,
// never a mix.
import { ConfigError, configObjectName, describeObject, isWatchedKind, WAYPOINT_CONFIG_KINDS, type KubeObject } from '@ambit/api';
import { compileObject, type CompileOptions, type CompiledPiece } from '../routing/compile.js';
import { FieldError } from '../routing/fields.js';
import { indexConfig } from '../routing/index-config.js';
import type { CompiledConfig, Diagnostic } from '../routing/types.js';

/** Validates one object beyond routing (policy/ registers AuthorizationPolicy, RequestAuthentication, ... here). */
export type ObjectValidator = (obj: KubeObject) => void;

export interface ConfigBatch {
  readonly upserts?: readonly KubeObject[];
  /** Resource names `<Kind>/<ns>/<name>`. */
  readonly removed?: readonly string[];
  /** Resources that could not even be decoded: reported, their last good version kept. */
  readonly undecodable?: readonly Diagnostic[];
}

export interface ConfigApplyResult {
  readonly version: number;
  readonly rejected: readonly Diagnostic[];
  readonly changed: boolean;
}

export type ConfigListener = (config: CompiledConfig, objects: ReadonlyMap<string, KubeObject>) => void;

export interface ConfigStore {
  /** The compiled configuration in force. */
  current(): CompiledConfig;
  /** Accepted objects by resource name (last good versions). */
  objects(): ReadonlyMap<string, KubeObject>;
  /** Objects of one kind, accepted. */
  objectsOfKind(kind: string): KubeObject[];
  /** Incremental update (delta xDS). */
  apply(batch: ConfigBatch): ConfigApplyResult;
  /** Full state (local file): anything not listed is removed, except rejected objects (their last good stays). */
  replaceAll(objects: readonly KubeObject[], undecodable?: readonly Diagnostic[]): ConfigApplyResult;
  /** Diagnostics of the objects currently rejected (latest attempt), for the config dump. */
  rejected(): readonly Diagnostic[];
  onChange(listener: ConfigListener): () => void;
}

export interface ConfigStoreOptions extends CompileOptions {
  /** Extra validators by kind (policy modules). Throwing FieldError rejects the object. */
  readonly validators?: Readonly<Record<string, ObjectValidator>>;
  readonly logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export function createConfigStore(options: ConfigStoreOptions): ConfigStore {
  const accepted = new Map<string, { obj: KubeObject; piece: CompiledPiece; text: string }>();
  const failing = new Map<string, Diagnostic>();
  const listeners = new Set<ConfigListener>();
  let version = 0;
  let config = indexConfig(new Map(), version);
  let objectsView: ReadonlyMap<string, KubeObject> = new Map();

  function compileOne(o: KubeObject): CompiledPiece {
    if (!isWatchedKind(o.kind) || !(WAYPOINT_CONFIG_KINDS as readonly string[]).includes(o.kind)) {
      throw new FieldError('kind', `"${o.kind}" is not a kind the waypoint compiles (${WAYPOINT_CONFIG_KINDS.join(', ')})`);
    }
    const piece = compileObject(o, options);
    options.validators?.[o.kind]?.(o);
    return piece;
  }

  function diagnostic(name: string, o: KubeObject | undefined, err: unknown): Diagnostic {
    // Policy compile errors (ConfigError) already name the object and field.
    if (err instanceof ConfigError) return { name, message: err.message };
    const what = o ? describeObject(o) : name;
    const detail = err instanceof FieldError ? err.message : `${(err as Error).message}`;
    return { name, message: `${what}: ${detail}` };
  }

  function run(upserts: readonly KubeObject[], removed: readonly string[], undecodable: readonly Diagnostic[]): ConfigApplyResult {
    const rejected: Diagnostic[] = [...undecodable];
    let changed = false;
    for (const d of undecodable) failing.set(d.name, d);
    for (const name of removed) {
      failing.delete(name);
      if (accepted.delete(name)) changed = true;
    }
    for (const o of upserts) {
      const name = configObjectName(o);
      const text = JSON.stringify({ metadata: { ...o.metadata, resourceVersion: undefined, managedFields: undefined }, spec: o.spec });
      const prev = accepted.get(name);
      if (prev && prev.text === text) { failing.delete(name); continue; }
      try {
        const piece = compileOne(o);
        accepted.set(name, { obj: o, piece, text });
        failing.delete(name);
        changed = true;
      } catch (err) {
        const d = diagnostic(name, o, err);
        rejected.push(d);
        failing.set(name, d);
        options.logger?.warn({ resource: name, kept: prev ? 'last good version' : 'none' }, d.message);
        if (!(err instanceof FieldError) && !(err instanceof ConfigError)) options.logger?.error({ err, resource: name }, 'unexpected error compiling a configuration object');
      }
    }
    if (changed) {
      version++;
      const pieces = new Map([...accepted].map(([k, v]) => [k, v.piece]));
      // Build fully, then swap: the data path never sees a partial table.
      const next = indexConfig(pieces, version);
      objectsView = new Map([...accepted].map(([k, v]) => [k, v.obj]));
      config = next;
      for (const l of [...listeners]) {
        try { l(config, objectsView); } catch (err) { options.logger?.error({ err }, 'configuration listener threw'); }
      }
    }
    return { version, rejected, changed };
  }

  return {
    current: () => config,
    objects: () => objectsView,
    objectsOfKind: (kind) => [...objectsView.values()].filter((o) => o.kind === kind),
    apply(batch) {
      return run(batch.upserts ?? [], batch.removed ?? [], batch.undecodable ?? []);
    },
    replaceAll(objects, undecodable = []) {
      const listed = new Set(objects.map(configObjectName));
      const keepRejected = new Set(undecodable.map((d) => d.name));
      const removed = [...accepted.keys()].filter((n) => !listed.has(n) && !keepRejected.has(n));
      for (const n of [...failing.keys()]) if (!listed.has(n) && !keepRejected.has(n)) failing.delete(n);
      return run(objects, removed, undecodable);
    },
    rejected: () => [...failing.values()],
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
