// `ambitctl waypoint generate|apply|delete|list|status`, with istioctl's flags, defaults and warnings
// (istioctl/pkg/waypoint): a waypoint is a Gateway of class istio-waypoint with one HBONE listener on 15008.
import { stringify } from 'yaml';
import { PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { LABELS } from '@ambit/api';
import { bool, parseDurationMs, parseFlags, str } from './args.js';
import { apiMessage, connect, statusOf, type Kube } from './kube.js';
import { CliError, formatStructured, formatTable, parseOutputFormat, type CliIo } from './io.js';
import { waitFor } from './progress.js';

export const WAYPOINT_CLASS = 'istio-waypoint';
export const FIELD_MANAGER = 'ambitctl';
const GATEWAY_API = 'gateway.networking.k8s.io/v1';
const TRAFFIC_TYPES = ['service', 'workload', 'all', 'none'] as const;
const DEFAULT_TIMEOUT = '90s';

interface GatewayObject extends KubernetesObject {
  spec?: { gatewayClassName?: string; listeners?: { name: string; port: number; protocol: string }[] };
  status?: { conditions?: Condition[]; addresses?: { type?: string; value: string }[] };
}
interface Condition { type: string; status: string; reason?: string; message?: string; observedGeneration?: number }

const COMMON_FLAGS = {
  name: { type: 'string' },
  revision: { type: 'string', short: 'r' },
} as const;

/** The Gateway istioctl generates for a waypoint. */
export function waypointGateway(opts: { name: string; namespace: string; trafficType?: string; revision?: string }): GatewayObject {
  if (opts.name === 'none') throw new CliError('invalid name provided for waypoint, \'none\' is a reserved value');
  if (opts.trafficType !== undefined && !(TRAFFIC_TYPES as readonly string[]).includes(opts.trafficType)) {
    throw new CliError(`invalid traffic type: ${opts.trafficType}. Valid options are: ${TRAFFIC_TYPES.join(', ')}`);
  }
  const labels: Record<string, string> = {};
  if (opts.trafficType !== undefined) labels[LABELS.waypointFor] = opts.trafficType;
  if (opts.revision) labels['istio.io/rev'] = opts.revision;
  return {
    apiVersion: GATEWAY_API,
    kind: 'Gateway',
    metadata: { name: opts.name, namespace: opts.namespace, ...(Object.keys(labels).length ? { labels } : {}) },
    spec: { gatewayClassName: WAYPOINT_CLASS, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  };
}

export const WAYPOINT_HELP = `Manage waypoint configuration

Usage:
  ambitctl waypoint [command]

Available Commands:
  apply       Apply a waypoint configuration
  delete      Delete a waypoint configuration
  generate    Generate a waypoint configuration
  list        List managed waypoint configurations
  status      Show the status of waypoints in a namespace

Flags:
      --name string        name of the waypoint (default "waypoint")
  -n, --namespace string   namespace (default: the context's)
  -r, --revision string    the revision to label the waypoint with
      --for string         traffic type the waypoint handles: service, workload, all, none
      --enroll-namespace   (apply) label the namespace istio.io/use-waypoint=<name>
      --overwrite          (apply) replace an existing istio.io/use-waypoint label
  -w, --wait               (apply, status) wait for the waypoint to be Programmed
      --waypoint-timeout   how long to wait (default 90s)
      --all                (delete) delete all waypoints in the namespace
  -A, --all-namespaces     (list, status) all namespaces
  -o, --output string      (list) table, json or yaml
`;

export async function waypointCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'generate': return generate(rest, io);
    case 'apply': return apply(rest, io);
    case 'delete': return remove(rest, io);
    case 'list': return list(rest, io);
    case 'status': return status(rest, io);
    case undefined: case 'help': case '--help': case '-h':
      io.out(WAYPOINT_HELP);
      return verb === undefined ? 1 : 0;
    default:
      throw new CliError(`unknown waypoint command "${verb}": use generate, apply, delete, list or status`);
  }
}

function kubeOptions(values: Record<string, unknown>) {
  const o: { kubeconfig?: string; context?: string; namespace?: string } = {};
  const k = str(values, 'kubeconfig');
  const c = str(values, 'context');
  const n = str(values, 'namespace');
  if (k) o.kubeconfig = k;
  if (c) o.context = c;
  if (n) o.namespace = n;
  return o;
}

function gatewayFromFlags(values: Record<string, unknown>, namespace: string): GatewayObject {
  const trafficType = str(values, 'for');
  const revision = str(values, 'revision');
  return waypointGateway({
    name: str(values, 'name') ?? 'waypoint',
    namespace,
    ...(trafficType !== undefined ? { trafficType } : {}),
    ...(revision ? { revision } : {}),
  });
}

async function generate(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(argv, { ...COMMON_FLAGS, for: { type: 'string' } });
  // generate needs no cluster: the namespace is -n or "default" (the context's when a kubeconfig loads).
  let namespace = str(values, 'namespace');
  if (!namespace) {
    try {
      namespace = connect(kubeOptions(values), io).namespace;
    } catch {
      namespace = 'default';
    }
  }
  io.out(stringify(gatewayFromFlags(values, namespace)));
  return 0;
}

async function requireGatewayCrds(kube: Kube): Promise<void> {
  try {
    await kube.crds.readCustomResourceDefinition({ name: 'gateways.gateway.networking.k8s.io' });
  } catch (err) {
    if (statusOf(err) === 404) {
      throw new CliError('missing Kubernetes Gateway CRDs need to be installed before applying a waypoint: the CRD gateways.gateway.networking.k8s.io was not found; install the Gateway API standard CRDs first');
    }
    throw new CliError(`cannot check for the Gateway CRDs: ${apiMessage(err)}`);
  }
}

async function apply(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(argv, {
    ...COMMON_FLAGS,
    for: { type: 'string' },
    'enroll-namespace': { type: 'boolean' },
    overwrite: { type: 'boolean' },
    wait: { type: 'boolean', short: 'w' },
    'waypoint-timeout': { type: 'string' },
  });
  const timeoutMs = parseDurationMs(str(values, 'waypoint-timeout') ?? DEFAULT_TIMEOUT, 'waypoint-timeout');
  const kube = connect(kubeOptions(values), io);
  const gw = gatewayFromFlags(values, kube.namespace);
  const name = gw.metadata!.name!;
  let ns;
  try {
    ns = await kube.core.readNamespace({ name: kube.namespace });
  } catch (err) {
    throw new CliError(statusOf(err) === 404 ? `namespace "${kube.namespace}" not found` : `cannot read namespace ${kube.namespace}: ${apiMessage(err)}`);
  }
  await requireGatewayCrds(kube);
  if (ns.metadata?.labels?.[LABELS.dataplaneMode] !== 'ambient') {
    io.err(`warning: namespace is not enrolled in ambient. Consider running\t'kubectl label namespace ${kube.namespace} ${LABELS.dataplaneMode}=ambient'\n`);
  }
  try {
    await kube.objects.patch(gw, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  } catch (err) {
    throw new CliError(`cannot apply waypoint ${kube.namespace}/${name}: ${apiMessage(err)}`);
  }
  io.out(`waypoint ${kube.namespace}/${name} applied\n`);
  if (bool(values, 'enroll-namespace')) {
    const current = ns.metadata?.labels?.[LABELS.useWaypoint];
    if (current !== undefined && current !== name && !bool(values, 'overwrite')) {
      io.err(`warning: namespace ${kube.namespace} already has the label ${LABELS.useWaypoint}=${current}; not changing it. Use --overwrite to replace it\n`);
    } else if (current !== name) {
      try {
        await kube.core.patchNamespace({ name: kube.namespace, body: { metadata: { labels: { [LABELS.useWaypoint]: name } } } }, mergePatch());
      } catch (err) {
        throw new CliError(`cannot label namespace ${kube.namespace}: ${apiMessage(err)}`);
      }
      io.out(`namespace ${kube.namespace} labeled with "${LABELS.useWaypoint}: ${name}"\n`);
    }
  }
  if (bool(values, 'wait')) await waitProgrammed(kube, kube.namespace, name, timeoutMs, io);
  return 0;
}

function mergePatch() {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}

function programmed(gw: GatewayObject): Condition | undefined {
  return gw.status?.conditions?.find((c) => c.type === 'Programmed');
}

async function readGateway(kube: Kube, namespace: string, name: string): Promise<GatewayObject | undefined> {
  try {
    return await kube.objects.read<GatewayObject>({ apiVersion: GATEWAY_API, kind: 'Gateway', metadata: { name, namespace } });
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw new CliError(`cannot read waypoint ${namespace}/${name}: ${apiMessage(err)}`);
  }
}

async function waitProgrammed(kube: Kube, namespace: string, name: string, timeoutMs: number, io: CliIo): Promise<void> {
  let last: GatewayObject | undefined;
  const ok = await waitFor(io, `waiting for waypoint ${namespace}/${name} to be programmed`, timeoutMs, async () => {
    last = await readGateway(kube, namespace, name);
    const c = last && programmed(last);
    return c?.status === 'True' && (c.observedGeneration === undefined || c.observedGeneration === last?.metadata?.generation);
  });
  if (!ok) {
    const c = last && programmed(last);
    const why = !last ? 'the Gateway does not exist'
      : !c ? 'no Programmed condition yet: is the Ambit controller running and leading?'
        : `Programmed=${c.status}${c.reason ? ` (${c.reason})` : ''}${c.message ? `: ${c.message}` : ''}`;
    throw new CliError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for waypoint ${namespace}/${name} to be programmed: ${why}`);
  }
  io.out(`waypoint ${namespace}/${name} programmed\n`);
}

async function listWaypoints(kube: Kube, namespace: string | undefined): Promise<GatewayObject[]> {
  try {
    const res = await kube.objects.list<GatewayObject>(GATEWAY_API, 'Gateway', namespace);
    return res.items.filter((g) => g.spec?.gatewayClassName === WAYPOINT_CLASS)
      .sort((a, b) => `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`));
  } catch (err) {
    if (statusOf(err) === 404) throw new CliError('the Gateway API CRDs are not installed: there are no waypoints');
    throw new CliError(`cannot list waypoints: ${apiMessage(err)}`);
  }
}

async function remove(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, { ...COMMON_FLAGS, all: { type: 'boolean' } });
  const kube = connect(kubeOptions(values), io);
  const revision = str(values, 'revision');
  let names = positionals;
  if (bool(values, 'all')) {
    if (positionals.length > 0) throw new CliError('cannot use --all with waypoint names');
    names = (await listWaypoints(kube, kube.namespace))
      .filter((g) => !revision || g.metadata?.labels?.['istio.io/rev'] === revision)
      .map((g) => g.metadata!.name!);
    if (names.length === 0) {
      io.out(`no waypoints found in namespace ${kube.namespace}\n`);
      return 0;
    }
  } else if (names.length === 0) {
    names = [str(values, 'name') ?? 'waypoint'];
  }
  let failed = 0;
  for (const name of names) {
    const gw = await readGateway(kube, kube.namespace, name);
    if (!gw || gw.spec?.gatewayClassName !== WAYPOINT_CLASS) {
      io.err(`error: waypoint ${kube.namespace}/${name} not found\n`);
      failed++;
      continue;
    }
    if (revision && gw.metadata?.labels?.['istio.io/rev'] !== revision) continue;
    try {
      await kube.objects.delete({ apiVersion: GATEWAY_API, kind: 'Gateway', metadata: { name, namespace: kube.namespace } });
      io.out(`waypoint ${kube.namespace}/${name} deleted\n`);
    } catch (err) {
      io.err(`error: cannot delete waypoint ${kube.namespace}/${name}: ${apiMessage(err)}\n`);
      failed++;
    }
  }
  return failed > 0 ? 1 : 0;
}

function row(g: GatewayObject, allNamespaces: boolean): string[] {
  const c = programmed(g);
  const cells = [g.metadata?.name ?? '', g.metadata?.labels?.['istio.io/rev'] ?? 'default', g.metadata?.labels?.[LABELS.waypointFor] ?? 'service', c?.status ?? 'Unknown'];
  return allNamespaces ? [g.metadata?.namespace ?? '', ...cells] : cells;
}

async function list(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(argv, { 'all-namespaces': { type: 'boolean', short: 'A' }, output: { type: 'string', short: 'o' } });
  const format = parseOutputFormat(str(values, 'output'), ['table', 'json', 'yaml'], 'table');
  const kube = connect(kubeOptions(values), io);
  const all = bool(values, 'all-namespaces');
  const gws = await listWaypoints(kube, all ? undefined : kube.namespace);
  if (format !== 'table') {
    io.out(formatStructured(gws, format as 'json' | 'yaml'));
    return 0;
  }
  if (gws.length === 0) {
    io.out(all ? 'No waypoints found.\n' : `No waypoints found in namespace ${kube.namespace}.\n`);
    return 0;
  }
  const header = ['NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'];
  io.out(formatTable(all ? ['NAMESPACE', ...header] : header, gws.map((g) => row(g, all))));
  return 0;
}

async function status(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    ...COMMON_FLAGS,
    wait: { type: 'boolean', short: 'w', default: true },
    'waypoint-timeout': { type: 'string' },
    'all-namespaces': { type: 'boolean', short: 'A' },
  });
  const timeoutMs = parseDurationMs(str(values, 'waypoint-timeout') ?? DEFAULT_TIMEOUT, 'waypoint-timeout');
  const kube = connect(kubeOptions(values), io);
  const all = bool(values, 'all-namespaces');
  let targets: { namespace: string; name: string }[];
  if (all || (!str(values, 'name') && positionals.length === 0)) {
    targets = (await listWaypoints(kube, all ? undefined : kube.namespace)).map((g) => ({ namespace: g.metadata!.namespace!, name: g.metadata!.name! }));
    if (targets.length === 0) {
      io.out(all ? 'No waypoints found.\n' : `No waypoints found in namespace ${kube.namespace}.\n`);
      return 0;
    }
  } else {
    targets = (positionals.length ? positionals : [str(values, 'name')!]).map((name) => ({ namespace: kube.namespace, name }));
  }
  let failed = 0;
  for (const t of targets) {
    if (bool(values, 'wait')) {
      try {
        await waitProgrammed(kube, t.namespace, t.name, timeoutMs, io);
      } catch (err) {
        io.err(`error: ${(err as Error).message}\n`);
        failed++;
      }
    } else {
      const gw = await readGateway(kube, t.namespace, t.name);
      const c = gw && programmed(gw);
      io.out(`waypoint ${t.namespace}/${t.name}: ${!gw ? 'not found' : c ? `Programmed=${c.status}${c.reason ? ` (${c.reason})` : ''}` : 'not programmed yet'}\n`);
      if (c?.status !== 'True') failed++;
    }
  }
  return failed > 0 ? 1 : 0;
}
