// Test doubles for the enrollment API, shared by the inpod and cni tests. Not exported from the package.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { CaptureOutcome, PodSpec } from './enrollment-contract.js';
import type { PodCapturer } from './pod-spec.js';
import { createEnrollmentServer } from './enrollment-api.js';
import { createPodEnrollment, type PodEnrollment } from './pod-enrollment.js';
import { createPodRegistry } from './pod-registry.js';

export type CapturerCall = { op: 'capture'; pod: PodSpec } | { op: 'release'; uid: string } | { op: 'capture-done'; uid: string };

/**
 * A PodCapturer that records calls in order. `mode` decides what capture does; `gate(uid)` makes the next
 * capture of that uid wait until the returned function is called, to test ordering.
 */
export interface FakeCapturer extends PodCapturer {
  calls: CapturerCall[];
  mode: 'capture' | 'decline' | 'throw';
  captured: Set<string>;
  gate(uid: string): () => void;
  /** Pretends the capture of a pod was lost (the agent's listeners died). */
  lose(uid: string): void;
}

export function createFakeCapturer(): FakeCapturer {
  const gates = new Map<string, Promise<void>>();
  const fake: FakeCapturer = {
    calls: [],
    mode: 'capture',
    captured: new Set(),
    gate(uid) {
      let open!: () => void;
      gates.set(uid, new Promise<void>((r) => { open = r; }));
      return () => open();
    },
    lose(uid) { fake.captured.delete(uid); },
    async capture(pod): Promise<CaptureOutcome> {
      fake.calls.push({ op: 'capture', pod });
      const gate = gates.get(pod.uid);
      if (gate) { gates.delete(pod.uid); await gate; }
      fake.calls.push({ op: 'capture-done', uid: pod.uid });
      if (fake.mode === 'throw') throw new Error('iptables-restore failed in the pod netns: exit status 4');
      if (fake.mode === 'decline') return { captured: false, reason: `namespace ${pod.namespace} is not labelled istio.io/dataplane-mode=ambient` };
      fake.captured.add(pod.uid);
      return { captured: true };
    },
    async release(uid) {
      fake.calls.push({ op: 'release', uid });
      fake.captured.delete(uid);
    },
    isCaptured: (uid) => fake.captured.has(uid),
  };
  return fake;
}

export interface LogLine { level: number; msg: string; [k: string]: unknown }

/** A real pino logger whose lines land in an array, so tests can assert what was logged. */
export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** A temp dir removed after the test; short, because unix socket paths are limited to 107 bytes. */
export function tempDir(t: { after(fn: () => void): void }, prefix = 'ambit-inpod-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A plain file standing in for a netns bind mount (/var/run/netns/<name>); tests need no root. */
export function fakeNetns(dir: string, name: string): string {
  const p = join(dir, `netns-${name}`);
  writeFileSync(p, '');
  return p;
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A real enrollment server on a unix socket in `dir` (default: a fresh temp dir), backed by `capturer`, with the
 * DEL requests recorded as they reach the agent (before the per-pod queue), so tests can wait for one to be queued.
 */
export async function startEnrollmentAgent(t: { after(fn: () => unknown): void }, options: { dir?: string; capturer?: FakeCapturer } = {}) {
  const dir = options.dir ?? tempDir(t, 'ambit-cni-');
  const capturer = options.capturer ?? createFakeCapturer();
  const { logger, lines } = recordingLogger();
  const registry = createPodRegistry({ path: join(dir, 'pods.json'), logger });
  const enrollment = createPodEnrollment({ capturer, registry, logger });
  const socketPath = join(dir, 'run', 'cni.sock');
  const arrivedReleases: string[] = [];
  const observed: PodEnrollment = { ...enrollment, release: (uid) => { arrivedReleases.push(uid); return enrollment.release(uid); } };
  const server = createEnrollmentServer({ socketPath, enrollment: observed, logger });
  await server.listen();
  t.after(() => server.close());
  return { dir, socketPath, capturer, enrollment, registry, server, lines, arrivedReleases };
}
