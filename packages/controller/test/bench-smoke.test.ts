// The scale benchmark at a tiny size: it must run end to end and report every metric, and every agent must have
// received every resource. Correctness only; timings are the benchmark's business, not a test's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../bench/run.js', import.meta.url));

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    // The bench's children exit when its IPC channel closes, so killing the bench (by pid) ends them too.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the benchmark did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

interface SpreadLike { median: number; runs: number[] }

async function runTinyBench(client: 'ztunnel' | 'light'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-controller-bench-smoke-'));
  try {
    const out = join(dir, 'result.json');
    const { code, output } = await runBench(
      ['--services', '10', '--pods', '20', '--agents', '3', '--runs', '1', '--changes', '4', '--client', client, '--out', out],
      240_000,
    );
    assert.equal(code, 0, output);
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      config: Record<string, unknown>;
      summary: Record<string, Record<string, SpreadLike> | SpreadLike>;
      ratios: Record<string, number>;
      targets: { metric: string; value: number; target: number; met: boolean }[];
      correctness: Record<string, boolean | number>;
      runs: {
        resources: { addresses: number; authorizations: number };
        controllerOneAgent: { agentsComplete: number };
        controller: { sync: { agentsComplete: number; distinctPeers: number }; changes: { changes: number; allAgentsMs: { count: number } }; agentsCompleteAfterChanges: number };
        replay: { sync: { agentsComplete: number }; changes: { changes: number } };
      }[];
    };
    assert.equal(r.config.services, 10);
    assert.equal(r.config.agents, 3);
    assert.match(String(r.config.agentClient), new RegExp(`^${client}:`));

    const expected: Record<string, string[]> = {
      fullSync: ['controllerMs', 'controllerOneAgentMs', 'replayMs', 'controllerCpuS', 'controllerOneAgentCpuS', 'replayCpuS', 'agentFleetCpuS', 'agentP50Ms', 'firstResponseP50Ms'],
      incremental: ['controllerP50Ms', 'controllerP99Ms', 'controllerPerAgentP99Ms', 'replayP50Ms', 'replayP99Ms', 'translateP50Ms', 'controllerCpuMsPerChange', 'replayCpuMsPerChange', 'agentFleetCpuMsPerChange'],
      memory: ['afterLoadRssMB', 'steadyRssMB', 'peakRssMB', 'steadyHeapUsedMB'],
    };
    for (const [group, keys] of Object.entries(expected)) {
      for (const k of keys) {
        const m = (r.summary[group] as Record<string, SpreadLike>)[k];
        assert.ok(m && Number.isFinite(m.median) && m.median >= 0, `summary.${group}.${k} is a number: ${JSON.stringify(m)}`);
        assert.equal(m.runs.length, 1, `summary.${group}.${k} has one value per run`);
      }
    }
    for (const k of ['translateMs', 'translateCpuS']) assert.ok(Number.isFinite((r.summary[k] as SpreadLike).median), `summary.${k}`);
    for (const [k, v] of Object.entries(r.ratios)) assert.ok(Number.isFinite(v), `ratio ${k} is a number: ${v}`);
    assert.deepEqual(r.targets.map((t) => Number.isFinite(t.value) && typeof t.met === 'boolean'), [true, true, true]);

    // Correctness: every agent holds exactly the controller's resources (names and versions), after the full
    // sync and after the changes; each agent on its own TLS connection; nothing was NACKed.
    assert.deepEqual(r.correctness, {
      agentsExpected: 3,
      everyAgentHeldEverythingAfterSync: true,
      everyAgentHeldEverythingAfterChanges: true,
      replayAgentsHeldEverything: true,
      oneConnectionPerAgent: true,
      nacks: 0,
      agentStreamsEnded: 0,
    });
    const run = r.runs[0]!;
    // 10 services + 20 pods; 2 policies in the one namespace + the static STRICT policy.
    assert.deepEqual(run.resources, { addresses: 30, authorizations: 3 });
    assert.equal(run.controllerOneAgent.agentsComplete, 1);
    assert.equal(run.controller.sync.agentsComplete, 3);
    assert.equal(run.controller.sync.distinctPeers, 3);
    assert.equal(run.controller.agentsCompleteAfterChanges, 3);
    assert.equal(run.replay.sync.agentsComplete, 3);
    assert.equal(run.controller.changes.changes, 4);
    assert.equal(run.controller.changes.allAgentsMs.count, 4);
    assert.equal(run.replay.changes.changes, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the controller scale benchmark at a tiny size, with the node agent\'s xDS client, reports every metric and every agent holds every resource', () =>
  runTinyBench('ztunnel'));

test('the controller scale benchmark at a tiny size, with the light delta client, reports every metric and every agent holds every resource', () =>
  runTinyBench('light'));
