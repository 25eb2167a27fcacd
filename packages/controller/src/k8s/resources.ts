// REST paths of the resources the controller reads and writes.
import { WATCHED_KINDS, type WatchedKind } from '@ambit/api';

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

/** Resources the controller uses besides the watched kinds. */
export const RESOURCES = Object.freeze({
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
  Secret: { group: '', version: 'v1', plural: 'secrets', namespaced: true },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true },
  TokenReview: { group: 'authentication.k8s.io', version: 'v1', plural: 'tokenreviews', namespaced: false },
} as const satisfies Record<string, ResourceType>);

export function resourceOf(kind: WatchedKind): ResourceType {
  return WATCHED_KINDS[kind];
}

/** `/api/v1/namespaces/ns/pods` or `/apis/g/v/plural`; a namespaced type without namespace lists all namespaces. */
export function collectionPath(r: ResourceType, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  return r.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}` : `${base}/${r.plural}`;
}

export function objectPath(r: ResourceType, namespace: string | undefined, name: string): string {
  if (r.namespaced && !namespace) throw new Error(`${r.plural} are namespaced; ${name} needs a namespace`);
  return `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;
}
