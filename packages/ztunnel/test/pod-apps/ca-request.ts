// Asks the controller's CA for a workload certificate exactly as a node agent does (the agent's own CA client from
// @ambit/ztunnel: CSR for the SPIFFE id, ImpersonatedIdentity metadata, bearer token, clusterid, TLS verified with
// the mesh root), run inside the agent pod's netns:
//   node ca-request.js --address 10.96.0.12:15012 --alt-hostname istiod.istio-system.svc --root root.pem
//        --token istio-token --identity spiffe://cluster.local/ns/x/sa/y
// Prints one JSON line: {"ok":true,"identity":"...","notAfter":"..."} or
// {"ok":false,"code":"PERMISSION_DENIED","details":"<the server's status message>","message":"<client error>"}.
import { parseArgs } from 'node:util';
import { status as grpcStatus } from '@grpc/grpc-js';
import { pino } from 'pino';
import { createGrpcCaClient } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    address: { type: 'string' },
    'alt-hostname': { type: 'string' },
    root: { type: 'string' },
    token: { type: 'string' },
    identity: { type: 'string' },
    'cluster-id': { type: 'string', default: 'Kubernetes' },
  },
});
for (const k of ['address', 'root', 'token', 'identity'] as const) {
  if (!values[k]) {
    process.stderr.write(`ca-request: --${k} is required\n`);
    process.exit(2);
  }
}

const client = createGrpcCaClient({
  address: values.address!,
  rootCaPath: values.root!,
  altHostname: values['alt-hostname'],
  authToken: { file: values.token! },
  clusterId: values['cluster-id']!,
  ttlSeconds: 3600,
  timeoutMs: 10_000,
  logger: pino({ level: 'silent' }),
});
const out = (o: Record<string, unknown>, code: number): void => {
  client.close();
  process.stdout.write(JSON.stringify(o) + '\n', () => process.exit(code));
};
try {
  const cert = await client.fetchCertificate(values.identity!);
  out({ ok: true, identity: cert.identity, notAfter: cert.notAfter.toISOString() }, 0);
} catch (err) {
  const cause = (err as { cause?: { code?: number; details?: string } }).cause;
  out({ ok: false, code: cause?.code !== undefined ? (grpcStatus[cause.code] ?? String(cause.code)) : null, details: cause?.details ?? null, message: (err as Error).message }, 1);
}
