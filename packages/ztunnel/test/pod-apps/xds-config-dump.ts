// What the controller serves to waypoints right now: connects to its delta xDS server with the node agent's own
// xDS client (@ambit/ztunnel, TLS verified with the mesh root, a service-account token), subscribes only to the
// configuration objects (CONFIG_OBJECT_TYPE_URL, the waypoint's type), and after the first response prints one JSON
// line {"resources":[{"name":"VirtualService/ns/name","version":"...","object":{...}}]} and exits. Run in a pod's
// netns with the cluster's DNS (Cluster.exec):
//   node xds-config-dump.js --address istiod.istio-system.svc:15012 --root root.pem --token token [--timeout-ms 15000]
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { CONFIG_OBJECT_TYPE_URL, decodeConfigObject } from '@ambit/api';
import { createStateStore, createStateUpdater, createXdsClient } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    address: { type: 'string' },
    root: { type: 'string' },
    token: { type: 'string' },
    'cluster-id': { type: 'string', default: 'Kubernetes' },
    'timeout-ms': { type: 'string', default: '15000' },
  },
});
for (const k of ['address', 'root', 'token'] as const) {
  if (!values[k]) {
    process.stderr.write(`xds-config-dump: --${k} is required\n`);
    process.exit(2);
  }
}

const resources: { name: string; version: string; object: unknown }[] = [];
const client = createXdsClient({
  address: values.address!,
  rootCaPath: values.root!,
  authToken: { file: values.token! },
  clusterId: values['cluster-id']!,
  node: { id: `waypoint~0.0.0.0~xds-config-dump.e2e~e2e.svc.cluster.local`, metadata: {} },
  updater: createStateUpdater({ store: createStateStore() }),
  logger: pino({ level: 'silent' }),
  typeUrls: [],
  rawTypes: [{
    typeUrl: CONFIG_OBJECT_TYPE_URL,
    apply({ resources: got }) {
      for (const r of got) resources.push({ name: r.name, version: r.version, object: r.value ? decodeConfigObject(r.value) : null });
      return [];
    },
  }],
});
const timer = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: `no xDS response within ${values['timeout-ms']} ms`, status: client.status() }) + '\n', () => process.exit(1));
}, Number(values['timeout-ms']));
client.start();
if (await client.synced) {
  clearTimeout(timer);
  client.close();
  process.stdout.write(JSON.stringify({ resources }) + '\n', () => process.exit(0));
}
