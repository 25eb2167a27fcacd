import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAmbient, isPodTerminal, podIpsOf, type PodFacts } from './ambient-selection.js';

const AMBIENT_NS = { 'istio.io/dataplane-mode': 'ambient' };

function pod(opts: { labels?: Record<string, string>; annotations?: Record<string, string>; hostNetwork?: boolean } = {}): PodFacts {
  return {
    metadata: { name: 'echo', namespace: 'apps', ...(opts.labels ? { labels: opts.labels } : {}), ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: { containers: [{ name: 'echo' }], ...(opts.hostNetwork !== undefined ? { hostNetwork: opts.hostNetwork } : {}) },
  };
}

test('a pod in an ambient namespace is captured', () => {
  assert.deepEqual(decideAmbient(pod(), AMBIENT_NS), { ambient: true });
});

test('a pod in an unlabelled namespace is not captured, and the reason names the label', () => {
  const d = decideAmbient(pod(), {});
  assert.equal(d.ambient, false);
  assert.match((d as { reason: string }).reason, /namespace apps .*istio\.io\/dataplane-mode=ambient/);
  assert.equal(decideAmbient(pod(), undefined).ambient, false);
  assert.equal(decideAmbient(pod(), { 'istio.io/dataplane-mode': 'none' }).ambient, false);
});

test('a pod labelled ambient opts in without the namespace label (Istio 1.24+ enablement selectors)', () => {
  assert.deepEqual(decideAmbient(pod({ labels: { 'istio.io/dataplane-mode': 'ambient' } }), {}), { ambient: true });
});

test('pod label none opts out of an ambient namespace', () => {
  const d = decideAmbient(pod({ labels: { 'istio.io/dataplane-mode': 'none' } }), AMBIENT_NS);
  assert.deepEqual(d, { ambient: false, reason: 'the pod opts out with istio.io/dataplane-mode=none' });
});

test('waypoint pods are excluded through their dataplane-mode=none label, as Istio deploys them', () => {
  const waypoint = pod({ labels: { 'istio.io/dataplane-mode': 'none', 'gateway.networking.k8s.io/gateway-name': 'waypoint', 'gateway.istio.io/managed': 'istio.io-mesh-controller' } });
  assert.equal(decideAmbient(waypoint, AMBIENT_NS).ambient, false);
});

test('a pod with a sidecar is never captured, even when labelled ambient', () => {
  const d = decideAmbient(pod({ labels: { 'istio.io/dataplane-mode': 'ambient' }, annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' } }), AMBIENT_NS);
  assert.equal(d.ambient, false);
  assert.match((d as { reason: string }).reason, /sidecar/);
});

test('a hostNetwork pod is never captured', () => {
  const d = decideAmbient(pod({ hostNetwork: true, labels: { 'istio.io/dataplane-mode': 'ambient' } }), AMBIENT_NS);
  assert.deepEqual(d, { ambient: false, reason: 'the pod uses the host network' });
  assert.deepEqual(decideAmbient(pod({ hostNetwork: false }), AMBIENT_NS), { ambient: true });
});

test('terminal phases', () => {
  for (const [phase, terminal] of [['Pending', false], ['Running', false], ['Succeeded', true], ['Failed', true], [undefined, false]] as const) {
    assert.equal(isPodTerminal({ status: phase ? { phase } : {} }), terminal, String(phase));
  }
});

test('pod IPs come from podIPs, else podIP, else none', () => {
  assert.deepEqual(podIpsOf({ status: { podIP: '10.0.1.5', podIPs: [{ ip: '10.0.1.5' }, { ip: 'fd00::5' }] } }), ['10.0.1.5', 'fd00::5']);
  assert.deepEqual(podIpsOf({ status: { podIP: '10.0.1.6' } }), ['10.0.1.6']);
  assert.deepEqual(podIpsOf({ status: {} }), []);
  assert.deepEqual(podIpsOf({}), []);
});
