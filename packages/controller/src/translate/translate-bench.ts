// Benchmark of the translator at the architecture's scale (1000 Services, 2000 Pods): full resync, then single
// object changes. Run: node packages/controller/dist/src/translate/translate-bench.js
// Reports medians; no pass/fail (timings belong here, not in tests).
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import pino from 'pino';
import { loadProtoRoot, type KubeObject } from '@ambit/api';
import { createResourceStore } from '../xds/resource-store.js';
import { createMemoryIndex } from './object-index.js';
import { createTranslator } from './translator.js';
import { authorizationPolicy, namespace, peerAuthentication, pod, service, waypointGateway } from './test-fixtures.js';

export interface TranslateBenchResult {
  services: number;
  pods: number;
  resyncMs: number[];
  podChangeMs: number;
  serviceChangeMs: number;
  namespaceChangeMs: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function runTranslateBench(opts: { services?: number; pods?: number; namespaces?: number; rounds?: number } = {}): TranslateBenchResult {
  const services = opts.services ?? 1000;
  const pods = opts.pods ?? 2000;
  const namespaces = opts.namespaces ?? 20;
  const rounds = opts.rounds ?? 5;
  const index = createMemoryIndex();
  const store = createResourceStore();
  loadProtoRoot(); // parse the .proto files outside the measurement
  for (let n = 0; n < namespaces; n++) {
    const ns = `ns${n}`;
    index.set(namespace(ns, n % 2 ? { 'istio.io/use-waypoint': 'waypoint' } : {}));
    index.set(waypointGateway(ns, 'waypoint', { waypointFor: 'all' }));
    index.set(peerAuthentication(ns, 'default', { mtls: { mode: 'STRICT' } }));
    index.set(authorizationPolicy(ns, 'app3', { selector: { matchLabels: { app: 'app3' } }, rules: [{ from: [{ source: { namespaces: [ns] } }] }] }));
  }
  for (let s = 0; s < services; s++) {
    index.set(service(`ns${s % namespaces}`, `svc${s}`, {
      selector: { app: `app${s}` }, clusterIP: `10.96.${s >> 8}.${s & 255}`,
      ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'grpc', port: 90, targetPort: 9090 }],
    }));
  }
  for (let p = 0; p < pods; p++) {
    const s = p % services;
    index.set(pod(`ns${s % namespaces}`, `pod${p}`, {
      ip: `10.1.${p >> 8}.${p & 255}`, labels: { app: `app${s}` },
      annotations: { 'ambient.istio.io/redirection': 'enabled' }, ports: [{ name: 'http', containerPort: 8080 }],
    }));
  }
  const translator = createTranslator({ index, store, mesh: { clusterId: 'Kubernetes' }, logger: pino({ level: 'silent' }) });
  const time = (fn: () => void): number => {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  };
  const resyncMs = Array.from({ length: rounds }, () => time(() => translator.resyncAll()));
  const touch = (kind: string, ns: string, name: string, mutate: (o: KubeObject) => void): number => time(() => {
    const o = structuredClone(index.get(kind, ns, name)!);
    mutate(o);
    index.set(o);
    translator.changed(kind, ns, name);
  });
  const podChangeMs = median(Array.from({ length: 200 }, (_, i) => touch('Pod', 'ns3', 'pod3', (o) => { o.metadata.labels!.rev = String(i); })));
  const serviceChangeMs = median(Array.from({ length: 50 }, (_, i) => touch('Service', 'ns3', 'svc3', (o) => { o.spec.ports[1].targetPort = 9000 + i; })));
  const namespaceChangeMs = median(Array.from({ length: 9 }, (_, i) => touch('Namespace', '', 'ns4', (o) => {
    o.metadata.labels!['istio.io/use-waypoint'] = i % 2 ? 'waypoint' : 'none';
  })));
  return { services, pods, resyncMs, podChangeMs, serviceChangeMs, namespaceChangeMs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = runTranslateBench();
  const f = (x: number): string => x.toFixed(2);
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}`);
  console.log(`${r.services} services, ${r.pods} pods`);
  console.log(`full resync: first ${f(r.resyncMs[0]!)} ms, median ${f(median(r.resyncMs))} ms`);
  console.log(`one pod change: ${f(r.podChangeMs)} ms; one service change (2 pods): ${f(r.serviceChangeMs)} ms; one namespace change: ${f(r.namespaceChangeMs)} ms`);
}
