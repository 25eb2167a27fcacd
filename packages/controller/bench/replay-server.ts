// Baseline for the controller: a gRPC+TLS ADS endpoint with no controller logic. It answers each stream's first
// request of a type with the controller's own initial response for that type, serialized once and written as the
// same Buffer to every stream (no per-client state, diffing or encoding), and pushes a changed pod by re-encoding
// that one resource once and writing it to every stream at once (no debounce). Same TLS server setup, same agents:
// what remains is the cost of moving the bytes and of the agents applying them.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import {
  ADDRESS_TYPE_URL, decodeAddress, encodeAny, loadGrpcServices,
  type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type XdsResource,
} from '@ambit/api';
import { startControlPlaneServer, type ControlPlaneServer } from '../src/index.js';
import { clockMs, serveOrchestrator } from './rpc.js';
import type { PodChange } from './scene.js';
import type { ChangeResult } from './controller.js';

type Stream = grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>;

const ads = loadGrpcServices().ads as grpc.ServiceDefinition;
const method = ads.DeltaAggregatedResources!;
const serialize = method.responseSerialize as (r: DeltaDiscoveryResponse) => Buffer;
const deserialize = method.responseDeserialize as (b: Buffer) => DeltaDiscoveryResponse;
/** The ADS method with pre-serialized responses: what is written is already the wire message. */
const rawService: grpc.ServiceDefinition = { DeltaAggregatedResources: { ...method, responseSerialize: (b: Buffer) => b } };

const initial = new Map<string, Buffer>();
const addresses = new Map<string, XdsResource>();
const streams = new Set<Stream>();
let server: ControlPlaneServer | undefined;

function onStream(call: Stream): void {
  streams.add(call);
  const answered = new Set<string>();
  const drop = (): void => { streams.delete(call); };
  call.on('data', (req: DeltaDiscoveryRequest) => {
    const typeUrl = req.type_url ?? '';
    const bytes = initial.get(typeUrl);
    if (bytes && !answered.has(typeUrl)) {
      answered.add(typeUrl);
      call.write(bytes);
    }
    // ACKs need no answer.
  });
  call.on('end', () => { drop(); call.end(); });
  call.on('cancelled', drop);
  call.on('close', drop);
  call.on('error', drop);
}

async function start(p: { files: Record<string, string>; tls: { certPem: string; keyPem: string } }): Promise<{ port: number }> {
  for (const [typeUrl, file] of Object.entries(p.files)) {
    const bytes = readFileSync(file);
    initial.set(typeUrl, bytes);
    if (typeUrl === ADDRESS_TYPE_URL) for (const r of deserialize(bytes).resources ?? []) addresses.set(r.name ?? '', r);
  }
  server = await startControlPlaneServer({
    services: [{ service: rawService, implementation: { DeltaAggregatedResources: onStream as grpc.handleBidiStreamingCall<unknown, unknown> } }],
    tls: { certChainPem: p.tls.certPem, keyPem: p.tls.keyPem }, port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }),
  });
  return { port: server.port };
}

/** The same change the controller makes, applied to the encoded workload and pushed to every stream. */
function change(c: PodChange): ChangeResult {
  const t0 = clockMs();
  const r = addresses.get(c.expect.uid);
  if (!r?.resource?.value) throw new Error(`change ${c.seq}: no workload ${c.expect.uid} in the snapshot`);
  const address = decodeAddress(r.resource.value);
  const w = address.workload;
  if (!w) throw new Error(`change ${c.seq}: ${c.expect.uid} is not a workload`);
  if (c.kind === 'readiness') {
    w.status = 'UNHEALTHY';
  } else {
    const services = w.services ?? {};
    services[c.expect.servicePresent!] = services[c.expect.serviceAbsent!]!;
    delete services[c.expect.serviceAbsent!];
    w.services = services;
  }
  const updated: XdsResource = { ...r, version: `replay-${c.seq}`, resource: encodeAny(ADDRESS_TYPE_URL, address) };
  addresses.set(c.expect.uid, updated);
  const bytes = serialize({ type_url: ADDRESS_TYPE_URL, nonce: `replay-${c.seq}`, system_version_info: `replay-${c.seq}`, resources: [updated], removed_resources: [] });
  for (const s of streams) s.write(bytes);
  return { t0, translateMs: clockMs() - t0 };
}

serveOrchestrator({
  start,
  change,
  connections: () => ({ streams: streams.size }),
  async close() {
    for (const s of streams) s.end();
    await server?.close(1000);
  },
});
