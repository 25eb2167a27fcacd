// The in-pod redirection rules as data (spec §2.2, feasibility notes §2), and the pure functions that compare them
// with a live ruleset and plan the iptables-restore script that converges one to the other. Nothing here runs a
// command; pod-redirection.ts does, inside the pod's netns.
//
// Capture model: outbound TCP is REDIRECTed (nat) to 15001, whose listener reads SO_ORIGINAL_DST. Inbound TCP is
// TPROXYed (mangle) to 15006 (plaintext) or 15008 (HBONE), whose IP_TRANSPARENT listeners see the original
// destination as their local address. Agent sockets carry mark 0x539 and are never captured. Packets the agent
// sends with a spoofed source get connmark 0x111; replies restore it and route to the agent via table 133.
import {
  AGENT_SOCKET_MARK, INBOUND_TPROXY_MARK, KUBELET_PROBE_SNAT_IPV4, KUBELET_PROBE_SNAT_IPV6, MARK_MASK, PORTS,
  TPROXY_ROUTE_TABLE,
} from '@ambit/api';

export type IpVersion = 4 | 6;
export type IptablesTable = 'mangle' | 'nat' | 'raw';

/** Istio's chain names (cni/pkg/iptables), so operators recognise them in iptables-save. */
export const CHAIN_PRERT = 'ISTIO_PRERT';
export const CHAIN_OUTPUT = 'ISTIO_OUTPUT';
/** Chains this package owns in every managed table; anything in them is ours to rewrite or delete. */
export const OWNED_CHAINS: readonly string[] = [CHAIN_PRERT, CHAIN_OUTPUT];
export const MANAGED_TABLES: readonly IptablesTable[] = ['mangle', 'nat', 'raw'];
/** Priority of the fwmark ip rule (Istio's value). */
export const TPROXY_RULE_PRIORITY = 32764;
/** CONNMARK --restore-mark masks (Istio's value). */
const RESTORE_MASK = '0xffffffff';

export interface PodRedirectionOptions {
  /** Redirect the pod's DNS (udp and tcp port 53) to the agent's DNS proxy on 15053. Default false. */
  dnsCapture?: boolean;
  /** Also install the ip6tables rules and IPv6 policy route. Default false. */
  ipv6?: boolean;
  /** Kubelet probe SNAT addresses (HOST_PROBE_SNAT_ADDRESS / HOST_PROBE_V6_SNAT_ADDRESS). */
  probeSnatIpv4?: string;
  probeSnatIpv6?: string;
}

/** One user chain and its rules, each in iptables-save's canonical form without the leading `-A CHAIN `. */
export interface ChainRules {
  table: IptablesTable;
  chain: string;
  rules: string[];
}

/** An unconditional jump from a built-in chain to one of ours (`-A PREROUTING -j ISTIO_PRERT`). */
export interface ChainJump {
  table: IptablesTable;
  from: string;
  to: string;
}

export interface IptablesRuleSet {
  version: IpVersion;
  chains: ChainRules[];
  jumps: ChainJump[];
}

/** `ip rule add fwmark MARK/MASK pref PRIORITY lookup TABLE` and `ip route add local DEFAULT dev lo table TABLE`. */
export interface PolicyRouting {
  version: IpVersion;
  fwmark: number;
  mask: number;
  priority: number;
  table: number;
}

export interface PodRedirectionRules {
  iptables: IptablesRuleSet[];
  routing: PolicyRouting[];
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Builds the desired rules for one pod. Pure; the result is what `checkPodRedirection` compares against. */
export function buildPodRedirectionRules(options: PodRedirectionOptions = {}): PodRedirectionRules {
  const versions: IpVersion[] = options.ipv6 ? [4, 6] : [4];
  return {
    iptables: versions.map((v) => buildIptablesRuleSet(v, options)),
    routing: versions.map((version) => ({
      version, fwmark: INBOUND_TPROXY_MARK, mask: MARK_MASK, priority: TPROXY_RULE_PRIORITY, table: TPROXY_ROUTE_TABLE,
    })),
  };
}

function buildIptablesRuleSet(version: IpVersion, options: PodRedirectionOptions): IptablesRuleSet {
  const localhost = version === 4 ? '127.0.0.1/32' : '::1/128';
  const anyAddr = version === 4 ? '0.0.0.0' : '::';
  const probe = version === 4
    ? `${options.probeSnatIpv4 ?? KUBELET_PROBE_SNAT_IPV4}/32`
    : `${options.probeSnatIpv6 ?? KUBELET_PROBE_SNAT_IPV6}/128`;
  const agentMark = `${hex(AGENT_SOCKET_MARK)}/${hex(MARK_MASK)}`;
  const tproxyMark = `${hex(INBOUND_TPROXY_MARK)}/${hex(MARK_MASK)}`;
  const tproxy = (port: number): string => `-j TPROXY --on-port ${port} --on-ip ${anyAddr} --tproxy-mark ${tproxyMark}`;

  // Written exactly as iptables-save prints them (1.8.9, nft backend) so that check() can compare text.
  const manglePrert = [
    // Packets from agent sockets (e.g. delivery to the app with a spoofed source): remember it on the connection,
    // so the app's replies get mark 0x111 back (mangle ISTIO_OUTPUT) and route to the agent via the table.
    `-m mark --mark ${agentMark} -j CONNMARK --set-xmark ${tproxyMark}`,
    // Kubelet probes arrive SNATed to a link-local address and go straight to the app.
    `-s ${probe} -p tcp -j ACCEPT`,
    // The pod talking to itself over a non-loopback address is not inbound traffic.
    `! -d ${localhost} -i lo -p tcp -j ACCEPT`,
    `-p tcp -m tcp --dport ${PORTS.hbone} -m mark ! --mark ${agentMark} ${tproxy(PORTS.hbone)}`,
    // Established connections are already matched to their (transparent) socket.
    `-p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `! -d ${localhost} -p tcp -m mark ! --mark ${agentMark} ${tproxy(PORTS.inboundPlaintext)}`,
  ];
  const mangleOutput = [
    `-m connmark --mark ${tproxyMark} -j CONNMARK --restore-mark --nfmask ${RESTORE_MASK} --ctmask ${RESTORE_MASK}`,
  ];
  const natOutput = [
    `-d ${probe} -p tcp -j ACCEPT`,
    ...(options.dnsCapture ? [
      `! -o lo -p udp -m udp --dport 53 -m mark ! --mark ${agentMark} -j REDIRECT --to-ports ${PORTS.dns}`,
      `! -d ${localhost} -p tcp -m tcp --dport 53 -m mark ! --mark ${agentMark} -j REDIRECT --to-ports ${PORTS.dns}`,
    ] : []),
    // Replies of inbound (TPROXYed) connections must not be REDIRECTed to 15001.
    `-p tcp -m mark --mark ${tproxyMark} -j ACCEPT`,
    // The app calling itself via its pod IP.
    `! -d ${localhost} -o lo -j ACCEPT`,
    `! -d ${localhost} -p tcp -m mark ! --mark ${agentMark} -j REDIRECT --to-ports ${PORTS.outbound}`,
  ];

  const chains: ChainRules[] = [
    { table: 'mangle', chain: CHAIN_PRERT, rules: manglePrert },
    { table: 'mangle', chain: CHAIN_OUTPUT, rules: mangleOutput },
    { table: 'nat', chain: CHAIN_OUTPUT, rules: natOutput },
  ];
  const jumps: ChainJump[] = [
    { table: 'mangle', from: 'PREROUTING', to: CHAIN_PRERT },
    { table: 'mangle', from: 'OUTPUT', to: CHAIN_OUTPUT },
    { table: 'nat', from: 'OUTPUT', to: CHAIN_OUTPUT },
  ];
  if (options.dnsCapture) {
    // Separate conntrack zones for the agent's upstream DNS and the pod's replies avoid 5-tuple collisions
    // between the redirected query and the agent's own query from the same pod address.
    chains.push(
      { table: 'raw', chain: CHAIN_PRERT, rules: [`-p udp -m mark ! --mark ${agentMark} -m udp --sport 53 -j CT --zone 1`] },
      { table: 'raw', chain: CHAIN_OUTPUT, rules: [`-p udp -m mark --mark ${agentMark} -m udp --dport 53 -j CT --zone 1`] },
    );
    jumps.push({ table: 'raw', from: 'PREROUTING', to: CHAIN_PRERT }, { table: 'raw', from: 'OUTPUT', to: CHAIN_OUTPUT });
  }
  return { version, chains, jumps };
}

// ---------------------------------------------------------------------------------------------------------------
// Live state

/** Tables from iptables-save: table -> chain -> rules (without `-A CHAIN `), built-in and user chains alike. */
export type SavedTables = Map<string, Map<string, string[]>>;

/** Parses iptables-save output (without -c). Comment lines and counters are ignored. */
export function parseIptablesSave(text: string): SavedTables {
  const tables: SavedTables = new Map();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      current = new Map();
      tables.set(line.slice(1), current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (current && line.startsWith(':')) {
      current.set(line.slice(1).split(' ')[0]!, []);
    } else if (current && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      const chain = space < 0 ? rest : rest.slice(0, space);
      const rule = space < 0 ? '' : rest.slice(space + 1);
      if (!current.has(chain)) current.set(chain, []);
      current.get(chain)!.push(rule);
    }
  }
  return tables;
}

const jumpTarget = (rule: string): string | undefined => /(?:^|\s)-[jg] (\S+)$/.exec(rule)?.[1];
const isOwnedChain = (chain: string): boolean => OWNED_CHAINS.includes(chain);

export type DriftKind = 'missing' | 'unexpected' | 'order';

/** One difference between the desired and the live redirection state. */
export interface RedirectionDrift {
  kind: DriftKind;
  version: IpVersion;
  /** e.g. `mangle ISTIO_PRERT`, `nat OUTPUT`, `ip rule`, `ip route table 133`. */
  where: string;
  /** The rule (or chain, rule, route) concerned, in the form iptables-save / ip print it. */
  item: string;
}

export function formatDrift(d: RedirectionDrift): string {
  return `${d.kind} in IPv${d.version} ${d.where}: ${d.item}`;
}

/** Multiset difference: items of a not matched one-for-one in b. */
function minus(a: string[], b: string[]): string[] {
  const left = new Map<string, number>();
  for (const x of b) left.set(x, (left.get(x) ?? 0) + 1);
  return a.filter((x) => {
    const n = left.get(x) ?? 0;
    if (n > 0) { left.set(x, n - 1); return false; }
    return true;
  });
}

/** Compares the desired rules of one IP version with iptables-save output; empty when in sync. */
export function diffIptables(desired: IptablesRuleSet, live: SavedTables): RedirectionDrift[] {
  const out: RedirectionDrift[] = [];
  const push = (kind: DriftKind, where: string, item: string): void => {
    out.push({ kind, version: desired.version, where, item });
  };
  for (const table of MANAGED_TABLES) {
    const liveTable = live.get(table) ?? new Map<string, string[]>();
    // Our chains.
    for (const chain of OWNED_CHAINS) {
      const want = desired.chains.find((c) => c.table === table && c.chain === chain);
      const have = liveTable.get(chain);
      const where = `${table} ${chain}`;
      if (!want) {
        if (have) push('unexpected', where, `chain ${chain}${have.length ? ` with ${have.length} rule(s)` : ''}`);
        continue;
      }
      if (!have) {
        push('missing', where, `chain ${chain}`);
        for (const r of want.rules) push('missing', where, `-A ${chain} ${r}`);
        continue;
      }
      const missing = minus(want.rules, have);
      const extra = minus(have, want.rules);
      for (const r of missing) push('missing', where, `-A ${chain} ${r}`);
      for (const r of extra) push('unexpected', where, `-A ${chain} ${r}`);
      if (missing.length === 0 && extra.length === 0 && want.rules.join('\n') !== have.join('\n')) {
        push('order', where, `rules of ${chain} are out of order`);
      }
    }
    // Jumps from other chains into ours: exactly the desired ones, once each.
    for (const [chain, rules] of liveTable) {
      if (isOwnedChain(chain)) continue;
      const wantJumps = desired.jumps.filter((j) => j.table === table && j.from === chain).map((j) => `-j ${j.to}`);
      const haveJumps = rules.filter((r) => { const t = jumpTarget(r); return t !== undefined && isOwnedChain(t); });
      for (const r of minus(haveJumps, wantJumps)) push('unexpected', `${table} ${chain}`, `-A ${chain} ${r}`);
    }
    for (const j of desired.jumps.filter((x) => x.table === table)) {
      if (!(liveTable.get(j.from) ?? []).includes(`-j ${j.to}`)) push('missing', `${table} ${j.from}`, `-A ${j.from} -j ${j.to}`);
    }
  }
  return out;
}

/**
 * The iptables-restore --noflush script that converges the live tables to `desired` (or, with no desired rules,
 * removes everything of ours). Empty string when there is nothing to do. Under --noflush, declaring an existing
 * user chain flushes it, so our chains are rewritten whole while every other rule in the netns stays untouched.
 */
export function planIptablesRestore(desired: IptablesRuleSet | undefined, live: SavedTables): string {
  const out: string[] = [];
  for (const table of MANAGED_TABLES) {
    const liveTable = live.get(table) ?? new Map<string, string[]>();
    const wantChains = desired?.chains.filter((c) => c.table === table) ?? [];
    const wantJumps = desired?.jumps.filter((j) => j.table === table) ?? [];
    const staleChains = OWNED_CHAINS.filter((c) => liveTable.has(c) && !wantChains.some((w) => w.chain === c));
    const declare: string[] = [];
    const deletes: string[] = [];
    const ruleAppends: string[] = [];
    const jumpAppends: string[] = [];
    // Jumps: keep the first exact copy of each desired one, delete every other reference to our chains.
    for (const [chain, rules] of liveTable) {
      if (isOwnedChain(chain)) continue;
      const pending = wantJumps.filter((j) => j.from === chain).map((j) => `-j ${j.to}`);
      for (const r of rules) {
        const t = jumpTarget(r);
        if (t === undefined || !isOwnedChain(t)) continue;
        const i = pending.indexOf(r);
        if (i >= 0) pending.splice(i, 1);
        else deletes.push(`-D ${chain} ${r}`);
      }
    }
    for (const j of wantJumps) {
      if (!(liveTable.get(j.from) ?? []).includes(`-j ${j.to}`)) jumpAppends.push(`-A ${j.from} -j ${j.to}`);
    }
    const inSync = (c: ChainRules): boolean => liveTable.get(c.chain)?.join('\n') === c.rules.join('\n');
    if (!wantChains.every(inSync)) {
      for (const c of wantChains) {
        declare.push(`:${c.chain} - [0:0]`);
        for (const r of c.rules) ruleAppends.push(`-A ${c.chain} ${r}`);
      }
    }
    for (const c of staleChains) declare.push(`:${c} - [0:0]`);
    const removals = staleChains.map((c) => `-X ${c}`);
    const body = [...declare, ...deletes, ...ruleAppends, ...jumpAppends, ...removals];
    if (body.length > 0) out.push(`*${table}`, ...body, 'COMMIT');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

// ---------------------------------------------------------------------------------------------------------------
// Policy routing, as printed by `ip -j rule show` / `ip -j route show table N`

export interface LiveIpRule {
  priority?: number;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  [key: string]: unknown;
}
export interface LiveIpRoute {
  type?: string;
  dst?: string;
  dev?: string;
  [key: string]: unknown;
}

/** Whether a live ip rule is exactly the desired fwmark rule. */
export function isDesiredIpRule(want: PolicyRouting, r: LiveIpRule): boolean {
  return r.priority === want.priority && Number(r.fwmark) === want.fwmark &&
    Number(r.fwmask ?? '0xffffffff') === want.mask && String(r.table) === String(want.table);
}

/** Rules we own: the desired one, or anything pointing at our table or sitting at our priority with our mark. */
export function isOwnedIpRule(want: PolicyRouting, r: LiveIpRule): boolean {
  return String(r.table) === String(want.table) || (r.priority === want.priority && Number(r.fwmark) === want.fwmark);
}

export function isDesiredRoute(r: LiveIpRoute): boolean {
  return r.type === 'local' && r.dst === 'default' && r.dev === 'lo';
}

export function describeIpRule(want: PolicyRouting): string {
  return `fwmark ${hex(want.fwmark)}/${hex(want.mask)} pref ${want.priority} lookup ${want.table}`;
}

export function describeRoute(want: PolicyRouting): string {
  return `local ${want.version === 4 ? '0.0.0.0/0' : '::/0'} dev lo table ${want.table}`;
}

/** Compares desired policy routing with the live rules and table contents. */
export function diffPolicyRouting(want: PolicyRouting, rules: LiveIpRule[], routes: LiveIpRoute[]): RedirectionDrift[] {
  const out: RedirectionDrift[] = [];
  const owned = rules.filter((r) => isOwnedIpRule(want, r));
  const exact = owned.filter((r) => isDesiredIpRule(want, r));
  if (exact.length === 0) out.push({ kind: 'missing', version: want.version, where: 'ip rule', item: describeIpRule(want) });
  for (const r of [...owned.filter((r) => !isDesiredIpRule(want, r)), ...exact.slice(1)]) {
    out.push({ kind: 'unexpected', version: want.version, where: 'ip rule', item: JSON.stringify(r) });
  }
  const where = `ip route table ${want.table}`;
  const good = routes.filter(isDesiredRoute);
  if (good.length === 0) out.push({ kind: 'missing', version: want.version, where, item: describeRoute(want) });
  for (const r of routes.filter((r) => !isDesiredRoute(r))) {
    out.push({ kind: 'unexpected', version: want.version, where, item: JSON.stringify(r) });
  }
  return out;
}
