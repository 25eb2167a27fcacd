// Root-only: apply / remove / check / repair of the in-pod rules against a real netns (iptables-nft, ip rule).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPodRedirection, checkPodRedirection, removePodRedirection, repairPodRedirection } from './pod-redirection.js';
import { NetnsCommandError } from './netns-exec.js';
import { createTestTopology, inNetns, type TestTopology } from './testing/netns-topology.js';

let topo: TestTopology;
let ns: { netns: string };
before(() => {
  topo = createTestTopology('rr');
  ns = { netns: topo.pod.path };
});
after(() => topo?.destroy());

const save = (): string => inNetns(topo.pod.name, 'iptables-save');
const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;
const ipRules = (v: 4 | 6 = 4): string => inNetns(topo.pod.name, 'ip', `-${v}`, 'rule', 'show');
const table133 = (v: 4 | 6 = 4): string => {
  try { return inNetns(topo.pod.name, 'ip', `-${v}`, 'route', 'show', 'table', '133'); } catch { return ''; }
};

test('apply installs every rule once; a second apply changes nothing', async (t) => {
  t.after(() => removePodRedirection(ns));
  // A rule someone else owns must survive our apply and remove.
  inNetns(topo.pod.name, 'iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '--dport', '9999', '-j', 'ACCEPT');
  t.after(() => inNetns(topo.pod.name, 'iptables', '-t', 'nat', '-D', 'OUTPUT', '-p', 'udp', '--dport', '9999', '-j', 'ACCEPT'));

  const first = await applyPodRedirection(ns);
  assert.equal(first.changed, true);
  const second = await applyPodRedirection(ns);
  assert.deepEqual(second, { changed: false, drift: [] });
  const text = save();
  assert.equal(count(text, /^-A PREROUTING -j ISTIO_PRERT$/), 1);
  assert.equal(count(text, /^-A OUTPUT -j ISTIO_OUTPUT$/), 2); // mangle and nat
  assert.equal(count(text, /--to-ports 15001$/), 1);
  assert.equal(count(text, /--on-port 15006 /), 1);
  assert.equal(count(text, /--on-port 15008 /), 1);
  assert.equal(count(text, /-s 169\.254\.7\.127\/32 -p tcp -j ACCEPT/), 1);
  assert.equal(count(text, /15053/), 0, 'DNS capture is off by default');
  assert.equal(count(ipRules(), /fwmark 0x111\/0xfff lookup 133/), 1);
  assert.match(table133(), /^local default dev lo/);
  assert.equal((await checkPodRedirection(ns)).inSync, true);
  assert.equal(count(save(), /--dport 9999 -j ACCEPT/), 1);
});

test('remove leaves nothing of ours, keeps foreign rules, and is a no-op the second time', async () => {
  inNetns(topo.pod.name, 'iptables', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'udp', '-j', 'ACCEPT');
  await applyPodRedirection({ ...ns, dnsCapture: true, ipv6: true });
  const removed = await removePodRedirection(ns);
  assert.equal(removed.changed, true);
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const text = inNetns(topo.pod.name, tool);
    assert.equal(count(text, /ISTIO/), 0, `${tool} still shows our rules:\n${text}`);
  }
  assert.equal(count(save(), /^-A PREROUTING -p udp -j ACCEPT$/), 1);
  for (const v of [4, 6] as const) {
    assert.equal(count(ipRules(v), /lookup 133/), 0);
    assert.equal(table133(v).trim(), '');
  }
  assert.deepEqual(await removePodRedirection(ns), { changed: false, drift: [] });
  inNetns(topo.pod.name, 'iptables', '-t', 'mangle', '-D', 'PREROUTING', '-p', 'udp', '-j', 'ACCEPT');
});

test('check reports a deleted rule, a deleted ip rule and a duplicated jump; repair restores the exact set', async (t) => {
  t.after(() => removePodRedirection(ns));
  await applyPodRedirection(ns);
  inNetns(topo.pod.name, 'iptables', '-t', 'nat', '-D', 'ISTIO_OUTPUT', '!', '-d', '127.0.0.1/32', '-p', 'tcp',
    '-m', 'mark', '!', '--mark', '0x539/0xfff', '-j', 'REDIRECT', '--to-ports', '15001');
  inNetns(topo.pod.name, 'ip', 'rule', 'del', 'pref', '32764');
  inNetns(topo.pod.name, 'iptables', '-t', 'mangle', '-A', 'PREROUTING', '-j', 'ISTIO_PRERT');

  const check = await checkPodRedirection(ns);
  assert.equal(check.inSync, false);
  assert.deepEqual(check.summary.sort(), [
    'missing in IPv4 ip rule: fwmark 0x111/0xfff pref 32764 lookup 133',
    'missing in IPv4 nat ISTIO_OUTPUT: -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001',
    'unexpected in IPv4 mangle PREROUTING: -A PREROUTING -j ISTIO_PRERT',
  ]);
  const repaired = await repairPodRedirection(ns);
  assert.equal(repaired.drift.length, 3);
  assert.deepEqual(await checkPodRedirection(ns), { inSync: true, drift: [], summary: [] });
  assert.equal(count(save(), /^-A PREROUTING -j ISTIO_PRERT$/), 1);
  assert.equal(count(save(), /--to-ports 15001$/), 1);
});

test('options change the live set: DNS capture and IPv6 on, then off again', async (t) => {
  t.after(() => removePodRedirection(ns));
  const full = { ...ns, dnsCapture: true, ipv6: true };
  await applyPodRedirection(full);
  assert.deepEqual((await checkPodRedirection(full)).summary, []);
  assert.equal(count(save(), /--to-ports 15053$/), 2);
  assert.equal(count(save(), /-j CT --zone 1$/), 2);
  assert.equal(count(inNetns(topo.pod.name, 'ip6tables-save'), /--on-port 15006 --on-ip ::/), 1);
  assert.equal(count(ipRules(6), /lookup 133/), 1);
  // The plain set is now out of sync (extra DNS and IPv6 state) until applied.
  assert.ok((await checkPodRedirection(ns)).drift.some((d) => d.version === 6 && d.kind === 'unexpected'));
  await applyPodRedirection(ns);
  assert.deepEqual((await checkPodRedirection(ns)).summary, []);
  assert.equal(count(save(), /15053|CT --zone/), 0);
  assert.equal(count(inNetns(topo.pod.name, 'ip6tables-save'), /ISTIO/), 0);
  assert.equal(count(ipRules(6), /lookup 133/), 0);
});

test('a bad netns path fails with an error naming the netns and the command', async () => {
  const netns = `/var/run/netns/${topo.pod.name}-gone`;
  await assert.rejects(applyPodRedirection({ netns }), (err: unknown) => {
    assert.ok(err instanceof NetnsCommandError);
    assert.equal(err.code, 'AMB_ERR_NETNS_COMMAND');
    assert.equal(err.netns, netns);
    assert.match(err.message, new RegExp(`in netns ${netns} failed \\(exit 1\\): nsenter: .*No such file or directory`));
    return true;
  });
});
