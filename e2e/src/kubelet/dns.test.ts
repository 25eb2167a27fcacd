import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { podResolvConf } from './kubelet.js';

const DNS = { server: '10.96.0.10', clusterDomain: 'cluster.local' };
const pod = (spec: V1Pod['spec'] = { containers: [] }, namespace = 'shop'): V1Pod => ({ metadata: { name: 'p', namespace }, spec });

test('pods get cluster DNS as Kubernetes writes it; hostNetwork pods only with ClusterFirstWithHostNet', () => {
  assert.equal(podResolvConf(pod(), DNS), 'nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
  assert.equal(podResolvConf(pod({ containers: [], hostNetwork: true }), DNS), undefined);
  assert.match(podResolvConf(pod({ containers: [], hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }, 'istio-system'), DNS)!, /^nameserver 10\.96\.0\.10\nsearch istio-system\.svc\.cluster\.local /);
  assert.equal(podResolvConf(pod({ containers: [], dnsPolicy: 'Default' }), DNS), undefined);
});

test('dnsConfig adds nameservers, searches and options; None uses only dnsConfig', () => {
  const withCfg = podResolvConf(pod({ containers: [], dnsConfig: { nameservers: ['1.1.1.1'], searches: ['corp'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } }), DNS)!;
  assert.equal(withCfg, 'nameserver 10.96.0.10\nnameserver 1.1.1.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp\noptions ndots:2 edns0\n');
  assert.equal(podResolvConf(pod({ containers: [], dnsPolicy: 'None', dnsConfig: { nameservers: ['9.9.9.9'] } }), DNS), 'nameserver 9.9.9.9\n');
});
