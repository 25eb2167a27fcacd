import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CNI_ERROR, CniError } from './cni-spec.js';
import { NETCONF_DEFAULTS, parseCniArgs, parseNetConf, podIdentityOf, readCniInvocation } from './netconf.js';

function codeOf(fn: () => unknown): number {
  try { fn(); } catch (err) { assert.ok(err instanceof CniError, String(err)); return err.code; }
  assert.fail('expected a CniError');
}

const K8S_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=sleep-1;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=6f1c9a52-0c4e-4a8e-9d0a-3b2b1f0e2a11';

test('CNI_ARGS as Kubernetes runtimes send them', () => {
  assert.deepEqual(parseCniArgs(K8S_ARGS), {
    IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'sleep-1', K8S_POD_INFRA_CONTAINER_ID: 'abc123',
    K8S_POD_UID: '6f1c9a52-0c4e-4a8e-9d0a-3b2b1f0e2a11',
  });
  assert.deepEqual(parseCniArgs(undefined), {});
  assert.deepEqual(parseCniArgs('A=1;;B=x=y;'), { A: '1', B: 'x=y' });
  assert.equal(codeOf(() => parseCniArgs('A=1;garbage')), CNI_ERROR.invalidEnvironment);
});

test('CNI environment: required variables per command, code 4 naming what is missing', () => {
  const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: K8S_ARGS };
  assert.equal(readCniInvocation(base).args.K8S_POD_NAME, 'sleep-1');
  assert.throws(() => readCniInvocation({ ...base, CNI_NETNS: undefined }), /required environment variable CNI_NETNS missing for ADD/);
  assert.throws(() => readCniInvocation({ ...base, CNI_COMMAND: 'CHECK', CNI_NETNS: '', CNI_IFNAME: '' }), /CNI_NETNS, CNI_IFNAME missing for CHECK/);
  assert.equal(readCniInvocation({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, '', 'DEL works without a netns');
  assert.equal(codeOf(() => readCniInvocation({})), CNI_ERROR.invalidEnvironment);
  assert.equal(codeOf(() => readCniInvocation({ CNI_COMMAND: 'FROB' })), CNI_ERROR.invalidEnvironment);
  assert.equal(readCniInvocation({ CNI_COMMAND: 'VERSION' }).command, 'VERSION');
});

test('pod identity from CNI_ARGS, with the sandbox id when the runtime sends no uid', () => {
  const inv = readCniInvocation({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_ARGS: K8S_ARGS });
  assert.deepEqual(podIdentityOf(inv), { namespace: 'default', name: 'sleep-1', uid: '6f1c9a52-0c4e-4a8e-9d0a-3b2b1f0e2a11', uidFromRuntime: true });
  const noUid = readCniInvocation({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=a;K8S_POD_NAME=b' });
  assert.deepEqual(podIdentityOf(noUid), { namespace: 'a', name: 'b', uid: 'c1', uidFromRuntime: false });
  const notK8s = readCniInvocation({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' });
  assert.equal(podIdentityOf(notK8s), undefined);
});

test('netconf: defaults for our keys', () => {
  const conf = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'ambit-cni' }));
  assert.deepEqual(conf, {
    cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'ambit-cni', agentSocket: '/var/run/ambit/cni.sock', timeoutSeconds: 30,
    logLevel: 'info', excludeNamespaces: ['kube-system'],
  });
  assert.equal(NETCONF_DEFAULTS.agentSocket, '/var/run/ambit/cni.sock');
});

test('netconf: our keys are read and checked', () => {
  const conf = parseNetConf(JSON.stringify({
    cniVersion: '0.3.1', name: 'n', type: 'ambit-cni', agentSocket: '/run/x.sock', timeoutSeconds: 2.5, logLevel: 'DEBUG',
    excludeNamespaces: [], prevResult: { cniVersion: '0.3.1', ips: [] },
  }));
  assert.deepEqual([conf.agentSocket, conf.timeoutSeconds, conf.logLevel, conf.excludeNamespaces, conf.prevResult], ['/run/x.sock', 2.5, 'debug', [], { cniVersion: '0.3.1', ips: [] }]);
  const bad = (extra: object) => codeOf(() => parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 't', ...extra })));
  assert.equal(bad({ agentSocket: 'relative.sock' }), CNI_ERROR.invalidNetworkConfig);
  assert.equal(bad({ timeoutSeconds: 0 }), CNI_ERROR.invalidNetworkConfig);
  assert.equal(bad({ timeoutSeconds: '30' }), CNI_ERROR.invalidNetworkConfig);
  assert.equal(bad({ logLevel: 'loud' }), CNI_ERROR.invalidNetworkConfig);
  assert.equal(bad({ excludeNamespaces: 'kube-system' }), CNI_ERROR.invalidNetworkConfig);
  assert.equal(bad({ prevResult: [] }), CNI_ERROR.invalidNetworkConfig);
  assert.equal(bad({ name: '' }), CNI_ERROR.invalidNetworkConfig);
  assert.throws(() => parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 't', timeoutSeconds: -1 })), /invalid network configuration: timeoutSeconds must be a positive number, got -1/);
});

test('netconf: undecodable stdin is code 6, an unsupported version code 1', () => {
  assert.equal(codeOf(() => parseNetConf('{"cniVersion": ')), CNI_ERROR.decodingFailure);
  assert.equal(codeOf(() => parseNetConf('')), CNI_ERROR.decodingFailure);
  assert.equal(codeOf(() => parseNetConf('[1]')), CNI_ERROR.decodingFailure);
  assert.equal(codeOf(() => parseNetConf('{"cniVersion":"0.2.0","name":"n","type":"t"}')), CNI_ERROR.incompatibleVersion);
  assert.equal(codeOf(() => parseNetConf('{"name":"n","type":"t"}')), CNI_ERROR.incompatibleVersion);
});
