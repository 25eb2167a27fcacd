import type { StateChange, StateStore } from './store.js';
import type {
  Authorization,
  AuthorizationInput,
  ResourceKind,
  Service,
  ServiceInput,
  Workload,
  WorkloadInput,
} from './types.js';
import { keyOfPolicy, keyOfService } from './types.js';
import {
  describePolicy,
  describeService,
  describeWorkload,
  keyOfPolicyInput,
  keyOfServiceInput,
  keyOfWorkloadInput,
  validateAuthorization,
  validateService,
  validateWorkload,
} from './validate.js';

/**
 * The one writer of the proxy state (STYLE.md "One writer of state"). Discovery sources (local YAML file, xDS
 * client) hand it typed batches; it validates every entry, applies the valid ones in one step (no reader ever sees
 * half a batch: the apply is synchronous and validation happens before the first mutation), keeps the last good
 * version of every rejected entry, and returns the rejected names with reasons so xDS can NACK and a file reload
 * can log.
 */

/** An entry that was not applied, and why. `name` is the xDS resource name (uid, `ns/hostname`, `ns/name`). */
export interface Rejection {
  readonly kind: ResourceKind;
  readonly name: string;
  /** Names the entry and the field, e.g. `workload "default/sleep-1" (uid ...): workloadIps[0] "10.0.1.x" is not an IP address`. */
  readonly message: string;
}

/** Incremental update (delta xDS). Removals are applied before upserts. */
export interface DeltaBatch {
  readonly workloads?: readonly WorkloadInput[];
  readonly services?: readonly ServiceInput[];
  readonly policies?: readonly AuthorizationInput[];
  /** Address-type names to remove: a workload uid or a service `ns/hostname` (xDS `removed_resources`). */
  readonly removedAddresses?: readonly string[];
  /** Policy names `ns/name` to remove. */
  readonly removedPolicies?: readonly string[];
  /** Entries the source could not even decode: reported back, their previous version kept. */
  readonly rejected?: readonly Rejection[];
}

/** Full state of the world (local config file): whatever is not in it is removed, except rejected entries. */
export interface Snapshot {
  readonly workloads?: readonly WorkloadInput[];
  readonly services?: readonly ServiceInput[];
  readonly policies?: readonly AuthorizationInput[];
  /** Entries the source could not decode: their previous version is kept, not removed. */
  readonly rejected?: readonly Rejection[];
}

export interface ApplyResult {
  /** State version after the apply (unchanged when nothing changed). */
  readonly version: number;
  /** The change set announced to listeners; undefined when nothing changed. */
  readonly change: StateChange | undefined;
  readonly rejected: readonly Rejection[];
}

export interface StateUpdater {
  applyDelta(batch: DeltaBatch): ApplyResult;
  replaceAll(snapshot: Snapshot): ApplyResult;
}

export interface StateUpdaterOptions {
  readonly store: StateStore;
}

interface Plan {
  workloads: Map<string, Workload>;
  services: Map<string, Service>;
  policies: Map<string, Authorization>;
  rejected: Rejection[];
  /** kind:name of rejected entries, so a snapshot keeps their previous version. */
  rejectedNames: Set<string>;
}

export function createStateUpdater(options: StateUpdaterOptions): StateUpdater {
  const { store } = options;

  function validateAll(input: Snapshot | DeltaBatch): Plan {
    const plan: Plan = { workloads: new Map(), services: new Map(), policies: new Map(), rejected: [], rejectedNames: new Set() };
    const reject = (r: Rejection): void => {
      plan.rejected.push(r);
      plan.rejectedNames.add(`${r.kind}:${r.name}`);
    };
    for (const r of input.rejected ?? []) reject(r);

    for (const w of input.workloads ?? []) {
      const name = keyOfWorkloadInput(w);
      const v = validateWorkload(w);
      if (!v.ok) reject({ kind: 'workload', name, message: v.message });
      else if (plan.workloads.has(name)) reject({ kind: 'workload', name, message: `${describeWorkload(w)}: uid is defined twice in one update; the first definition is used` });
      else plan.workloads.set(name, v.value);
    }
    for (const s of input.services ?? []) {
      const name = keyOfServiceInput(s);
      const v = validateService(s);
      if (!v.ok) reject({ kind: 'service', name, message: v.message });
      else if (plan.services.has(name)) reject({ kind: 'service', name, message: `${describeService(s)}: defined twice in one update; the first definition is used` });
      else plan.services.set(name, v.value);
    }
    for (const p of input.policies ?? []) {
      const name = keyOfPolicyInput(p);
      const v = validateAuthorization(p);
      if (!v.ok) reject({ kind: 'policy', name, message: v.message });
      else if (plan.policies.has(name)) reject({ kind: 'policy', name, message: `${describePolicy(p)}: defined twice in one update; the first definition is used` });
      else plan.policies.set(name, v.value);
    }
    return plan;
  }

  function apply(plan: Plan, removals: { workloads: string[]; services: string[]; policies: string[] }): ApplyResult {
    const changed = { workloads: new Set<string>(), services: new Set<string>(), policies: new Set<string>() };
    for (const uid of removals.workloads) if (store.deleteWorkload(uid)) changed.workloads.add(uid);
    for (const key of removals.services) if (store.deleteService(key)) changed.services.add(key);
    for (const key of removals.policies) if (store.deletePolicy(key)) changed.policies.add(key);
    for (const [uid, w] of plan.workloads) {
      if (sameAs(store.workloadByUid(uid), w)) continue;
      store.putWorkload(w);
      changed.workloads.add(uid);
    }
    for (const [key, s] of plan.services) {
      if (sameAs(store.serviceByKey(key), s)) continue;
      store.putService(s);
      changed.services.add(key);
    }
    for (const [key, p] of plan.policies) {
      if (sameAs(store.policyByKey(key), p)) continue;
      store.putPolicy(p);
      changed.policies.add(key);
    }
    const any = changed.workloads.size + changed.services.size + changed.policies.size > 0;
    const change = any
      ? store.commit({ workloads: [...changed.workloads], services: [...changed.services], policies: [...changed.policies] })
      : undefined;
    return { version: store.version, change, rejected: plan.rejected };
  }

  return {
    applyDelta(batch) {
      const plan = validateAll(batch);
      const workloads: string[] = [];
      const services: string[] = [];
      // An Address name is a workload uid or a service "ns/hostname"; try both, as ztunnel does.
      for (const name of batch.removedAddresses ?? []) {
        if (store.workloadByUid(name)) workloads.push(name);
        else services.push(name);
      }
      return apply(plan, { workloads, services, policies: [...(batch.removedPolicies ?? [])] });
    },

    replaceAll(snapshot) {
      const plan = validateAll(snapshot);
      const keep = (kind: ResourceKind, name: string, inPlan: boolean): boolean =>
        inPlan || plan.rejectedNames.has(`${kind}:${name}`);
      return apply(plan, {
        workloads: store.listWorkloads().map((w) => w.uid).filter((uid) => !keep('workload', uid, plan.workloads.has(uid))),
        services: store.listServices().map(keyOfService).filter((k) => !keep('service', k, plan.services.has(k))),
        policies: store.listPolicies().map(keyOfPolicy).filter((k) => !keep('policy', k, plan.policies.has(k))),
      });
    },
  };
}

/** Validated models are built field by field in a fixed order, so JSON equality is structural equality. */
function sameAs(prev: object | undefined, next: object): boolean {
  return prev !== undefined && JSON.stringify(prev) === JSON.stringify(next);
}
