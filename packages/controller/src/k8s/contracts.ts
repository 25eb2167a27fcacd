// What the runtime needs from the translator, the config forwarder and the object index (written elsewhere in
// this package); structural, so the runtime and its tests do not depend on their internals.
import type { KubeObject } from '@ambit/api';

export interface ObjectIndexLike {
  set(obj: KubeObject): unknown;
  /** Cluster-scoped objects have namespace ''. */
  delete(kind: string, namespace: string, name: string): unknown;
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  list(kind: string, namespace?: string): Iterable<KubeObject>;
}

export interface TranslatorLike {
  changed(kind: string, namespace: string, name: string): unknown;
}

export interface ConfigForwarderLike {
  update(obj: KubeObject): unknown;
  remove(kind: string, namespace: string, name: string): unknown;
}

/** Called for every changed key after the index holds its new state (obj undefined: deleted). */
export type ObjectChangeListener = (kind: string, namespace: string, name: string, obj: KubeObject | undefined) => unknown;
