// The controller away for 2 minutes on a 2-node cluster-in-a-box with Ambit installed by helm (scenarios/mesh.ts):
// established and new connections between pods the agents already know keep working (the data path never waits on
// the control plane: last good config and certificates), and when the controller comes back the agents reconnect.
// A file of its own because the outage alone takes 2 of the 5 minutes node's test runner gives a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../wait.js';
import type { NetnsProcess } from '../process.js';
import { holdState, startHoldingConnection } from './mesh.js';
import {
  MESH_NS, echoOnce, guarded, m, marker, mtlsCounts, runningPods, useScenarioMesh,
} from './scenario.js';

useScenarioMesh();

test('with the controller scaled to 0 for 2 minutes, established and new connections between known pods keep working; back, the agents reconnect', { timeout: 300_000 }, async (t) => {
  await guarded(t, async () => {
    const [client, echo] = await runningPods(MESH_NS, ['client', 'echo']);
    const echoIp = echo!.status.podIP!;
    let hold: NetnsProcess | undefined;
    let scaledDown = false;
    try {
      // Known pods: both captured, certificates issued (a first exchange), one connection held open.
      const first = await echoOnce(client!, echoIp, marker('KNOWN'));
      assert.equal(first.ok, true, `echo before the outage: ${JSON.stringify(first)}`);
      hold = await startHoldingConnection(m(), client!, echoIp, 8080, marker('HOLD-OUTAGE'));
      const base = await mtlsCounts(MESH_NS);

      // Honest about the method: `kubectl scale --replicas=0` (the pods get SIGTERM and are removed; no replica
      // serves xDS or the CA until it is scaled back).
      await m().scaleControllers(0);
      scaledDown = true;
      const downAt = Date.now();
      t.diagnostic('controller scaled to 0; no controller pod left');
      let newOk = 0;
      while (Date.now() - downAt < 120_000) {
        const r = await echoOnce(client!, echoIp, marker('DURING-OUTAGE'));
        assert.equal(r.ok, true, `a new connection ${Math.round((Date.now() - downAt) / 1000)} s into the outage failed: ${JSON.stringify(r)}`);
        newOk++;
        const s = holdState(hold);
        assert.equal(s.closed, undefined, `the established connection ended during the outage: ${JSON.stringify(s.closed)}`);
        assert.equal((await m().controllers()).length, 0, 'no controller pod may run during the outage');
        await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(0, 120_000 - (Date.now() - downAt)))));
      }
      const during = await mtlsCounts(MESH_NS);
      const echoes = holdState(hold).echoes;
      t.diagnostic(`outage of ${Date.now() - downAt} ms: ${newOk} new connections ok, ${echoes} echoes on the held one`);
      assert.ok(during.destination >= base.destination + newOk, 'the new connections during the outage were mutual_tls');
      assert.ok(echoes >= 500, `the held connection kept carrying data (${echoes} echoes at 200 ms)`);

      await m().scaleControllers(2, 120_000);
      scaledDown = false;
      const upAt = Date.now();
      // Both agents reconnect: each has an xDS stream with one of the replicas that has answered every push (no
      // pending nonce; /debug/syncz on 15014). `synced` is not used: it stays false after any NACK, and the agents
      // NACK the kube-dns Service (reported bug: TCP and UDP port 53 sent as two entries of servicePort 53).
      const agents = await Promise.all(['node-1', 'node-2'].map((n) => m().agentOn(n)));
      await waitFor(async () => {
        const clients: { proxy: string; types: Record<string, { acked: number; pendingNonces: string[] }> }[] = [];
        for (const c of await m().controllers()) {
          const r = await m().cluster.nodePool!.topology.execIn(m().netnsOf(c), ['curl', '-sS', '--max-time', '3', 'http://127.0.0.1:15014/debug/syncz'], { timeoutMs: 5000 });
          if (r.code === 0) clients.push(...(JSON.parse(r.stdout) as { clients: typeof clients }).clients);
        }
        return agents.every((a) => clients.some((c) => c.proxy.includes(`~${a.status.podIP}~${a.metadata.name}.`) && Object.values(c.types).length > 0 && Object.values(c.types).every((x) => x.pendingNonces.length === 0)));
      }, { timeoutMs: 120_000, intervalMs: 1000, message: 'both agents reconnected and synced to a controller replica' });
      t.diagnostic(`agents reconnected ${Date.now() - upAt} ms after the replicas were Ready`);
      assert.equal(holdState(hold).closed, undefined, 'the held connection survived the controller coming back');
      const r = await echoOnce(client!, echoIp, marker('AFTER-OUTAGE'));
      assert.equal(r.ok, true);
    } finally {
      hold?.kill();
      if (scaledDown) await m().scaleControllers(2, 120_000).catch(() => undefined);
    }
  });
});

