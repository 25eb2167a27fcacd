// What every mesh acceptance test file shares: one mesh per file (started in `before`, closed in `after`, logs kept
// when a test failed), configuration applied for one test and removed after it, and the suite's assertions.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchResult, ConsistentCase, MeshRequest } from './expect.js';
import { describeFailures, runBatch, runConsistent, startMesh, type ClientName, type ClusterMeshOptions, type MeshUnderTest } from './mesh.js';
import { MESH_NS } from './manifests.js';

export { MESH_NS };
export const ECHO_PARENT = `parentRefs: [{group: "", kind: Service, name: echo, port: 80}]`;

export interface MeshFile {
  mesh(): MeshUnderTest;
  /** A test of this file; a failure keeps the mesh's logs. */
  test(name: string, fn: (t: TestContext, mesh: MeshUnderTest) => Promise<void>, options?: { timeout?: number }): void;
}

/** Registers the file's mesh: started before the first test, closed after the last (also when tests failed). */
export function useMesh(file: string, options: ClusterMeshOptions = {}): MeshFile {
  let mesh: MeshUnderTest | undefined;
  let failed = false;
  before(async () => {
    const started = Date.now();
    mesh = await startMesh({ ...options, log: (line) => process.stderr.write(`# ${file}: ${line}\n`) });
    process.stderr.write(`# ${file}: ${mesh.kind} mesh ready in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  }, { timeout: 600_000 });
  after(async () => {
    if (!mesh) return;
    if (failed) {
      const dir = mkdtempSync(join(tmpdir(), `ambit-${file}-logs-`));
      process.stderr.write(`# ${file}: logs of the failed run in ${dir}\n`);
      try {
        mesh.collectLogs(dir);
      } catch (err) {
        process.stderr.write(`# ${file}: collecting logs failed: ${(err as Error).message}\n`);
      }
    }
    await mesh.close();
  }, { timeout: 120_000 });
  const get = (): MeshUnderTest => {
    if (!mesh) throw new Error('the mesh did not start (see the before hook)');
    return mesh;
  };
  return {
    mesh: get,
    test(name, fn, testOptions = {}) {
      test(name, { timeout: testOptions.timeout ?? 240_000 }, async (t) => {
        try {
          await fn(t, get());
        } catch (err) {
          failed = true;
          throw err;
        }
      });
    },
  };
}

/** Applies `yaml`, runs `fn`, deletes `yaml` (even when `fn` failed). */
export async function withConfig<T>(mesh: MeshUnderTest, yaml: string, fn: () => Promise<T>, options: { waitWaypoint?: boolean } = {}): Promise<T> {
  await mesh.apply(yaml);
  try {
    if (options.waitWaypoint) await mesh.waitWaypointConfig(yaml);
    return await fn();
  } finally {
    await mesh.delete(yaml);
    await mesh.waitWaypointConfig(yaml, { absent: true }).catch(() => undefined);
  }
}

/** Every case holds 3 times in a row within 30 s; one assertion listing every failing case. */
export async function expectConsistent(mesh: MeshUnderTest, cases: ConsistentCase[], from?: ClientName): Promise<void> {
  const results = await runConsistent(mesh, cases, from ? { from } : {});
  const failures = describeFailures(results);
  assert.equal(failures, '', `cases that did not hold 3 times in a row within 30 s:\n${failures}`);
}

/** Fractions of a batch answered by each backend Deployment. */
export function shares(result: BatchResult, backends: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of backends) out[b] = (result.byBackend[b] ?? 0) / result.count;
  return out;
}

/**
 * The suite's weight test (conformance/utils/weight): `count` requests in one batch, every weighted backend gets
 * traffic, each share within `tolerance` of its expected fraction; the whole distribution test is tried up to
 * 1 + `retries` times. Returns the shares of the passing (or last) run and how many runs it took.
 */
export async function expectWeights(
  mesh: MeshUnderTest,
  request: MeshRequest,
  expected: Record<string, number>,
  options: { count?: number; tolerance?: number; retries?: number; from?: ClientName; diagnostic?: (msg: string) => void } = {},
): Promise<{ shares: Record<string, number>; runs: number }> {
  const count = options.count ?? 500;
  const tolerance = options.tolerance ?? 0.05;
  const retries = options.retries ?? 10;
  let last = '';
  for (let run = 1; run <= retries + 1; run++) {
    const result = await runBatch(mesh, request, count, { concurrency: 10, ...(options.from ? { from: options.from } : {}) });
    const got = shares(result, Object.keys(expected));
    const problems: string[] = [];
    const ok200 = result.byStatus['200'] ?? 0;
    if (ok200 !== count) problems.push(`${count - ok200} of ${count} requests did not answer 200: ${JSON.stringify(result.byStatus)} ${JSON.stringify(result.errors)}`);
    for (const [b, want] of Object.entries(expected)) {
      if (want > 0 && (result.byBackend[b] ?? 0) === 0) problems.push(`${b} got no traffic`);
      if (Math.abs(got[b]! - want) > tolerance) problems.push(`${b}: ${(got[b]! * 100).toFixed(1)}% not within ${tolerance * 100} points of ${(want * 100).toFixed(0)}%`);
    }
    const others = Object.keys(result.byBackend).filter((b) => !(b in expected));
    if (others.length) problems.push(`unexpected backends: ${others.join(', ')}`);
    options.diagnostic?.(`run ${run}: ${Object.entries(got).map(([b, s]) => `${b} ${(s * 100).toFixed(1)}%`).join(', ')}${problems.length ? ` (${problems.join('; ')})` : ''}`);
    if (problems.length === 0) return { shares: got, runs: run };
    last = problems.join('; ');
  }
  assert.fail(`weights not within tolerance after ${retries + 1} runs of ${count} requests: ${last}`);
}

/** Binomial acceptance band: |observed - p| <= 3 standard deviations of a fraction over n trials. */
export function withinBinomialBand(observed: number, p: number, n: number): boolean {
  return Math.abs(observed - p) <= 3 * Math.sqrt((p * (1 - p)) / n);
}
