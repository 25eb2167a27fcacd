// charts/ambit without a cluster: helm lint, helm template with every profile, least privilege, the values schema,
// the env contract with the controller and the agent, and the images (docker/Dockerfile) the chart names.
// Needs the built helm (scripts/install-k8s-binaries.sh); fails, never skips, without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, parseDocument, type YAMLMap } from 'yaml';
import { WATCHED_KINDS } from '@ambit/api';
import { defaultImages } from '../kubelet/image-registry.js';
import { parseManifest, type KubernetesObject } from '../cluster/cluster.js';
import { parseDockerfile } from './dockerfile.js';
import {
  CHART_DIR, GATEWAY_API_VERSION, PROFILES, REPO_ROOT, envNamesIn, findObject, helm, mustFind, profileFiles, profilePath,
  renderChart, templateArgs, type PolicyRule, type Workload,
} from './helm.js';

const NS = 'istio-system';
const AGENT_CAPABILITIES = ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'];

const chartValues = (): Record<string, unknown> => parseDocument(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')).toJS() as Record<string, unknown>;
const schema = (): SchemaNode => JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as SchemaNode;
const dockerfile = () => parseDockerfile(readFileSync(join(REPO_ROOT, 'docker', 'Dockerfile'), 'utf8'));

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  $ref?: string;
}

function rulesOf(o: KubernetesObject): PolicyRule[] {
  return ((o as { rules?: PolicyRule[] }).rules ?? []);
}

function envOf(w: Workload): Map<string, string | undefined> {
  return new Map((w.spec.template.spec.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
}

/** Objects must be rejected by helm with this text on stderr. */
async function assertRejected(args: string[], expected: RegExp): Promise<void> {
  const r = await helm(args);
  assert.notEqual(r.code, 0, `helm accepted the values; stdout starts: ${r.stdout.slice(0, 200)}`);
  assert.match(r.stderr, expected);
}

test('helm lint --strict passes for the chart alone and with every profile', async () => {
  for (const profile of [undefined, ...PROFILES]) {
    const r = await helm(['lint', '--strict', CHART_DIR, '--namespace', NS, ...(profile ? ['-f', profilePath(profile)] : [])]);
    assert.equal(r.code, 0, `helm lint ${profile ?? '(no profile)'}: ${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test("the profiles are Istio's four: default, minimal, demo and ambient", () => {
  assert.deepEqual(profileFiles(), ['ambient.yaml', 'default.yaml', 'demo.yaml', 'minimal.yaml']);
  for (const p of PROFILES) assert.match(readFileSync(profilePath(p), 'utf8'), /^# Profile "/, `profiles/${p}.yaml starts with a comment saying what it is`);
});

test('every profile renders and every rendered object parses, in the release namespace unless cluster-scoped', async () => {
  const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'GatewayClass']);
  for (const profile of PROFILES) {
    const objects = await renderChart({ profile, apiVersions: [GATEWAY_API_VERSION] });
    assert.ok(objects.length >= 8, `${profile}: ${objects.length} objects`);
    const seen = new Set<string>();
    for (const o of objects) {
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${profile}: object without apiVersion/kind/name: ${JSON.stringify(o).slice(0, 200)}`);
      const id = `${o.kind}/${o.metadata!.namespace ?? ''}/${o.metadata!.name}`;
      assert.ok(!seen.has(id), `${profile}: ${id} rendered twice`);
      seen.add(id);
      if (clusterScoped.has(o.kind!)) assert.equal(o.metadata!.namespace, undefined, `${profile}: ${id} is cluster-scoped`);
      else assert.equal(o.metadata!.namespace, NS, `${profile}: ${o.kind} ${o.metadata!.name} must be in the release namespace`);
      assert.equal((o.metadata!.labels as Record<string, string> | undefined)?.['app.kubernetes.io/part-of'], 'ambit', `${profile}: ${id} carries the part-of label (uninstall checks rely on it)`);
    }
    mustFind(objects, 'Deployment', 'ambit-controller');
    mustFind(objects, 'Service', 'istiod');
    mustFind(objects, 'GatewayClass', 'istio-waypoint');
    const agent = findObject(objects, 'DaemonSet', 'ztunnel');
    if (profile === 'minimal') assert.equal(agent, undefined, 'minimal is the control plane only');
    else assert.ok(agent, `${profile} installs the node agent`);
  }
});

test('default profile: controller Deployment with 2 replicas, leader election, probes on 15014 and a PodDisruptionBudget', async () => {
  const objects = await renderChart({ profile: 'default' });
  const d = mustFind<Workload>(objects, 'Deployment', 'ambit-controller');
  assert.equal(d.spec.replicas, 2);
  const c = d.spec.template.spec.containers[0]!;
  assert.equal(c.image, 'ambit/controller:0.1.0');
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/ready', port: 15014 });
  assert.ok(c.livenessProbe, 'liveness probe');
  const env = envOf(d);
  assert.equal(env.get('AMBIT_LEADER_ELECTION'), 'true');
  assert.equal(env.get('AMBIT_XDS_PORT'), '15012');
  assert.equal(env.get('AMBIT_MONITORING_PORT'), '15014');
  assert.equal(env.get('AMBIT_WAYPOINT_IMAGE'), 'ambit/waypoint:0.1.0');
  assert.equal(env.get('CA_TRUSTED_NODE_ACCOUNTS'), `${NS}/ztunnel`);
  assert.deepEqual(c.ports?.map((p) => p.containerPort), [15012, 15014]);
  const pdb = mustFind<{ spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } }>(objects, 'PodDisruptionBudget', 'ambit-controller');
  assert.equal(pdb.spec.minAvailable, 1);
  for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(d.spec.template.metadata.labels?.[k], v, `PDB selects the controller pods (${k})`);
});

test('minimal has no node agent and no agent RBAC; demo has one controller replica and no PodDisruptionBudget', async () => {
  const minimal = await renderChart({ profile: 'minimal' });
  for (const [kind, name] of [['DaemonSet', 'ztunnel'], ['ServiceAccount', 'ztunnel'], ['ClusterRole', `ambit-ztunnel-${NS}`]] as const) {
    assert.equal(findObject(minimal, kind, name), undefined, `minimal has no ${kind} ${name}`);
  }
  const demo = await renderChart({ profile: 'demo' });
  assert.equal(mustFind<Workload>(demo, 'Deployment', 'ambit-controller').spec.replicas, 1);
  assert.equal(findObject(demo, 'PodDisruptionBudget', 'ambit-controller'), undefined);
  assert.equal(envOf(mustFind<Workload>(demo, 'DaemonSet', 'ztunnel')).get('LOG_LEVEL'), 'debug');
});

test('Service istiod serves xDS+CA on 15012 and monitoring on 15014 and selects the controller pods', async () => {
  const objects = await renderChart({ profile: 'default' });
  const svc = mustFind<{ spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: number }[] } }>(objects, 'Service', 'istiod');
  assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['grpc-xds', 15012, 15012], ['http-monitoring', 15014, 15014]]);
  const labels = mustFind<Workload>(objects, 'Deployment', 'ambit-controller').spec.template.metadata.labels ?? {};
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v, `selector ${k}=${v}`);
  const agentEnv = envOf(mustFind<Workload>(objects, 'DaemonSet', 'ztunnel'));
  assert.equal(agentEnv.get('XDS_ADDRESS'), `istiod.${NS}.svc:15012`);
  assert.equal(agentEnv.get('CA_ADDRESS'), `istiod.${NS}.svc:15012`);
});

test('node agent DaemonSet: surge update, exactly NET_ADMIN SYS_ADMIN NET_RAW, no host namespaces, readiness 15021, metrics on 15020', async () => {
  const objects = await renderChart({ profile: 'default', set: ['ztunnel.runDir=/run/x', 'ztunnel.cniBinDir=/b', 'ztunnel.cniConfDir=/c', 'ztunnel.cniNetnsDir=/n'] });
  const ds = mustFind<Workload>(objects, 'DaemonSet', 'ztunnel');
  assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  const pod = ds.spec.template.spec;
  assert.equal(pod.serviceAccountName, 'ztunnel');
  assert.ok(!pod.hostNetwork && !pod.hostPID && !pod.hostIPC, 'no host network, PID or IPC namespace');
  assert.equal(pod.initContainers, undefined);
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0]!;
  assert.equal(c.image, 'ambit/ztunnel:0.1.0');
  assert.deepEqual([...(c.securityContext?.capabilities?.add ?? [])].sort(), AGENT_CAPABILITIES);
  assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
  assert.equal(c.securityContext?.privileged, false);
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/healthz/ready', port: 15021 });
  assert.deepEqual(c.ports?.map((p) => p.containerPort), [15020]);
  const ann = ds.spec.template.metadata.annotations ?? {};
  assert.equal(ann['prometheus.io/scrape'], 'true');
  assert.equal(ann['prometheus.io/port'], '15020');
  assert.equal(ds.spec.template.metadata.labels?.['istio.io/dataplane-mode'], 'none', 'the agent never captures itself');
  // Host paths: exactly the four directories the values name, each mounted.
  const hostPaths = Object.fromEntries((pod.volumes ?? []).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]));
  assert.deepEqual(hostPaths, { 'cni-netns-dir': '/n', 'host-proc': '/proc', 'ambit-run': '/run/x', 'cni-bin-dir': '/b', 'cni-conf-dir': '/c' });
  const mounts = Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.name, m]));
  const env = envOf(ds);
  for (const name of Object.keys(hostPaths)) assert.ok(mounts[name], `volume ${name} is mounted`);
  assert.equal(mounts['cni-netns-dir']!.mountPath, '/n', 'netns paths from the CNI runtime work unchanged inside the agent');
  assert.equal(mounts['cni-netns-dir']!.mountPropagation, 'HostToContainer', 'netns bind mounts made after start are visible');
  assert.equal(env.get('AMBIT_HOST_NETNS_DIR'), '/n');
  assert.deepEqual([mounts['host-proc']!.mountPath, mounts['host-proc']!.readOnly, env.get('AMBIT_HOST_PROC')], ['/host/proc', true, '/host/proc']);
  assert.equal(mounts['ambit-run']!.mountPath, '/run/x', 'the socket path is the same for the plugin on the node and the agent');
  assert.equal(env.get('AMBIT_CNI_SOCKET'), '/run/x/cni.sock');
  assert.equal(env.get('AMBIT_POD_SNAPSHOT'), '/run/x/pods.json');
  assert.equal(mounts['istiod-ca-cert']!.mountPath, '/var/run/secrets/istio');
  assert.equal(env.get('XDS_ROOT_CA'), '/var/run/secrets/istio/root-cert.pem');
  assert.equal(env.get('AUTH_TOKEN'), '/var/run/secrets/tokens/istio-token');
});

test('RBAC names every verb, resource and group (no wildcards) and the node agent gets only pods, namespaces and its own DaemonSet', async () => {
  const objects = await renderChart({ profile: 'default', apiVersions: [GATEWAY_API_VERSION] });
  const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  assert.equal(roles.length, 4);
  for (const role of roles) {
    for (const rule of rulesOf(role)) {
      const where = `${role.kind} ${role.metadata!.name} ${JSON.stringify(rule)}`;
      for (const list of [rule.verbs, rule.resources ?? [], rule.apiGroups ?? []]) assert.ok(!list.some((x) => x.includes('*')), `wildcard in ${where}`);
      assert.equal(rule.nonResourceURLs, undefined, where);
      for (const dangerous of ['escalate', 'bind', 'impersonate', 'deletecollection']) assert.ok(!rule.verbs.includes(dangerous), `${dangerous} in ${where}`);
      assert.ok(!(rule.resources ?? []).some((r) => /^(clusterroles|clusterrolebindings|roles|rolebindings|customresourcedefinitions|pods\/exec|nodes\/proxy|serviceaccounts\/token)$/.test(r)), `privileged resource in ${where}`);
    }
  }
  const agent = mustFind(objects, 'ClusterRole', `ambit-ztunnel-${NS}`);
  assert.deepEqual(rulesOf(agent), [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch'] },
    { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
  ]);
  // In its own namespace, the agent may read its own DaemonSet (to tell an upgrade from an uninstall) and nothing else.
  assert.deepEqual(rulesOf(mustFind(objects, 'Role', 'ambit-ztunnel')), [{ apiGroups: ['apps'], resources: ['daemonsets'], resourceNames: ['ztunnel'], verbs: ['get'] }]);
  // Every kind the controller watches (packages/api WATCHED_KINDS) is readable cluster-wide.
  for (const [kind, r] of Object.entries(WATCHED_KINDS)) {
    const verbs = rulesOf(mustFind(objects, 'ClusterRole', `ambit-controller-${NS}`))
      .filter((rule) => rule.apiGroups?.includes(r.group) && rule.resources?.includes(r.plural)).flatMap((rule) => rule.verbs);
    for (const v of ['get', 'list', 'watch']) assert.ok(verbs.includes(v), `controller cannot ${v} ${kind} (${r.group}/${r.plural})`);
  }
  // On Istio's API groups the controller gets exactly the kinds whose CRDs the chart ships: nothing it does not
  // implement, nothing it implements missing.
  const crds = readdirSync(join(CHART_DIR, 'crds')).filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseManifest(readFileSync(join(CHART_DIR, 'crds', f), 'utf8')))
    .map((o) => o as KubernetesObject & { spec: { group: string; names: { plural: string } } });
  assert.ok(crds.length > 0, 'charts/ambit/crds has CRDs');
  const istioGroups = new Set(crds.map((c) => c.spec.group));
  const granted = rulesOf(mustFind(objects, 'ClusterRole', `ambit-controller-${NS}`))
    .filter((r) => r.apiGroups?.some((g) => istioGroups.has(g)) && r.verbs.includes('watch'))
    .flatMap((r) => r.apiGroups!.flatMap((g) => r.resources!.map((x) => `${x}.${g}`))).sort();
  assert.deepEqual(granted, crds.map((c) => `${c.spec.names.plural}.${c.spec.group}`).sort());
  // The controller reads secrets and leases only in its own namespace (a Role), never cluster-wide.
  const controller = rulesOf(mustFind(objects, 'ClusterRole', `ambit-controller-${NS}`));
  assert.ok(!controller.some((r) => (r.resources ?? []).some((x) => x === 'secrets' || x === 'leases')), 'no cluster-wide secrets or leases');
  const writes = (resource: string, group?: string) =>
    controller.filter((r) => r.resources?.includes(resource) && (group === undefined || r.apiGroups?.includes(group))).flatMap((r) => r.verbs);
  assert.deepEqual(writes('tokenreviews'), ['create']);
  for (const r of ['deployments', 'serviceaccounts', 'configmaps']) for (const v of ['create', 'patch', 'delete']) assert.ok(writes(r).includes(v), `controller can ${v} ${r}`);
  assert.ok(!writes('pods').some((v) => v !== 'get' && v !== 'list' && v !== 'watch'), 'the controller only reads pods');
  const watched: Array<[string, string]> = [
    ['networking.istio.io', 'virtualservices'], ['networking.istio.io', 'serviceentries'], ['security.istio.io', 'authorizationpolicies'],
    ['telemetry.istio.io', 'telemetries'], ['gateway.networking.k8s.io', 'gateways'], ['gateway.networking.k8s.io', 'httproutes'],
    ['gateway.networking.k8s.io', 'grpcroutes'], ['discovery.k8s.io', 'endpointslices'], ['', 'nodes'], ['', 'namespaces'],
  ];
  for (const [g, r] of watched) assert.deepEqual(writes(r, g), ['get', 'list', 'watch'], `controller only watches ${g}/${r}`);
  for (const [g, r] of [['gateway.networking.k8s.io', 'gateways/status'], ['gateway.networking.k8s.io', 'httproutes/status'], ['security.istio.io', 'authorizationpolicies/status']]) {
    assert.deepEqual(writes(r!, g), ['update', 'patch'], r);
  }
  const role = mustFind(objects, 'Role', 'ambit-controller');
  assert.equal(role.metadata!.namespace, NS);
  assert.deepEqual(rulesOf(role).map((r) => r.resources), [['secrets'], ['leases']]);
  // Each binding names the chart's own service account in the release namespace.
  for (const b of objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')) {
    const subjects = (b as { subjects: { kind: string; name: string; namespace: string }[] }).subjects;
    assert.equal(subjects.length, 1);
    assert.equal(subjects[0]!.kind, 'ServiceAccount');
    assert.equal(subjects[0]!.namespace, NS);
    assert.ok(['ambit-controller', 'ztunnel'].includes(subjects[0]!.name));
  }
});

test('the controller runs as non-root without capabilities', async () => {
  const d = mustFind<Workload>(await renderChart({ profile: 'default' }), 'Deployment', 'ambit-controller');
  const pod = d.spec.template.spec;
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.notEqual(pod.securityContext?.runAsUser, 0);
  const sc = pod.containers[0]!.securityContext!;
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
  assert.ok(!pod.hostNetwork && !pod.hostPID && !(pod.volumes ?? []).some((v) => v.hostPath), 'no host access');
});

test('GatewayClass istio-waypoint is rendered only when the cluster serves the Gateway API, and can be turned off', async () => {
  const withApi = await renderChart({ apiVersions: [GATEWAY_API_VERSION] });
  const gc = mustFind<{ spec: { controllerName: string } }>(withApi, 'GatewayClass', 'istio-waypoint');
  assert.equal(gc.spec.controllerName, 'istio.io/mesh-controller');
  assert.equal(findObject(await renderChart({}), 'GatewayClass', 'istio-waypoint'), undefined);
  assert.equal(findObject(await renderChart({ apiVersions: [GATEWAY_API_VERSION], set: ['gatewayClasses.waypoint.enabled=false'] }), 'GatewayClass', 'istio-waypoint'), undefined);
});

test('every environment variable the chart sets is one the controller or the agent reads', async () => {
  const controllerEnv = envNamesIn(readFileSync(join(REPO_ROOT, 'packages/controller/src/settings/env.ts'), 'utf8'));
  const agentEnv = envNamesIn(readFileSync(join(REPO_ROOT, 'packages/ztunnel/src/config/env.ts'), 'utf8'));
  const objects = await renderChart({ profile: 'default', set: ['ztunnel.drainTimeoutSeconds=60'] });
  const check = (w: Workload, known: Set<string>, who: string) => {
    const unknown = [...envOf(w).keys()].filter((n) => !known.has(n));
    assert.deepEqual(unknown, [], `${who} does not read ${unknown.join(', ')}`);
  };
  check(mustFind<Workload>(objects, 'Deployment', 'ambit-controller'), controllerEnv, 'the controller (packages/controller/src/settings/env.ts)');
  check(mustFind<Workload>(objects, 'DaemonSet', 'ztunnel'), agentEnv, 'the agent (packages/ztunnel/src/config/env.ts)');
  assert.equal(envOf(mustFind<Workload>(objects, 'DaemonSet', 'ztunnel')).get('AMBIT_DRAIN_TIMEOUT_SECONDS'), '60');
  // 0 (the default) means "no bound": the variable must then be absent, since the agent reads 0 as "drain 0 s".
  assert.ok(!envOf(mustFind<Workload>(await renderChart({}), 'DaemonSet', 'ztunnel')).has('AMBIT_DRAIN_TIMEOUT_SECONDS'));
  // User env overrides the chart's value instead of adding a duplicate.
  const overridden = envOf(mustFind<Workload>(await renderChart({ set: ['controller.env.LOG_LEVEL=debug'] }), 'Deployment', 'ambit-controller'));
  assert.equal(overridden.get('LOG_LEVEL'), 'debug');
});

test('the schema refuses bad values at install time with a message naming the key', async () => {
  await assertRejected(templateArgs({ set: ['controller.replicas=two'] }), /at '\/controller\/replicas': got string, want integer/);
  await assertRejected(templateArgs({ set: ['controller.replica=2'] }), /at '\/controller': additional properties 'replica' not allowed/);
  await assertRejected(templateArgs({ set: ['ztunnel.logLevel=verbose'] }), /at '\/ztunnel\/logLevel'/);
  await assertRejected(templateArgs({ set: ['ztunnel.cniBinDir=opt/cni/bin'] }), /at '\/ztunnel\/cniBinDir'/);
  const dir = mkdtempSync(join(tmpdir(), 'ambit-chart-'));
  try {
    // A profile-like values file with a key the chart does not have (Istio's `pilot` instead of `controller`).
    const bad = join(dir, 'bad-profile.yaml');
    writeFileSync(bad, 'pilot:\n  replicaCount: 2\n');
    await assertRejected(templateArgs({ profile: 'demo', values: [bad] }), /additional properties 'pilot' not allowed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Cross-field rules the schema cannot express fail with the values to change.
  await assertRejected(templateArgs({ set: ['controller.leaderElection=false'] }), /controller\.leaderElection=false with controller\.replicas=2: .*set controller\.replicas=1/);
  await assertRejected(templateArgs({ set: ['controller.enabled=false'] }), /ztunnel\.enabled=true needs controller\.enabled=true/);
  await assertRejected(templateArgs({ namespace: 'kube-system' }), /not kube-system/);
});

test('every key of values.yaml has a comment and a schema entry, and every schema entry is in values.yaml', () => {
  const doc = parseDocument(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
  const root = schema();
  const missingComment: string[] = [];
  const missingSchema: string[] = [];
  // Walks the values alongside the schema; maps whose schema is a shared definition ($ref: resources, images, env
  // maps) are data, commented at their key.
  const walk = (map: YAMLMap, node: SchemaNode, path: string) => {
    map.items.forEach((pair, i) => {
      const key = String((pair.key as { value: unknown }).value);
      const keyPath = path ? `${path}.${key}` : key;
      const commented = Boolean((pair.key as { commentBefore?: string }).commentBefore) || (i === 0 && Boolean(map.commentBefore));
      if (!commented) missingComment.push(keyPath);
      const child = node.properties?.[key];
      if (!child) {
        missingSchema.push(keyPath);
        return;
      }
      if (isMap(pair.value) && child.properties && !child.$ref) walk(pair.value, child, keyPath);
    });
    for (const key of Object.keys(node.properties ?? {})) {
      if (!map.items.some((p) => String((p.key as { value: unknown }).value) === key)) missingSchema.push(`${path ? path + '.' : ''}${key} (in the schema only)`);
    }
  };
  assert.ok(isMap(doc.contents));
  walk(doc.contents, root, '');
  assert.deepEqual(missingComment, [], 'values without a comment');
  assert.deepEqual(missingSchema, [], 'values and schema out of step');
  // Closed objects everywhere, so a typo anywhere is an error.
  const open: string[] = [];
  const closed = (node: SchemaNode, path: string) => {
    if (node.properties) {
      if (node.additionalProperties !== false) open.push(path || '(root)');
      for (const [k, v] of Object.entries(node.properties)) closed(v, `${path}/${k}`);
    }
  };
  closed(root, '');
  assert.deepEqual(open, []);
});

test("image names: the chart's defaults are the Dockerfile's targets and labels and the cluster-in-a-box images", async () => {
  const values = chartValues() as { global: { hub: string }; images: Record<string, { repository: string }> };
  assert.equal(values.global.hub, 'ambit');
  const df = dockerfile();
  const components = Object.keys(values.images).sort();
  assert.deepEqual(components, ['controller', 'waypoint', 'ztunnel']);
  const registry = defaultImages();
  for (const c of components) {
    const repo = values.images[c]!.repository;
    const stage = df.stage(repo);
    assert.equal(stage.labels['dev.ambit.repository'], repo, `stage ${repo} is labelled with its repository`);
    assert.ok(registry[`${values.global.hub}/${repo}`], `the cluster-in-a-box knows ${values.global.hub}/${repo}`);
  }
  const build = readFileSync(join(REPO_ROOT, 'docker', 'build-images.sh'), 'utf8');
  assert.match(build, /hub="\$\{1:-ambit\}"/);
  assert.match(build, /for component in controller ztunnel waypoint;/);
  // What the chart renders is exactly <hub>/<repository>:<appVersion>, also with another hub and tag.
  const objects = await renderChart({ set: ['global.hub=registry.example.com/mesh', 'global.tag=1.2.3', 'images.ztunnel.tag=1.2.4'] });
  assert.equal(mustFind<Workload>(objects, 'Deployment', 'ambit-controller').spec.template.spec.containers[0]!.image, 'registry.example.com/mesh/controller:1.2.3');
  assert.equal(mustFind<Workload>(objects, 'DaemonSet', 'ztunnel').spec.template.spec.containers[0]!.image, 'registry.example.com/mesh/ztunnel:1.2.4');
  assert.equal(envOf(mustFind<Workload>(objects, 'Deployment', 'ambit-controller')).get('AMBIT_WAYPOINT_IMAGE'), 'registry.example.com/mesh/waypoint:1.2.3');
});

test('Dockerfile: every copied path exists, every entrypoint exists after the build, non-root where the component allows', () => {
  const df = dockerfile();
  const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const major = Number(df.args.NODE_VERSION);
  assert.ok(major >= 20 && major % 2 === 0, `NODE_VERSION ${df.args.NODE_VERSION} is an LTS line (even, >= 20)`);
  // Where a path of a stage lives in this checkout: build's /src is the repository (after `npm run build`),
  // runtime-deps' /app holds the same files.
  const local = (stage: string, path: string): string | undefined => {
    if (stage === 'build' && path.startsWith('/src/')) return join(REPO_ROOT, path.slice('/src/'.length));
    if (path.startsWith('/app/')) return join(REPO_ROOT, path.slice('/app/'.length));
    return undefined;
  };
  const dockerText = readFileSync(join(REPO_ROOT, 'docker', 'Dockerfile'), 'utf8');
  const IMAGE_BUILT: Record<string, { run: string; script: () => boolean }> = {
    '/src/ambit-cni': {
      run: 'npm run build:cni -w @ambit/ztunnel -- /src/ambit-cni',
      script: () => typeof (JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'ztunnel', 'package.json'), 'utf8')) as { scripts?: Record<string, string> }).scripts?.['build:cni'] === 'string',
    },
  };
  const problems: string[] = [];
  for (const stage of df.stages) {
    assert.ok(stage.base.startsWith(`node:${major}-bookworm`), `stage ${stage.name} is built FROM the Node ${major} image`);
    for (const copy of stage.copies) {
      for (const src of copy.sources) {
        if (copy.from === undefined) {
          if (!existsSync(join(REPO_ROOT, src))) problems.push(`${stage.name}: COPY ${src}: not in the build context`);
          const top = src.split('/')[0]!;
          if (ignored.some((p) => p === top || p === `**/${src.split('/').pop()}`)) problems.push(`${stage.name}: COPY ${src} is excluded by .dockerignore`);
        } else {
          assert.ok(df.stages.some((s) => s.name === copy.from), `${stage.name}: COPY --from=${copy.from}: no such stage`);
          const p = local(copy.from, src);
          // Made by a RUN of the build stage itself, not by `npm run build` (the self-contained CNI plugin: 100 MB).
          const madeInImage = IMAGE_BUILT[src];
          if (madeInImage) {
            if (!dockerText.includes(madeInImage.run)) problems.push(`${stage.name}: COPY --from=${copy.from} ${src}: no \`${madeInImage.run}\` in the build stage`);
            if (!madeInImage.script()) problems.push(`${stage.name}: COPY --from=${copy.from} ${src}: the npm script it runs is missing`);
          } else if (p !== undefined && !existsSync(p)) problems.push(`${stage.name}: COPY --from=${copy.from} ${src}: ${p} does not exist after the build`);
        }
      }
    }
  }
  const expectations = { controller: 'non-root', waypoint: 'non-root', ztunnel: 'root' } as const;
  for (const [name, who] of Object.entries(expectations)) {
    const stage = df.stage(name);
    const uid = stage.user?.split(':')[0];
    assert.ok(uid !== undefined, `stage ${name} sets USER`);
    if (who === 'non-root') assert.notEqual(uid, '0', `${name} runs as non-root`);
    else assert.equal(uid, '0', `${name} needs root (with the chart's three capabilities)`);
    const script = stage.entrypoint?.find((a) => a.startsWith('/app/'));
    assert.ok(script, `stage ${name} has an exec-form ENTRYPOINT running a file under /app`);
    const p = local('runtime-deps', script);
    if (!p || !existsSync(p)) problems.push(`${name}: ENTRYPOINT ${script}: ${p} is not produced by the build (no src/main.ts in that package?)`);
    // The image's entrypoint and the cluster-in-a-box image run the same file.
    const boxed = defaultImages()[`ambit/${name}`]!.entrypoint.at(-1)!;
    assert.equal(boxed.slice(REPO_ROOT.length), script.slice('/app/'.length), `ambit/${name}: same program in the image and in the cluster-in-a-box`);
  }
  assert.deepEqual(problems, []);
});
