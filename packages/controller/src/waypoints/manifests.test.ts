import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateWaypointGateway, infrastructureLabels, renderWaypointObjects, resolveWaypointSettings, servicePorts, type GatewayObject } from './manifests.js';

const settings = resolveWaypointSettings({ image: 'ambit/waypoint:1.0', clusterId: 'Kubernetes', trustDomain: 'cluster.local', controllerNamespace: 'istio-system' });

function gateway(overrides: Partial<GatewayObject> & { listeners?: NonNullable<GatewayObject['spec']>['listeners'] } = {}): GatewayObject {
  const { listeners, ...rest } = overrides;
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'bookinfo', uid: 'uid-1', generation: 3, labels: { 'istio.io/waypoint-for': 'service' } },
    spec: { gatewayClassName: 'istio-waypoint', listeners: listeners ?? [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
    ...rest,
  };
}

function render(gw: GatewayObject = gateway()) {
  return renderWaypointObjects(gw, evaluateWaypointGateway(gw), settings);
}

test('settings default the xDS and CA addresses to istiod in the controller namespace', () => {
  assert.equal(settings.xdsAddress, 'istiod.istio-system.svc:15012');
  assert.equal(settings.caAddress, 'istiod.istio-system.svc:15012');
  assert.equal(settings.clusterDomain, 'cluster.local');
  const custom = resolveWaypointSettings({ image: 'x', clusterId: 'c', trustDomain: 't', controllerNamespace: 'ns', xdsAddress: 'ctl:15012', caAddress: 'ca:15012' });
  assert.equal(custom.xdsAddress, 'ctl:15012');
  assert.equal(custom.caAddress, 'ca:15012');
  assert.throws(() => resolveWaypointSettings({ image: '', clusterId: 'c', trustDomain: 't', controllerNamespace: 'ns' }), /image must be a non-empty string/);
});

test('all three objects carry Istio labels and an owner reference to the Gateway', () => {
  const { serviceAccount, deployment, service } = render();
  for (const obj of [serviceAccount, deployment, service]) {
    assert.equal(obj.metadata!.name, 'waypoint');
    assert.equal(obj.metadata!.namespace, 'bookinfo');
    assert.deepEqual(obj.metadata!.ownerReferences, [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'waypoint', uid: 'uid-1' }]);
    assert.equal(obj.metadata!.labels!['gateway.networking.k8s.io/gateway-name'], 'waypoint');
    assert.equal(obj.metadata!.labels!['gateway.networking.k8s.io/gateway-class-name'], 'istio-waypoint');
    assert.equal(obj.metadata!.labels!['gateway.istio.io/managed'], 'istio.io-mesh-controller');
    // Istio copies the Gateway's own labels when spec.infrastructure has none.
    assert.equal(obj.metadata!.labels!['istio.io/waypoint-for'], 'service');
  }
  assert.equal(serviceAccount.kind, 'ServiceAccount');
  assert.equal(deployment.apiVersion, 'apps/v1');
});

test('the pod opts out of capture and is selected by the gateway-name label', () => {
  const { deployment } = render();
  const tpl = deployment.spec!.template;
  assert.deepEqual(deployment.spec!.selector, { matchLabels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' } });
  assert.equal(tpl.metadata!.labels!['istio.io/dataplane-mode'], 'none');
  assert.equal(tpl.metadata!.labels!['sidecar.istio.io/inject'], 'false');
  assert.equal(tpl.metadata!.labels!['service.istio.io/canonical-name'], 'waypoint');
  assert.equal(tpl.metadata!.labels!['service.istio.io/canonical-revision'], 'latest');
  assert.equal(tpl.metadata!.labels!['gateway.networking.k8s.io/gateway-name'], 'waypoint');
  assert.equal(tpl.metadata!.annotations!['istio.io/rev'], 'default');
  assert.equal(tpl.metadata!.annotations!['prometheus.io/port'], '15020');
  assert.equal(tpl.spec!.serviceAccountName, 'waypoint');
});

test('the waypoint container: image, ports, probes and env from the settings and the downward API', () => {
  const s = resolveWaypointSettings({ image: 'reg/ambit-waypoint:2', clusterId: 'east', trustDomain: 'example.org', controllerNamespace: 'ambit', imagePullPolicy: 'IfNotPresent' });
  const gw = gateway();
  const c = renderWaypointObjects(gw, evaluateWaypointGateway(gw), s).deployment.spec!.template.spec!.containers[0]!;
  assert.equal(c.name, 'istio-proxy');
  assert.equal(c.image, 'reg/ambit-waypoint:2');
  assert.equal(c.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(c.ports!.map((p) => p.containerPort), [15008, 15020, 15021, 15000]);
  assert.deepEqual(c.readinessProbe!.httpGet, { path: '/healthz/ready', port: 15021, scheme: 'HTTP' });
  assert.equal(c.readinessProbe!.periodSeconds, 15);
  assert.deepEqual(c.startupProbe!.httpGet, { path: '/healthz/ready', port: 15021, scheme: 'HTTP' });
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value ?? `fieldRef:${e.valueFrom!.fieldRef!.fieldPath}`]));
  assert.deepEqual(env, {
    POD_NAME: 'fieldRef:metadata.name',
    POD_NAMESPACE: 'fieldRef:metadata.namespace',
    INSTANCE_IP: 'fieldRef:status.podIP',
    NODE_NAME: 'fieldRef:spec.nodeName',
    SERVICE_ACCOUNT: 'fieldRef:spec.serviceAccountName',
    TRUST_DOMAIN: 'example.org',
    CLUSTER_ID: 'east',
    XDS_ADDRESS: 'istiod.ambit.svc:15012',
    CA_ADDRESS: 'istiod.ambit.svc:15012',
    XDS_ROOT_CA: '/var/run/secrets/istio/root-cert.pem',
    CA_ROOT_CA: '/var/run/secrets/istio/root-cert.pem',
    AUTH_TOKEN: '/var/run/secrets/tokens/istio-token',
    GATEWAY_NAME: 'waypoint',
  });
});

test('volumes: istio-ca audience token and the root-cert ConfigMap at Istio paths', () => {
  const spec = render().deployment.spec!.template.spec!;
  assert.deepEqual(spec.volumes, [
    { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
    { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
  ]);
  assert.deepEqual(spec.containers[0]!.volumeMounts, [
    { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio' },
    { name: 'istio-token', mountPath: '/var/run/secrets/tokens' },
  ]);
});

test('the Service: ClusterIP, status-port then the HBONE listener with appProtocol hbone, PreferClose', () => {
  const { service } = render();
  assert.equal(service.spec!.type, 'ClusterIP');
  assert.deepEqual(service.spec!.selector, { 'gateway.networking.k8s.io/gateway-name': 'waypoint' });
  assert.deepEqual(service.spec!.ports, [
    { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' },
    { name: 'mesh', port: 15008, protocol: 'TCP', appProtocol: 'hbone' },
  ]);
  assert.equal(service.metadata!.annotations!['networking.istio.io/traffic-distribution'], 'PreferClose');
});

test('service ports skip invalid listeners, repeat ports and sanitize names', () => {
  const gw = gateway({ listeners: [{ name: 'a.b', port: 15008, protocol: 'HBONE' }, { name: 'again', port: 15008, protocol: 'HBONE' }, { name: 'http', port: 80, protocol: 'HTTP' }] });
  assert.deepEqual(servicePorts(gw).map((p) => `${p.name}:${p.port}`), ['status-port:15021', 'a-b:15008']);
});

test('spec.infrastructure labels and annotations replace the Gateway metadata, minus reserved keys', () => {
  const gw = gateway({
    metadata: { name: 'wp', namespace: 'ns', uid: 'u', labels: { team: 'a' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', note: 'x' } },
  });
  gw.spec!.infrastructure = { labels: { tier: 'mesh', 'gateway.networking.k8s.io/gateway-name': 'evil' }, annotations: { owner: 'sre' } };
  const { deployment, service } = render(gw);
  assert.equal(deployment.metadata!.labels!.tier, 'mesh');
  assert.equal(deployment.metadata!.labels!.team, undefined);
  assert.equal(deployment.metadata!.labels!['gateway.networking.k8s.io/gateway-name'], 'wp');
  assert.equal(deployment.spec!.template.metadata!.labels!.tier, 'mesh');
  assert.deepEqual(deployment.metadata!.annotations, { owner: 'sre' });
  assert.equal(service.metadata!.annotations!.owner, 'sre');
  // Without infrastructure: Gateway annotations are copied except the controller's own instructions.
  const plain = gateway({ metadata: { name: 'wp', namespace: 'ns', uid: 'u', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', note: 'x' } } });
  assert.deepEqual(render(plain).serviceAccount.metadata!.annotations, { note: 'x' });
  assert.deepEqual(infrastructureLabels(plain), {});
});

test('a Gateway label may put the waypoint pod itself in ambient mode, as in Istio', () => {
  const gw = gateway({ metadata: { name: 'wp', namespace: 'ns', uid: 'u', labels: { 'istio.io/dataplane-mode': 'ambient' } } });
  assert.equal(render(gw).deployment.spec!.template.metadata!.labels!['istio.io/dataplane-mode'], 'ambient');
});

test('name, service-account and service-type annotations are honoured', () => {
  const gw = gateway({
    metadata: {
      name: 'wp', namespace: 'ns', uid: 'u',
      annotations: { 'gateway.istio.io/name-override': 'custom', 'gateway.istio.io/service-account': 'my-sa', 'networking.istio.io/service-type': 'NodePort' },
    },
  });
  const { serviceAccount, deployment, service } = render(gw);
  assert.equal(deployment.metadata!.name, 'custom');
  assert.equal(service.metadata!.name, 'custom');
  assert.equal(service.spec!.type, 'NodePort');
  assert.equal(serviceAccount.metadata!.name, 'my-sa');
  assert.equal(deployment.spec!.template.spec!.serviceAccountName, 'my-sa');
  assert.equal(deployment.metadata!.annotations!['gateway.istio.io/name-override'], undefined);
});

test('evaluation: an HBONE 15008 listener is accepted', () => {
  const ev = evaluateWaypointGateway(gateway());
  assert.equal(ev.deploy, true);
  assert.deepEqual(ev.accepted, { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' });
  assert.deepEqual(ev.listeners, [{ name: 'mesh', valid: true, message: 'No errors found' }]);
});

test('evaluation: no HBONE listener is not accepted and names the listener found', () => {
  const ev = evaluateWaypointGateway(gateway({ listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] }));
  assert.equal(ev.deploy, false);
  assert.equal(ev.accepted.status, 'False');
  assert.equal(ev.accepted.reason, 'ListenersNotValid');
  assert.equal(ev.accepted.message, 'Gateway bookinfo/waypoint: a waypoint needs a listener on port 15008 with protocol HBONE; found spec.listeners[0] "http" (port 80, protocol HTTP)');
  assert.deepEqual(ev.listeners, [{ name: 'http', valid: false, message: 'Expected a single listener on port 15008 with protocol "HBONE"' }]);
  // Right protocol, wrong port.
  assert.equal(evaluateWaypointGateway(gateway({ listeners: [{ name: 'mesh', port: 15009, protocol: 'HBONE' }] })).deploy, false);
});

test('evaluation: an extra unsupported listener is reported but the waypoint is still deployed', () => {
  const ev = evaluateWaypointGateway(gateway({ listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }, { name: 'tcp', port: 9000, protocol: 'TCP' }] }));
  assert.equal(ev.deploy, true);
  assert.equal(ev.accepted.status, 'True');
  assert.equal(ev.accepted.reason, 'ListenersNotValid');
  assert.match(ev.accepted.message, /ignoring spec\.listeners\[1\] "tcp" \(port 9000, protocol TCP\)/);
  assert.deepEqual(ev.listeners.map((l) => l.valid), [true, false]);
});

test('evaluation: parametersRef, spec.addresses and a bad service type are refused with the field named', () => {
  const withParams = gateway();
  withParams.spec!.infrastructure = { parametersRef: { group: '', kind: 'ConfigMap', name: 'params' } };
  let ev = evaluateWaypointGateway(withParams);
  assert.equal(ev.deploy, false);
  assert.equal(ev.accepted.reason, 'InvalidParameters');
  assert.match(ev.accepted.message, /spec\.infrastructure\.parametersRef \(ConfigMap params\)/);

  const withAddress = gateway();
  withAddress.spec!.addresses = [{ type: 'IPAddress', value: '10.0.0.1' }];
  ev = evaluateWaypointGateway(withAddress);
  assert.equal(ev.accepted.reason, 'UnsupportedAddress');
  assert.match(ev.accepted.message, /spec\.addresses/);

  ev = evaluateWaypointGateway(gateway({ metadata: { name: 'w', namespace: 'n', annotations: { 'networking.istio.io/service-type': 'Headless' } } }));
  assert.equal(ev.accepted.reason, 'InvalidParameters');
  assert.match(ev.accepted.message, /metadata\.annotations\["networking\.istio\.io\/service-type"\]: "Headless" is not one of ClusterIP, NodePort, LoadBalancer/);
});

test('rendering needs the Gateway uid for owner references', () => {
  const gw = gateway({ metadata: { name: 'w', namespace: 'n' } });
  assert.throws(() => render(gw), /Gateway n\/w: metadata\.namespace and metadata\.uid are required/);
});
