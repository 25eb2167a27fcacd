import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluatePrivileges, parseEffectiveCapabilities } from './privileges.js';

const status = (capEff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

test('full root capabilities are enough', () => {
  const report = evaluatePrivileges(parseEffectiveCapabilities(status('000001fffeffffff')));
  assert.deepEqual(report, { ok: true, missing: [], message: '' });
});

test('an unprivileged process lacks both capabilities, and the message names them', () => {
  const report = evaluatePrivileges(parseEffectiveCapabilities(status('0000000000000000')));
  assert.equal(report.ok, false);
  assert.deepEqual(report.missing, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
  assert.match(report.message, /CAP_NET_ADMIN \(socket marks.*\) and CAP_SYS_ADMIN \(setns/);
});

test('CAP_NET_ADMIN alone (bit 12) still lacks CAP_SYS_ADMIN', () => {
  const report = evaluatePrivileges(parseEffectiveCapabilities(status((1 << 12).toString(16).padStart(16, '0'))));
  assert.deepEqual(report.missing, ['CAP_SYS_ADMIN']);
});

test('a status without CapEff is an error, not a silent pass', () => {
  assert.throws(() => parseEffectiveCapabilities('Name:\tnode\n'), /no CapEff/);
});
