import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CertificateRotator, renewalTime, type Clock, type CertifiedKey } from './index.js';

function fakeClock(start = 1_000_000) {
  let now = start;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let id = 0;
  const clock: Clock & { advance(ms: number): Promise<void>; next(): number | undefined } = {
    now: () => now,
    setTimeout: (fn, ms) => { timers.set(++id, { at: now + ms, fn }); return id; },
    clearTimeout: (h) => { timers.delete(h as number); },
    next: () => [...timers.values()].map((t) => t.at).sort((a, b) => a - b)[0],
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        await new Promise((r) => setImmediate(r));
      }
      now = until;
    },
  };
  return clock;
}

function cert(from: number, lifeMs: number, tag: string): CertifiedKey {
  return { identity: tag, keyPem: '', certChainPem: [], rootsPem: [], notBefore: new Date(from), notAfter: new Date(from + lifeMs) };
}

test('renewal time is half-life', () => {
  assert.equal(renewalTime(cert(1000, 2000, 'a')), 2000);
});

test('rotator renews at half-life and publishes each certificate', async () => {
  const clock = fakeClock();
  let n = 0;
  const seen: string[] = [];
  const r = new CertificateRotator({ clock, fetch: async () => cert(clock.now(), 10_000, `c${++n}`), onUpdate: (c) => seen.push(c.identity) });
  const first = await r.start();
  assert.equal(first.identity, 'c1');
  assert.equal(clock.next(), clock.now() + 5000);
  await clock.advance(4999);
  assert.deepEqual(seen, ['c1']);
  await clock.advance(1);
  assert.deepEqual(seen, ['c1', 'c2']);
  r.stop();
});

test('rotator backs off exponentially up to the cap and keeps the last good certificate', async () => {
  const clock = fakeClock();
  let fail = false;
  const delays: number[] = [];
  const r = new CertificateRotator({
    clock, random: () => 0, initialBackoffMs: 1000, maxBackoffMs: 4000,
    fetch: async () => { if (fail) throw new Error('CA down'); return cert(clock.now(), 10_000, 'ok'); },
    onUpdate: () => {}, onError: (_e, ms) => delays.push(ms),
  });
  await r.start();
  fail = true;
  await clock.advance(5000); // renewal attempt fails
  for (let i = 0; i < 4; i++) await clock.advance(delays.at(-1)!);
  assert.deepEqual(delays, [1000, 2000, 4000, 4000, 4000]);
  assert.equal(r.current?.identity, 'ok');
  fail = false;
  await clock.advance(4000);
  assert.equal(delays.length, 5);
  r.stop();
});
