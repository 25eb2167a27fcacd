import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeAddress, decodeAuthorization, encodeAddress, encodeAuthorization,
  type Address as PbAddress, type Authorization as PbAuthorization,
} from '@ambit/api';
import { createStateStore } from '../state/store.js';
import { createStateUpdater } from '../state/updater.js';
import { convertAddressResponse, convertAuthorizationResponse, convertAuthorization, convertWorkload, ipFromBytes, type DecodedResource } from './xds-convert.js';

const ip = (s: string): Buffer => Buffer.from(s.includes(':') ? ipv6Bytes(s) : s.split('.').map(Number));
function ipv6Bytes(s: string): number[] {
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

/** Through the real wire format, the way the client sees resources. */
const wireAddress = (a: PbAddress): PbAddress => decodeAddress(encodeAddress(a));
const wireAuthz = (a: PbAuthorization): PbAuthorization => decodeAuthorization(encodeAuthorization(a));

const SLEEP_UID = 'Kubernetes//Pod/default/sleep-1';

test('a proto Workload becomes the camelCase state model (bytes to IP text, enums to names, defaults left to validation)', () => {
  const pb = wireAddress({
    workload: {
      uid: SLEEP_UID, name: 'sleep-1', namespace: 'default', addresses: [ip('10.0.1.5'), ip('fd00::5')],
      tunnel_protocol: 'HBONE', service_account: 'sleep', node: 'node-1', cluster_id: 'Kubernetes', network: 'net1',
      canonical_name: 'sleep', canonical_revision: 'v1', workload_type: 'POD', workload_name: 'sleep', status: 'UNHEALTHY',
      network_mode: 'HOST_NETWORK', locality: { region: 'r', zone: 'z', subzone: 's' },
      waypoint: { hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' }, hbone_mtls_port: 15008 },
      network_gateway: { address: { network: 'net2', address: ip('192.168.1.1') }, hbone_mtls_port: 15009 },
      application_tunnel: { protocol: 'PROXY', port: 15088 },
      services: { 'default/echo.default.svc.cluster.local': { ports: [{ service_port: 80, target_port: 8080 }] } },
      authorization_policies: ['default/allow-sleep'], capacity: { value: 3 },
    },
  });
  const w = convertWorkload(pb.workload!);
  assert.deepEqual(w, {
    uid: SLEEP_UID, name: 'sleep-1', namespace: 'default', workloadIps: ['10.0.1.5', 'fd00::5'], hostname: '', network: 'net1',
    node: 'node-1', clusterId: 'Kubernetes', protocol: 'HBONE', networkMode: 'HostNetwork', nativeTunnel: false,
    canonicalName: 'sleep', canonicalRevision: 'v1', workloadName: 'sleep', workloadType: 'pod', status: 'Unhealthy',
    services: { 'default/echo.default.svc.cluster.local': { 80: 8080 } }, authorizationPolicies: ['default/allow-sleep'],
    serviceAccount: 'sleep', locality: { region: 'r', zone: 'z', subzone: 's' },
    waypoint: { destination: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' }, hboneMtlsPort: 15008 },
    networkGateway: { destination: { network: 'net2', address: '192.168.1.1' }, hboneMtlsPort: 15009 },
    applicationTunnel: { protocol: 'PROXY', port: 15088 }, capacity: 3,
  });
});

test('workload edge cases: TCP for NONE and sidecar mTLS, empty trust domain/SA left to defaults, unset capacity, mapped IPv6 unwrapped', () => {
  const none = convertWorkload(wireAddress({ workload: { uid: 'u1', addresses: [Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])] } }).workload!);
  assert.equal(none.protocol, 'TCP');
  assert.deepEqual(none.workloadIps, ['10.0.0.1']);
  assert.equal(none.trustDomain, undefined);
  assert.equal(none.serviceAccount, undefined);
  assert.equal(none.capacity, undefined);
  assert.equal(convertWorkload(wireAddress({ workload: { uid: 'u2', tunnel_protocol: 'LEGACY_ISTIO_MTLS' } }).workload!).protocol, 'TCP');
  // UInt32Value present with value 0 is an explicit zero weight.
  assert.equal(convertWorkload(wireAddress({ workload: { uid: 'u3', capacity: { value: 0 } } }).workload!).capacity, 0);
  // A waypoint without a port gets HBONE's.
  const wp = convertWorkload(wireAddress({ workload: { uid: 'u4', waypoint: { address: { network: '', address: ip('10.9.9.9') } } } }).workload!);
  assert.deepEqual(wp.waypoint, { destination: { network: '', address: '10.9.9.9' }, hboneMtlsPort: 15008 });
  assert.throws(() => ipFromBytes(Buffer.from([1, 2, 3]), 'workload.addresses[0]'), /workload\.addresses\[0\]: 3 bytes; an IP address is 4 or 16 bytes/);
});

test('Authorization groups/rules/matches become rules/clauses/matches; IPs become CIDRs; string matches keep their kind', () => {
  const pb = wireAuthz({
    name: 'allow-sleep', namespace: 'echo', scope: 'WORKLOAD_SELECTOR', action: 'DENY', dry_run: true,
    groups: [{
      rules: [
        { matches: [{ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }, { prefix: 'cluster.local/ns/x/' }], not_namespaces: [{ suffix: '-test' }] }] },
        { matches: [{ destination_ports: [8080], source_ips: [{ address: ip('10.0.0.0'), length: 8 }], namespaces: [{ presence: {} }] }] },
      ],
    }, { rules: [{ matches: [{ service_accounts: [{ namespace: 'default', serviceAccount: 'sleep' }], not_destination_ips: [{ address: ip('fd00::1'), length: 128 }] }] }] }],
  });
  assert.deepEqual(convertAuthorization(pb), {
    name: 'allow-sleep', namespace: 'echo', scope: 'WorkloadSelector', action: 'Deny', dryRun: true,
    rules: [
      [
        [{ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }, { prefix: 'cluster.local/ns/x/' }], notNamespaces: [{ suffix: '-test' }] }],
        [{ namespaces: [{ presence: true }], sourceIps: ['10.0.0.0/8'], destinationPorts: [8080] }],
      ],
      [[{ notDestinationIps: ['fd00::1/128'], serviceAccounts: [{ namespace: 'default', serviceAccount: 'sleep' }] }]],
    ],
  });
  // Defaults on the wire: GLOBAL, ALLOW, no groups (matches nothing).
  assert.deepEqual(convertAuthorization(wireAuthz({ name: 'p', namespace: 'istio-system' })), {
    name: 'p', namespace: 'istio-system', scope: 'Global', action: 'Allow', rules: [], dryRun: false,
  });
});

test('a response with one bad resource: the bad one is rejected by name and field, the others go to the updater', () => {
  const good: DecodedResource<PbAddress> = { name: SLEEP_UID, message: wireAddress({ workload: { uid: SLEEP_UID, name: 'sleep-1', namespace: 'default', addresses: [ip('10.0.1.5')] } }) };
  const badIp: DecodedResource<PbAddress> = { name: 'Kubernetes//Pod/default/bad', message: wireAddress({ workload: { uid: 'Kubernetes//Pod/default/bad', addresses: [Buffer.from([10, 0, 1])] } }) };
  const cidr: DecodedResource<PbAddress> = {
    name: 'default/cidr.example.com',
    message: wireAddress({ service: { namespace: 'default', hostname: 'cidr.example.com', addresses: [{ network: '', address: ip('10.1.0.0'), length: 16 }] } }),
  };
  const misnamed: DecodedResource<PbAddress> = { name: 'default/other', message: wireAddress({ service: { namespace: 'default', hostname: 'echo', addresses: [] } }) };
  const undecodable: DecodedResource<PbAddress> = { name: 'garbage', decodeError: 'index out of range' };
  const svc: DecodedResource<PbAddress> = {
    name: 'default/echo.default.svc.cluster.local',
    message: wireAddress({ service: { name: 'echo', namespace: 'default', hostname: 'echo.default.svc.cluster.local', addresses: [{ network: '', address: ip('10.96.0.10') }], ports: [{ service_port: 80, target_port: 8080 }] } }),
  };
  const out = convertAddressResponse([good, badIp, cidr, misnamed, undecodable, svc], ['Kubernetes//Pod/default/gone']);
  assert.deepEqual(out.converted, [SLEEP_UID, 'default/echo.default.svc.cluster.local']);
  assert.deepEqual(out.batch.removedAddresses, ['Kubernetes//Pod/default/gone']);
  assert.deepEqual(out.batch.rejected?.map((r) => [r.kind, r.name, r.message]), [
    ['workload', 'Kubernetes//Pod/default/bad', 'Address "Kubernetes//Pod/default/bad": workload.addresses[0]: 3 bytes; an IP address is 4 or 16 bytes'],
    ['service', 'default/cidr.example.com', 'Address "default/cidr.example.com": service.addresses[0].length: CIDR ranges (/16) are not supported; only single addresses'],
    ['service', 'default/other', 'Address "default/other": service.namespace/hostname: "default/echo" does not match the resource name'],
    ['workload', 'garbage', 'Address "garbage": cannot decode: index out of range'],
  ]);

  // The updater applies the good ones and reports the rejected ones for the NACK.
  const store = createStateStore();
  const result = createStateUpdater({ store }).applyDelta(out.batch);
  assert.equal(result.rejected.length, 4);
  assert.equal(store.workloadByAddress('', '10.0.1.5')?.uid, SLEEP_UID);
  assert.equal(store.serviceByVip('', '10.96.0.10')?.hostname, 'echo.default.svc.cluster.local');
});

test('authorization response: resource name must be <namespace>/<name>; a string match with nothing set is refused', () => {
  const out = convertAuthorizationResponse([
    { name: 'echo/ok', message: wireAuthz({ name: 'ok', namespace: 'echo' }) },
    { name: 'echo/empty-match', message: wireAuthz({ name: 'empty-match', namespace: 'echo', groups: [{ rules: [{ matches: [{ principals: [{}] }] }] }] }) },
  ], ['echo/old']);
  assert.deepEqual(out.converted, ['echo/ok']);
  assert.deepEqual(out.batch.removedPolicies, ['echo/old']);
  assert.equal(out.batch.rejected?.[0]?.message,
    'Authorization "echo/empty-match": authorization.groups[0].rules[0].matches[0].principals[0]: no match type (exact, prefix, suffix or presence) is set');
});
