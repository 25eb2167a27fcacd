// What the xDS server serves: named resources per type URL, already encoded as `Any`, with versions and
// aliases. Translation (later: from Kubernetes objects) is the only writer; the xDS server reads it and is
// told which names changed.
import { createHash } from 'node:crypto';
import {
  ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, encodeAny,
  type Address, type AnyMessage, type Authorization, type Service, type Workload,
} from '@ambit/api';
import { formatNetworkAlias } from './names.js';

/** Message shape behind each type URL the store can encode. */
export interface ResourceTypes {
  [ADDRESS_TYPE_URL]: Address;
  [AUTHORIZATION_TYPE_URL]: Authorization;
}
export type TypeUrl = keyof ResourceTypes;

export interface StoredResource {
  typeUrl: string;
  name: string;
  version: string;
  aliases: readonly string[];
  /**
   * Names of other resources of the same type this one belongs to (a Workload's Services). An on-demand lookup
   * that finds a Service also returns the resources that reference it.
   */
  references: readonly string[];
  any: AnyMessage;
}

export interface UpsertOptions {
  aliases?: readonly string[];
  references?: readonly string[];
  /** Defaults to a hash of the encoded bytes. */
  version?: string;
}

/** Names changed by one or more writes, per type URL (upserted and removed alike). */
export type ChangeSet = Map<string, Set<string>>;
export type ChangeListener = (changes: ChangeSet) => void;

export interface ResourceStore {
  /** Stores a resource; returns its version. Writing identical bytes (same version) notifies nobody. */
  upsert<T extends TypeUrl>(typeUrl: T, name: string, resource: ResourceTypes[T], options?: UpsertOptions): string;
  /** Stores an already encoded resource (any type URL). */
  upsertEncoded(typeUrl: string, name: string, any: AnyMessage, options?: UpsertOptions): string;
  /** Returns whether the resource existed. */
  remove(typeUrl: string, name: string): boolean;
  /** Workload under its uid, aliased by `<network>/<ip>` of each address, referencing its Services. */
  upsertWorkload(workload: Workload): string;
  /** Service under `<namespace>/<hostname>`, aliased by `<network>/<ip>` (or `/len` for CIDRs). */
  upsertService(service: Service): string;
  /** Authorization under `<namespace>/<name>`. */
  upsertAuthorization(authorization: Authorization): string;
  get(typeUrl: string, name: string): StoredResource | undefined;
  list(typeUrl: string): StoredResource[];
  names(typeUrl: string): IterableIterator<string>;
  /**
   * What a client asking for `name` gets: the resource of that name, the resources with that alias, and the
   * resources referencing any of those (VIP -> Service plus its Workloads).
   */
  resolve(typeUrl: string, name: string): Set<string>;
  /** Listeners are called synchronously after each write; the xDS server batches (debounces) them. */
  onChange(listener: ChangeListener): () => void;
}

interface TypeTable {
  byName: Map<string, StoredResource>;
  byAlias: Map<string, Set<string>>;
  referencedBy: Map<string, Set<string>>;
}

export function createResourceStore(): ResourceStore {
  const tables = new Map<string, TypeTable>();
  const listeners = new Set<ChangeListener>();

  const table = (typeUrl: string): TypeTable => {
    let t = tables.get(typeUrl);
    if (!t) {
      t = { byName: new Map(), byAlias: new Map(), referencedBy: new Map() };
      tables.set(typeUrl, t);
    }
    return t;
  };
  const index = (m: Map<string, Set<string>>, key: string, name: string, add: boolean): void => {
    let s = m.get(key);
    if (add) {
      if (!s) m.set(key, (s = new Set()));
      s.add(name);
    } else if (s) {
      s.delete(name);
      if (s.size === 0) m.delete(key);
    }
  };
  const unindex = (t: TypeTable, r: StoredResource): void => {
    for (const a of r.aliases) index(t.byAlias, a, r.name, false);
    for (const ref of r.references) index(t.referencedBy, ref, r.name, false);
  };
  const notify = (typeUrl: string, name: string): void => {
    const changes: ChangeSet = new Map([[typeUrl, new Set([name])]]);
    for (const l of listeners) l(changes);
  };

  const upsertEncoded = (typeUrl: string, name: string, any: AnyMessage, options: UpsertOptions = {}): string => {
    if (!name) throw new Error(`a ${typeUrl} resource needs a name`);
    // A content hash rather than a counter: versions then survive a controller restart (or differ between
    // replicas only when content differs), so a reconnecting client's initial_resource_versions still match.
    const version = options.version ?? createHash('sha256').update(any.type_url).update(any.value).digest('base64url').slice(0, 16);
    const t = table(typeUrl);
    const aliases = [...new Set(options.aliases ?? [])];
    const references = [...new Set(options.references ?? [])];
    const old = t.byName.get(name);
    if (old && old.version === version && sameList(old.aliases, aliases) && sameList(old.references, references)) return version;
    if (old) unindex(t, old);
    const r: StoredResource = { typeUrl, name, version, aliases, references, any };
    t.byName.set(name, r);
    for (const a of aliases) index(t.byAlias, a, name, true);
    for (const ref of references) index(t.referencedBy, ref, name, true);
    notify(typeUrl, name);
    return version;
  };

  const store: ResourceStore = {
    upsert(typeUrl, name, resource, options) {
      return upsertEncoded(typeUrl, name, encodeAny(typeUrl, resource), options);
    },
    upsertEncoded,
    remove(typeUrl, name) {
      const t = tables.get(typeUrl);
      const old = t?.byName.get(name);
      if (!t || !old) return false;
      unindex(t, old);
      t.byName.delete(name);
      notify(typeUrl, name);
      return true;
    },
    upsertWorkload(workload) {
      if (!workload.uid) throw new Error(`workload ${workload.namespace ?? ''}/${workload.name ?? ''} has no uid`);
      const network = workload.network ?? '';
      // Host-network pods share the node's IP, so an IP lookup must not land on one of them.
      const byIp = workload.network_mode !== 'HOST_NETWORK' && workload.network_mode !== 1;
      const aliases = byIp ? (workload.addresses ?? []).map((a) => formatNetworkAlias(network, a)) : [];
      return store.upsert(ADDRESS_TYPE_URL, workload.uid, { workload }, {
        aliases,
        references: Object.keys(workload.services ?? {}),
      });
    },
    upsertService(service) {
      if (!service.namespace || !service.hostname) throw new Error(`service ${service.name ?? ''} needs a namespace and a hostname`);
      const aliases = (service.addresses ?? []).map((a) => formatNetworkAlias(a.network ?? '', a.address ?? new Uint8Array(), a.length ?? undefined));
      return store.upsert(ADDRESS_TYPE_URL, `${service.namespace}/${service.hostname}`, { service }, { aliases });
    },
    upsertAuthorization(authorization) {
      if (!authorization.namespace || !authorization.name) throw new Error('an authorization needs a namespace and a name');
      return store.upsert(AUTHORIZATION_TYPE_URL, `${authorization.namespace}/${authorization.name}`, authorization);
    },
    get: (typeUrl, name) => tables.get(typeUrl)?.byName.get(name),
    list: (typeUrl) => [...(tables.get(typeUrl)?.byName.values() ?? [])],
    names: (typeUrl) => (tables.get(typeUrl)?.byName ?? new Map<string, StoredResource>()).keys(),
    resolve(typeUrl, name) {
      const out = new Set<string>();
      const t = tables.get(typeUrl);
      if (!t) return out;
      if (t.byName.has(name)) out.add(name);
      for (const n of t.byAlias.get(name) ?? []) out.add(n);
      for (const n of [...out]) for (const dep of t.referencedBy.get(n) ?? []) out.add(dep);
      return out;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return store;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
