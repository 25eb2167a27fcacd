// The resources must be byte-compatible with Istio's: these tests pin field numbers and wire types against
// protobuf bytes assembled by hand, so a wrong number in our .proto files fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADDRESS_TYPE_URL, decodeAddress, decodeAny, decodeAuthorization, encodeAddress, encodeAny, encodeAuthorization,
  type Address, type Authorization,
} from '@ambit/api';
import { ipToBytes } from '../src/index.js';

/** A length-delimited field: tag byte(s), then a one-byte length (all our samples are short), then the body. */
function ld(tag: number[], ...body: number[][]): number[] {
  const flat = body.flat();
  assert.ok(flat.length < 128);
  return [...tag, flat.length, ...flat];
}
const str = (s: string): number[] => [...Buffer.from(s)];

test('Workload inside Address: field numbers 1 (workload), 1 name, 3 addresses, 17 status, 20 uid', () => {
  const expected = Buffer.from(ld([0x0a], // Address.workload = 1, length-delimited
    ld([0x0a], str('n')), // name = 1
    ld([0x1a], [10, 0, 0, 1]), // addresses = 3
    [0x88, 0x01, 0x01], // status = 17, varint, UNHEALTHY = 1
    ld([0xa2, 0x01], str('u')), // uid = 20
  ));
  const msg: Address = { workload: { uid: 'u', name: 'n', addresses: [ipToBytes('10.0.0.1')], status: 'UNHEALTHY' } };
  assert.equal(encodeAddress(msg).toString('hex'), expected.toString('hex'));
  const back = decodeAddress(expected);
  assert.equal(back.type, 'workload');
  assert.equal(back.workload!.uid, 'u');
  assert.equal(back.workload!.status, 'UNHEALTHY');
  assert.deepEqual([...back.workload!.addresses![0]!], [10, 0, 0, 1]);
});

test('Service inside Address: 2 (service), 1 name, 3 hostname, 4 NetworkAddress{1 network, 2 address}, 5 Port{1,2,3 app_protocol}, 12 ingress_use_waypoint', () => {
  const expected = Buffer.from(ld([0x12], // Address.service = 2
    ld([0x0a], str('s')),
    ld([0x1a], str('h')),
    ld([0x22], ld([0x0a], str('n')), ld([0x12], [10, 96, 0, 10])),
    ld([0x2a], [0x08, 0x50], [0x10, 0x90, 0x3f], [0x18, 0x02]), // 80, 8080, HTTP2 = 2
    [0x60, 0x01], // ingress_use_waypoint = 12, varint
  ));
  const msg: Address = {
    service: {
      name: 's', hostname: 'h', addresses: [{ network: 'n', address: ipToBytes('10.96.0.10') }],
      ports: [{ service_port: 80, target_port: 8080, app_protocol: 'HTTP2' }], ingress_use_waypoint: true,
    },
  };
  assert.equal(encodeAddress(msg).toString('hex'), expected.toString('hex'));
  const back = decodeAddress(expected).service!;
  assert.deepEqual(back.ports, [{ service_port: 80, target_port: 8080, app_protocol: 'HTTP2' }]);
  assert.equal(back.ingress_use_waypoint, true);
});

test('Authorization: 1 name, 2 namespace, 3 scope, 4 action, 5 groups > 1 rules > 2 matches > 4 not_principals, 9 ports (packed), 11 service_accounts; 6 dry_run', () => {
  const expected = Buffer.from([
    ...ld([0x0a], str('p')),
    ...ld([0x12], str('d')),
    0x18, 0x02, // scope WORKLOAD_SELECTOR = 2
    0x20, 0x01, // action DENY = 1
    ...ld([0x2a], ld([0x0a], ld([0x12],
      ld([0x22], [0x22, 0x00]), // not_principals: StringMatch{presence = 4: Empty}
      ld([0x4a], [0xbb, 0x03]), // destination_ports = 9, packed [443]
      ld([0x5a], ld([0x0a], str('a')), ld([0x12], str('b'))), // service_accounts = 11
    ))),
    0x30, 0x01, // dry_run = 6
  ]);
  const msg: Authorization = {
    name: 'p', namespace: 'd', scope: 'WORKLOAD_SELECTOR', action: 'DENY', dry_run: true,
    groups: [{ rules: [{ matches: [{
      not_principals: [{ presence: {} }], destination_ports: [443], service_accounts: [{ namespace: 'a', serviceAccount: 'b' }],
    }] }] }],
  };
  assert.equal(encodeAuthorization(msg).toString('hex'), expected.toString('hex'));
  const back = decodeAuthorization(expected);
  assert.equal(back.action, 'DENY');
  const match = back.groups![0]!.rules![0]!.matches![0]!;
  assert.equal(match.not_principals![0]!.match_type, 'presence');
  assert.deepEqual(match.destination_ports, [443]);
  assert.deepEqual(match.service_accounts, [{ namespace: 'a', serviceAccount: 'b' }]);
});

test('a full Workload, Service and Authorization survive an Any round trip', () => {
  const workload: Address = {
    workload: {
      uid: 'Kubernetes//Pod/default/echo-1', name: 'echo-1', namespace: 'default', addresses: [ipToBytes('fd00::1')],
      network: 'net1', tunnel_protocol: 'HBONE', trust_domain: 'example.org', service_account: 'echo',
      waypoint: { hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' }, hbone_mtls_port: 15008 },
      network_gateway: { address: { network: 'net2', address: ipToBytes('192.0.2.1') }, hbone_mtls_port: 15008 },
      node: 'node1', canonical_name: 'echo', canonical_revision: 'v1', workload_type: 'POD', workload_name: 'echo',
      native_tunnel: true, application_tunnel: { protocol: 'PROXY', port: 15088 },
      services: { 'default/echo.default.svc.cluster.local': { ports: [{ service_port: 80, target_port: 8080 }] } },
      authorization_policies: ['default/deny-all'], status: 'UNHEALTHY', cluster_id: 'Kubernetes',
      locality: { region: 'r', zone: 'z', subzone: 's' }, network_mode: 'HOST_NETWORK', capacity: { value: 5 },
    },
  };
  const any = encodeAny(ADDRESS_TYPE_URL, workload);
  const w = decodeAny<Address>(any).workload!;
  assert.equal(w.waypoint!.destination, 'hostname');
  assert.equal(w.waypoint!.hostname!.hostname, 'waypoint.default.svc.cluster.local');
  assert.equal(w.network_gateway!.destination, 'address');
  assert.deepEqual([...w.network_gateway!.address!.address!], [192, 0, 2, 1]);
  // Scalars left out come back as their defaults (app_protocol UNKNOWN).
  workload.workload!.services!['default/echo.default.svc.cluster.local']!.ports![0]!.app_protocol = 'UNKNOWN';
  assert.deepEqual({ ...w, addresses: undefined, waypoint: undefined, network_gateway: undefined, extensions: undefined, hostname: undefined },
    { ...workload.workload, addresses: undefined, waypoint: undefined, network_gateway: undefined, extensions: undefined, hostname: undefined });

  const service = decodeAddress(encodeAddress({ service: {
    name: 'echo', namespace: 'default', hostname: 'echo.default.svc.cluster.local',
    addresses: [{ network: 'net1', address: ipToBytes('10.96.0.0'), length: 16 }], subject_alt_names: ['spiffe://x'],
    load_balancing: { routing_preference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE'], mode: 'FAILOVER', health_policy: 'ALLOW_ALL' },
    ip_families: 'DUAL', canonical: true, visibility: 'NAMESPACE',
  } })).service!;
  assert.equal(service.addresses![0]!.length, 16);
  assert.deepEqual(service.load_balancing, { routing_preference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE'], mode: 'FAILOVER', health_policy: 'ALLOW_ALL' });
  assert.equal(service.ip_families, 'DUAL');
  assert.equal(service.visibility, 'NAMESPACE');

  const authz = decodeAuthorization(encodeAuthorization({
    name: 'allow', namespace: 'ns', scope: 'NAMESPACE', action: 'ALLOW',
    groups: [{ rules: [{ matches: [{
      namespaces: [{ exact: 'a' }], not_namespaces: [{ prefix: 'b' }], principals: [{ suffix: '/sa/c' }],
      source_ips: [{ address: ipToBytes('10.0.0.0'), length: 8 }], not_destination_ports: [22],
    }] }] }],
  }));
  const m = authz.groups![0]!.rules![0]!.matches![0]!;
  assert.equal(m.namespaces![0]!.exact, 'a');
  assert.equal(m.not_namespaces![0]!.prefix, 'b');
  assert.equal(m.principals![0]!.suffix, '/sa/c');
  assert.equal(m.source_ips![0]!.length, 8);
  assert.deepEqual(m.not_destination_ports, [22]);
});
