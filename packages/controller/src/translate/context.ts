// What every translation function reads: the object index and the mesh settings. Point lookups go through
// `get`, which also records the looked-up key as a dependency, so the incremental translator knows whom to
// recompute when that object appears, changes or goes away (including objects that did not exist yet).
import { AmbitError, describeObject, type KubeObject } from '@ambit/api';
import type { ObjectIndex } from './object-index.js';
import { keyOf, objectKey } from './object-index.js';
import type { ResolvedMeshSettings } from './mesh.js';

export interface TranslateContext {
  readonly index: ObjectIndex;
  readonly mesh: ResolvedMeshSettings;
  /** index.get that records the dependency. */
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  /** Records a dependency on an object found through a query. */
  use(obj: KubeObject): void;
}

export function createContext(index: ObjectIndex, mesh: ResolvedMeshSettings, deps?: Set<string>): TranslateContext {
  return {
    index,
    mesh,
    get(kind, namespace, name) {
      deps?.add(objectKey(kind, namespace, name));
      return index.get(kind, namespace, name);
    },
    use(obj) {
      deps?.add(keyOf(obj));
    },
  };
}

/**
 * A field of an object that cannot be translated. The translator keeps the object's last good output and reports
 * the message (on the object's status for policies, in the log for the rest).
 */
export class TranslationError extends AmbitError {
  constructor(readonly object: KubeObject, readonly field: string, problem: string) {
    super('AMB_ERR_TRANSLATION', `${describeObject(object)}: ${field}: ${problem}`);
  }
}
