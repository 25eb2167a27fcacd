import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDuration, checkIpOrCidr, checkRe2, checkWildcardDomain, parseDuration } from './primitives.js';

test('durations in Istio CRD syntax parse to nanoseconds', () => {
  assert.equal(parseDuration('1s'), 1e9);
  assert.equal(parseDuration('100ms'), 1e8);
  assert.equal(parseDuration('1.5s'), 1.5e9);
  assert.equal(parseDuration('1h30m'), 5400e9);
  assert.equal(parseDuration('0'), 0);
  for (const bad of ['', '1', 's', '1.5', '1x', '1 s', 'abc', '.s']) assert.equal(parseDuration(bad), undefined, bad);
});

test('checkDuration needs at least 1ms at millisecond precision, 0s only where allowed', () => {
  assert.equal(checkDuration('1s'), undefined);
  assert.equal(checkDuration('100ms'), undefined);
  assert.equal(checkDuration('1.5s'), undefined);
  assert.match(checkDuration('500us')!, /at least 1ms/);
  assert.match(checkDuration('1.0005s')!, /millisecond precision/);
  assert.match(checkDuration('0s')!, /at least 1ms/);
  assert.equal(checkDuration('0s', { allowZero: true }), undefined);
  assert.match(checkDuration('-1s')!, /at least 1ms/);
  assert.match(checkDuration('ten seconds')!, /invalid duration "ten seconds"/);
});

test('RE2 check accepts RE2 syntax', () => {
  for (const ok of [
    'foo.*bar', '^/api/v[0-9]+/', '[a-z]+$', '(?i)abc', '(?i:abc)def', '(?P<id>[0-9]+)', '(?<id>[0-9]+)', '\\d+\\.\\d+',
    '[[:alpha:]]+', '\\pL', '\\p{Greek}', 'a{2,5}', 'a{3}', 'a{2,}', 'x*?', '(a|b)+', '\\Q.*\\E', '[\\]]', '[]a]', 'a{', '\\x41\\x{263a}', '\\012',
  ]) assert.equal(checkRe2(ok), undefined, ok);
});

test('RE2 check names the PCRE/JavaScript features RE2 refuses', () => {
  const cases: [string, RegExp][] = [
    ['^/(?=api)', /lookahead/],
    ['foo(?!bar)', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?<!a)b', /lookbehind/],
    ['(a)\\1', /backreference \\1/],
    ['(?<n>a)\\k<n>', /named backreference/],
    ['a++', /possessive/],
    ['a*+', /possessive/],
    ['(?>abc)', /atomic group/],
    ['(?(1)a|b)', /conditional/],
    ['x**', /nested repetition/],
    ['*a', /missing argument/],
    ['a{5,2}', /invalid repeat count/],
    ['a{1001}', /above 1000/],
    ['(abc', /missing closing \)/],
    ['abc)', /unexpected \)/],
    ['[abc', /missing closing \]/],
    ['\\Z', /invalid escape sequence \\Z/],
    ['[[:nope:]]', /invalid character class/],
    ['x'.repeat(1025), /too large/],
  ];
  for (const [re, want] of cases) assert.match(checkRe2(re) ?? 'accepted', want, re);
});

test('hosts and addresses', () => {
  assert.equal(checkWildcardDomain('reviews'), undefined);
  assert.equal(checkWildcardDomain('reviews.default.svc.cluster.local'), undefined);
  assert.equal(checkWildcardDomain('*.example.com'), undefined);
  assert.equal(checkWildcardDomain('*'), undefined);
  assert.match(checkWildcardDomain('foo.*.com')!, /wildcard/);
  assert.match(checkWildcardDomain('bad_host')!, /not a valid domain name/);
  assert.match(checkWildcardDomain('')!, /empty/);
  assert.equal(checkIpOrCidr('10.0.0.0/8'), undefined);
  assert.equal(checkIpOrCidr('2001:db8::/32'), undefined);
  assert.match(checkIpOrCidr('10.0.0.0/33')!, /not a valid CIDR/);
  assert.match(checkIpOrCidr('10.0.0')!, /not a valid IP/);
});
