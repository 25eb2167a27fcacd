// Installs, removes and checks the in-pod redirection rules (pod-rules.ts) inside a pod's network namespace.
// Every operation reads the live state first and changes only what differs, so each is idempotent: applying
// twice leaves one copy, removing twice is a no-op, and repair after drift restores exactly the desired set.
import {
  buildPodRedirectionRules, describeRoute, diffIptables, diffPolicyRouting, formatDrift, isDesiredIpRule,
  isDesiredRoute, isOwnedIpRule, parseIptablesSave, planIptablesRestore, TPROXY_RULE_PRIORITY, type IpVersion, type IptablesRuleSet,
  type LiveIpRoute, type LiveIpRule, type PodRedirectionOptions, type PolicyRouting, type RedirectionDrift,
  type SavedTables,
} from './pod-rules.js';
import { INBOUND_TPROXY_MARK, MARK_MASK, TPROXY_ROUTE_TABLE } from '@ambit/api';
import { NetnsCommandError, runInNetns } from './netns-exec.js';

export interface PodRedirectionTarget extends PodRedirectionOptions {
  /** The pod's netns: /proc/PID/ns/net or /var/run/netns/NAME. */
  netns: string;
}

export interface RedirectionResult {
  /** True when something was written. */
  changed: boolean;
  /** What differed from the desired state before the operation (empty when nothing had to change). */
  drift: RedirectionDrift[];
}

export interface RedirectionCheck {
  inSync: boolean;
  drift: RedirectionDrift[];
  /** One line per difference, for logs and `ambitctl`. */
  summary: string[];
}

interface LiveState {
  tables: SavedTables;
  rules: LiveIpRule[];
  routes: LiveIpRoute[];
}

const VERSIONS: readonly IpVersion[] = [4, 6];
const tool = (v: IpVersion, name: 'save' | 'restore'): string => `${v === 4 ? 'iptables' : 'ip6tables'}-${name}`;

/** The desired policy routing for a version, also used to find our leftovers when that version is not wanted. */
const ownedRouting = (version: IpVersion): PolicyRouting => ({
  version, fwmark: INBOUND_TPROXY_MARK, mask: MARK_MASK, priority: TPROXY_RULE_PRIORITY, table: TPROXY_ROUTE_TABLE,
});

async function readLive(netns: string, version: IpVersion): Promise<LiveState> {
  const [save, rules, routes] = await Promise.all([
    runInNetns(netns, [tool(version, 'save')]),
    runInNetns(netns, ['ip', '-j', `-${version}`, 'rule', 'show']),
    runInNetns(netns, ['ip', '-j', `-${version}`, 'route', 'show', 'table', String(TPROXY_ROUTE_TABLE)])
      .catch((err: unknown) => {
        // The kernel creates the table with its first route; before that there is nothing of ours in it.
        if (err instanceof NetnsCommandError && /table does not exist/i.test(err.stderr)) return { stdout: '[]', stderr: '' };
        throw err;
      }),
  ]);
  return { tables: parseIptablesSave(save.stdout), rules: parseJsonList(rules.stdout), routes: parseJsonList(routes.stdout) };
}

function parseJsonList<T>(text: string): T[] {
  const t = text.trim();
  return t === '' ? [] : (JSON.parse(t) as T[]);
}

const emptyRuleSet = (version: IpVersion): IptablesRuleSet => ({ version, chains: [], jumps: [] });

function diffVersion(version: IpVersion, desired: IptablesRuleSet | undefined, want: PolicyRouting | undefined,
  live: LiveState): RedirectionDrift[] {
  const drift = diffIptables(desired ?? emptyRuleSet(version), live.tables);
  if (want) return [...drift, ...diffPolicyRouting(want, live.rules, live.routes)];
  // Not wanted: anything of ours is unexpected.
  const owned = ownedRouting(version);
  for (const r of live.rules.filter((x) => isOwnedIpRule(owned, x))) {
    drift.push({ kind: 'unexpected', version, where: 'ip rule', item: JSON.stringify(r) });
  }
  for (const r of live.routes) {
    drift.push({ kind: 'unexpected', version, where: `ip route table ${owned.table}`, item: JSON.stringify(r) });
  }
  return drift;
}

/** Converges one IP version: iptables in one atomic restore per table, then the ip rule and the route. */
async function convergeVersion(netns: string, version: IpVersion, desired: IptablesRuleSet | undefined,
  want: PolicyRouting | undefined, live: LiveState): Promise<void> {
  const script = planIptablesRestore(desired, live.tables);
  if (script) await runInNetns(netns, [tool(version, 'restore'), '-w', '5', '--noflush'], script);

  const owned = want ?? ownedRouting(version);
  const fam = `-${version}`;
  let keptRule = false;
  for (const r of live.rules.filter((x) => isOwnedIpRule(owned, x))) {
    if (want && !keptRule && isDesiredIpRule(want, r)) { keptRule = true; continue; }
    const args = ['ip', fam, 'rule', 'del', 'pref', String(r.priority)];
    if (r.fwmark !== undefined) args.push('fwmark', r.fwmask ? `${r.fwmark}/${r.fwmask}` : String(r.fwmark));
    if (r.table !== undefined) args.push('table', String(r.table));
    await runInNetns(netns, args);
  }
  if (want && !keptRule) {
    await runInNetns(netns, ['ip', fam, 'rule', 'add', 'fwmark', `0x${want.fwmark.toString(16)}/0x${want.mask.toString(16)}`,
      'pref', String(want.priority), 'lookup', String(want.table)]);
  }
  for (const r of live.routes.filter((x) => !want || !isDesiredRoute(x))) {
    const dst = r.dst === 'default' ? (version === 4 ? '0.0.0.0/0' : '::/0') : String(r.dst);
    await runInNetns(netns, ['ip', fam, 'route', 'del', ...(r.type ? [r.type] : []), dst, 'table', String(owned.table)]);
  }
  if (want && !live.routes.some(isDesiredRoute)) {
    await runInNetns(netns, ['ip', fam, 'route', 'replace', ...describeRoute(want).split(' ')]);
  }
}

async function converge(target: PodRedirectionTarget, wantAnything: boolean): Promise<RedirectionResult> {
  const desired = buildPodRedirectionRules(target);
  const perVersion = await Promise.all(VERSIONS.map(async (version) => {
    const rules = wantAnything ? desired.iptables.find((s) => s.version === version) : undefined;
    const routing = wantAnything ? desired.routing.find((r) => r.version === version) : undefined;
    const live = await readLive(target.netns, version);
    const drift = diffVersion(version, rules, routing, live);
    if (drift.length > 0) await convergeVersion(target.netns, version, rules, routing, live);
    return drift;
  }));
  const drift = perVersion.flat();
  return { changed: drift.length > 0, drift };
}

/**
 * Installs the redirection rules in the pod netns, or brings them back to the desired set. Idempotent; writes
 * nothing when already in sync. Rejects with NetnsCommandError naming the netns and iptables' stderr.
 */
export function applyPodRedirection(target: PodRedirectionTarget): Promise<RedirectionResult> {
  return converge(target, true);
}

/** Removes every rule, chain, ip rule and route of ours (IPv4 and IPv6); a no-op when there are none. */
export function removePodRedirection(target: { netns: string }): Promise<RedirectionResult> {
  return converge({ netns: target.netns }, false);
}

/** Reads the live rules in the pod netns and lists how they differ from the desired set. Changes nothing. */
export async function checkPodRedirection(target: PodRedirectionTarget): Promise<RedirectionCheck> {
  const desired = buildPodRedirectionRules(target);
  const perVersion = await Promise.all(VERSIONS.map(async (version) => diffVersion(version,
    desired.iptables.find((s) => s.version === version), desired.routing.find((r) => r.version === version),
    await readLive(target.netns, version))));
  const drift = perVersion.flat();
  return { inSync: drift.length === 0, drift, summary: drift.map(formatDrift) };
}

/** Re-applies the desired rules after drift; returns what was repaired (empty when nothing was wrong). */
export async function repairPodRedirection(target: PodRedirectionTarget): Promise<RedirectionResult> {
  return applyPodRedirection(target);
}
