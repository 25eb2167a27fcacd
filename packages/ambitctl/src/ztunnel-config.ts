// `ambitctl ztunnel-config` (alias zc): reads the node agent's admin /config_dump (ztunnel's camelCase shape) from
// a file (-f), an admin address (--admin-address host:port) or the agent pod on a node (--node, pod IP + 15000:
// the agent runs with hostNetwork), and prints workloads, services, policies, certificates or connections.
import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { parseFlags, str } from './args.js';
import { apiMessage, connect } from './kube.js';
import { CliError, formatStructured, formatTable, parseOutputFormat, type CliIo } from './io.js';

type Dump = {
  workloads?: Record<string, any>[] | Record<string, Record<string, any>>;
  services?: Record<string, any>[] | Record<string, Record<string, any>>;
  policies?: Record<string, any>[] | Record<string, Record<string, any>>;
  certificates?: Record<string, any>[];
  workloadState?: Record<string, { name?: string; namespace?: string; state?: string; connections?: { inbound?: any[]; outbound?: any[] } }>;
  [key: string]: unknown;
};

const SECTIONS: Record<string, string> = {
  workload: 'workloads', workloads: 'workloads', w: 'workloads',
  service: 'services', services: 'services', s: 'services', svc: 'services',
  policy: 'policies', policies: 'policies', p: 'policies', pol: 'policies',
  certificate: 'certificates', certificates: 'certificates', certs: 'certificates', cert: 'certificates',
  connections: 'connections', cons: 'connections',
  all: 'all',
};

export const ZTUNNEL_CONFIG_HELP = `Inspect the node agent's configuration (istioctl ztunnel-config)

Usage:
  ambitctl ztunnel-config [workloads|services|policies|certificates|connections|all] [flags]

Flags:
  -f, --file string              read a config_dump JSON file instead of asking an agent
      --admin-address string     the agent's admin address host:port (default: the agent pod on --node, port 15000)
      --node string              the node whose agent to ask
      --proxy-admin-port int     the agent's admin port (default 15000)
      --ztunnel-namespace string the namespace of the agent DaemonSet (default istio-system)
  -o, --output string            short, json or yaml (default short)
      --address string           (workloads) only the workload with this IP
      --workload-namespace string, --service-namespace string, --policy-namespace string
      --direction string         (connections) inbound or outbound
`;

const asList = (v: Dump['workloads']): Record<string, any>[] => (Array.isArray(v) ? v : Object.values(v ?? {}));

export async function ztunnelConfigCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [what, ...rest] = argv;
  if (what === undefined || what === 'help' || what === '--help' || what === '-h') {
    io.out(ZTUNNEL_CONFIG_HELP);
    return what === undefined ? 1 : 0;
  }
  const section = SECTIONS[what];
  if (!section) throw new CliError(`unknown ztunnel-config section "${what}": use workloads, services, policies, certificates, connections or all`);
  const { values } = parseFlags(rest, {
    file: { type: 'string', short: 'f' },
    'admin-address': { type: 'string' },
    node: { type: 'string' },
    'proxy-admin-port': { type: 'string' },
    'ztunnel-namespace': { type: 'string' },
    output: { type: 'string', short: 'o' },
    address: { type: 'string' },
    'workload-namespace': { type: 'string' },
    'workload-node': { type: 'string' },
    'service-namespace': { type: 'string' },
    'policy-namespace': { type: 'string' },
    direction: { type: 'string' },
    raw: { type: 'boolean' },
  });
  const format = parseOutputFormat(str(values, 'output'), ['short', 'json', 'yaml'], 'short');
  const dump = await loadDump(values, io);
  const ns = (key: string) => str(values, key);
  let rows: Record<string, any>[];
  switch (section) {
    case 'workloads':
      rows = asList(dump.workloads).filter((w) => (!ns('workload-namespace') || w.namespace === ns('workload-namespace'))
        && (!ns('workload-node') || w.node === ns('workload-node'))
        && (!ns('address') || (w.workloadIps ?? w.addresses ?? []).includes(ns('address'))));
      break;
    case 'services':
      rows = asList(dump.services).filter((s) => !ns('service-namespace') || s.namespace === ns('service-namespace'));
      break;
    case 'policies':
      rows = asList(dump.policies).filter((p) => !ns('policy-namespace') || p.namespace === ns('policy-namespace'));
      break;
    case 'certificates':
      rows = dump.certificates ?? [];
      break;
    case 'connections': {
      const dir = str(values, 'direction');
      if (dir !== undefined && dir !== 'inbound' && dir !== 'outbound') throw new CliError(`--direction must be inbound or outbound, not "${dir}"`);
      rows = [];
      for (const [uid, st] of Object.entries(dump.workloadState ?? {})) {
        for (const d of ['inbound', 'outbound'] as const) {
          if (dir && dir !== d) continue;
          for (const c of st.connections?.[d] ?? []) rows.push({ workload: st.name ? `${st.name}.${st.namespace}` : uid, direction: d, ...c });
        }
      }
      break;
    }
    default:
      rows = [];
  }
  if (section === 'all') {
    if (format === 'short') {
      for (const s of ['workloads', 'services', 'policies', 'certificates'] as const) {
        io.out(`${s.toUpperCase()}\n`);
        io.out(table(s, s === 'certificates' ? dump.certificates ?? [] : asList(dump[s] as Dump['workloads'])));
        io.out('\n');
      }
    } else io.out(formatStructured(dump, format as 'json' | 'yaml'));
    return 0;
  }
  if (format !== 'short') io.out(format === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : stringify(rows));
  else io.out(table(section, rows));
  return 0;
}

function table(section: string, rows: Record<string, any>[]): string {
  switch (section) {
    case 'workloads':
      return formatTable(['NAMESPACE', 'POD NAME', 'ADDRESS', 'NODE', 'WAYPOINT', 'PROTOCOL'], rows.map((w) => [
        w.namespace ?? '', w.name ?? '', (w.workloadIps ?? w.addresses ?? [])[0] ?? '', w.node ?? '',
        w.waypoint?.destination ?? 'None', w.protocol ?? w.tunnelProtocol ?? 'TCP',
      ]));
    case 'services':
      return formatTable(['NAMESPACE', 'SERVICE NAME', 'SERVICE VIP', 'WAYPOINT', 'ENDPOINTS'], rows.map((s) => {
        const eps = Object.values(s.endpoints ?? {}) as { status?: string }[];
        const healthy = eps.filter((e) => e.status === undefined || e.status === 'Healthy' || e.status === 'HEALTHY').length;
        return [s.namespace ?? '', s.name ?? s.hostname ?? '', (s.vips ?? [])[0] ?? '', s.waypoint?.destination ?? 'None', `${healthy}/${eps.length}`];
      }));
    case 'policies':
      return formatTable(['NAMESPACE', 'POLICY NAME', 'ACTION', 'SCOPE'], rows.map((p) => [p.namespace ?? '', p.name ?? '', p.action ?? '', p.scope ?? '']));
    case 'certificates':
      return formatTable(['CERTIFICATE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'], rows.flatMap((c) => {
        const chain: any[] = c.certChain ?? [];
        const leaf = chain.map((x, i) => [c.identity ?? '', i === 0 ? 'Leaf' : 'Intermediate', c.state ?? '', String(Date.parse(x.expirationTime) > Date.now()), x.serialNumber ?? '', x.expirationTime ?? '', x.validFrom ?? '']);
        const roots = (c.rootCerts ?? []).map((x: any) => ['ROOTCA', 'CA', c.state ?? '', String(Date.parse(x.expirationTime) > Date.now()), x.serialNumber ?? '', x.expirationTime ?? '', x.validFrom ?? '']);
        return chain.length ? [...leaf, ...roots] : [[c.identity ?? '', 'Leaf', c.state ?? '', 'false', '', '', '']];
      }));
    case 'connections':
      return formatTable(['WORKLOAD', 'DIRECTION', 'LOCAL', 'REMOTE', 'REMOTE TARGET', 'PROTOCOL'], rows.map((c) => [
        c.workload, c.direction, c.src ?? c.local ?? '', c.originalDst ?? c.remote ?? '', c.actualDst ?? c.dst ?? '', c.protocol ?? '',
      ]));
    default:
      return '';
  }
}

async function loadDump(values: Record<string, unknown>, io: CliIo): Promise<Dump> {
  const file = str(values, 'file');
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      return JSON.parse(text) as Dump;
    } catch (err) {
      throw new CliError(`${file} is not a config_dump JSON document: ${(err as Error).message}`);
    }
  }
  let address = str(values, 'admin-address');
  if (!address) {
    const node = str(values, 'node');
    if (!node) throw new CliError('say where the agent is: --node <node>, --admin-address host:port or -f <config_dump.json>');
    const port = str(values, 'proxy-admin-port') ?? '15000';
    const kube = connect({ ...(str(values, 'kubeconfig') ? { kubeconfig: str(values, 'kubeconfig')! } : {}), ...(str(values, 'context') ? { context: str(values, 'context')! } : {}) }, io);
    const agentNs = str(values, 'ztunnel-namespace') ?? 'istio-system';
    let pods;
    try {
      pods = await kube.core.listNamespacedPod({ namespace: agentNs, labelSelector: 'app=ztunnel', fieldSelector: `spec.nodeName=${node}` });
    } catch (err) {
      throw new CliError(`cannot find the agent on node ${node}: ${apiMessage(err)}`);
    }
    const pod = pods.items.find((p) => p.status?.phase === 'Running' && p.status.podIP);
    if (!pod) throw new CliError(`no running agent pod (label app=ztunnel) in namespace ${agentNs} on node ${node}`);
    address = `${pod.status!.podIP}:${port}`;
  }
  const url = `http://${address}/config_dump`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CliError(`cannot reach the agent's admin endpoint ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  if (!res.ok) throw new CliError(`the agent's admin endpoint ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as Dump;
}

export { table as ztunnelConfigTable };
