// The CA's view of pods (impersonation: which node a caller runs on, which pods share it), read from the object
// index the informers fill. istiod does the same from its pod informer rather than asking the apiserver per call.
import type { KubeObject } from '@ambit/api';
import type { CallerIdentity } from '../auth/caller.js';
import type { PodIdentity } from '../ca/ca-server.js';
import type { ObjectIndexLike } from '../k8s/contracts.js';

export interface PodLookup {
  nodeOfCaller(caller: CallerIdentity): string | undefined;
  podsOnNode(nodeName: string): PodIdentity[];
}

const finished = (pod: KubeObject): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

export function createPodLookup(index: ObjectIndexLike): PodLookup {
  return {
    nodeOfCaller(caller) {
      if (!caller.podName) return undefined;
      const pod = index.get('Pod', caller.namespace, caller.podName);
      if (!pod || finished(pod)) return undefined;
      // The token is bound to a pod UID: a pod recreated under the same name is another pod.
      if (caller.podUid && pod.metadata.uid !== caller.podUid) return undefined;
      if ((pod.spec?.serviceAccountName ?? 'default') !== caller.serviceAccount) return undefined;
      return typeof pod.spec?.nodeName === 'string' && pod.spec.nodeName ? pod.spec.nodeName : undefined;
    },
    podsOnNode(nodeName) {
      const out: PodIdentity[] = [];
      for (const pod of index.list('Pod')) {
        if (pod.spec?.nodeName !== nodeName || finished(pod)) continue;
        out.push({ namespace: pod.metadata.namespace ?? '', name: pod.metadata.name, serviceAccount: pod.spec?.serviceAccountName ?? 'default' });
      }
      return out;
    },
  };
}
