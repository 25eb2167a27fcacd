import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorize, matchesPolicy, type ConnectionFacts } from './authorize.js';
import type { Authorization, AuthorizationMatch, AuthorizationRule } from '../state/types.js';

const sleep: ConnectionFacts = {
  sourceIdentity: 'spiffe://cluster.local/ns/default/sa/sleep',
  sourceIp: '10.0.1.10',
  destinationIp: '10.0.2.20',
  destinationPort: 8080,
};
const plaintext: ConnectionFacts = { sourceIp: '10.0.1.10', destinationIp: '10.0.2.20', destinationPort: 8080 };

function pol(name: string, action: 'Allow' | 'Deny', rules: AuthorizationRule[], extra: Partial<Authorization> = {}): Authorization {
  return { name, namespace: 'echo', scope: 'Namespace', action, rules, dryRun: false, ...extra };
}
/** One rule with one clause with one match. */
const one = (m: AuthorizationMatch): AuthorizationRule[] => [[[m]]];

test('no policy means allow', () => {
  assert.deepEqual(authorize(sleep, []), { allow: true, reason: 'allowed: no policy applies' });
});

test('no allow policy means allow even when deny policies do not match', () => {
  const d = authorize(sleep, [pol('d', 'Deny', one({ destinationPorts: [9999] }))]);
  assert.equal(d.allow, true);
  assert.equal(d.reason, 'allowed: no ALLOW policy applies (1 DENY not matched)');
});

test('deny beats allow', () => {
  const d = authorize(sleep, [
    pol('allow-all-ns', 'Allow', one({ namespaces: [{ exact: 'default' }] })),
    pol('deny-sleep', 'Deny', one({ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }] })),
  ]);
  assert.deepEqual(d, { allow: false, reason: 'denied by DENY policy "echo/deny-sleep"', policy: 'echo/deny-sleep' });
});

test('allow policies exist but none matched: deny, naming how many applied', () => {
  const d = authorize(sleep, [
    pol('a', 'Allow', one({ namespaces: [{ exact: 'other' }] })),
    pol('b', 'Allow', one({ destinationPorts: [1] })),
  ]);
  assert.deepEqual(d, { allow: false, reason: 'denied: no ALLOW policy matched (2 applicable)' });
});

test('allow names the matching policy', () => {
  const d = authorize(sleep, [pol('a', 'Allow', one({ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }] }))]);
  assert.deepEqual(d, { allow: true, reason: 'allowed by ALLOW policy "echo/a"', policy: 'echo/a' });
});

test('allow policy with no rules allows nothing', () => {
  assert.equal(authorize(sleep, [pol('empty', 'Allow', [])]).allow, false);
});

test('deny policy with no rules denies nothing', () => {
  assert.equal(authorize(sleep, [pol('empty', 'Deny', [])]).allow, true);
});

test('a rule with no clauses, or an empty clause, matches everything', () => {
  assert.equal(matchesPolicy(pol('r', 'Allow', [[]]), sleep), true);
  assert.equal(matchesPolicy(pol('c', 'Allow', [[[]]]), sleep), true);
});

test('a match with no field set is skipped, so a clause of only empty matches does not match', () => {
  assert.equal(matchesPolicy(pol('m', 'Allow', [[[{}]]]), sleep), false);
  assert.equal(matchesPolicy(pol('m', 'Allow', [[[{}, { destinationPorts: [8080] }]]]), sleep), true);
});

test('rules are ORed', () => {
  const p = pol('or', 'Allow', [[[{ namespaces: [{ exact: 'x' }] }]], [[{ namespaces: [{ exact: 'default' }] }]]]);
  assert.equal(matchesPolicy(p, sleep), true);
});

test('clauses within a rule are ANDed', () => {
  const p = pol('and', 'Allow', [[[{ namespaces: [{ exact: 'default' }] }], [{ destinationPorts: [80] }]]]);
  assert.equal(matchesPolicy(p, sleep), false);
  assert.equal(matchesPolicy(p, { ...sleep, destinationPort: 80 }), true);
});

test('matches within a clause are ORed', () => {
  const p = pol('or-m', 'Allow', [[[{ namespaces: [{ exact: 'x' }] }, { destinationPorts: [8080] }]]]);
  assert.equal(matchesPolicy(p, sleep), true);
});

test('fields within a match are ANDed, values within a field ORed', () => {
  const p = pol('f', 'Allow', one({ namespaces: [{ exact: 'x' }, { exact: 'default' }], destinationPorts: [8080, 8443] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, destinationPort: 9000 }), false);
});

test('allow by principal exact', () => {
  const p = pol('p', 'Allow', one({ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://cluster.local/ns/default/sa/other' }), false);
});

test('allow by principal suffix wildcard', () => {
  // AuthorizationPolicy "*/sa/sleep" arrives as suffix "/sa/sleep".
  const p = pol('p', 'Allow', one({ principals: [{ suffix: '/sa/sleep' }] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://other.td/ns/x/sa/sleep' }), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://cluster.local/ns/x/sa/sleepy' }), false);
});

test('allow by principal prefix wildcard', () => {
  // "cluster.local/ns/default/*" arrives as prefix "cluster.local/ns/default/".
  const p = pol('p', 'Allow', one({ principals: [{ prefix: 'cluster.local/ns/default/' }] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://cluster.local/ns/defaultx/sa/a' }), false);
});

test('principals are compared without the spiffe scheme', () => {
  const p = pol('p', 'Allow', one({ principals: [{ prefix: 'spiffe://' }] }));
  assert.equal(matchesPolicy(p, sleep), false);
});

test('principal match accepts a parsed identity too', () => {
  const p = pol('p', 'Allow', one({ principals: [{ exact: 'cluster.local/ns/default/sa/sleep' }] }));
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' } }), true);
});

test('principal presence requires an identity; plaintext never matches a principal', () => {
  const p = pol('p', 'Allow', one({ principals: [{ presence: true }] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, plaintext), false);
});

test('not_principals presence (STRICT) matches plaintext only', () => {
  const p = pol('strict', 'Deny', one({ notPrincipals: [{ presence: true }] }));
  assert.equal(matchesPolicy(p, plaintext), true);
  assert.equal(matchesPolicy(p, sleep), false);
});

test('not_principals exact: plaintext and other identities match, the named one does not', () => {
  const p = pol('np', 'Allow', one({ notPrincipals: [{ exact: 'cluster.local/ns/default/sa/sleep' }] }));
  assert.equal(matchesPolicy(p, sleep), false);
  assert.equal(matchesPolicy(p, plaintext), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://cluster.local/ns/default/sa/other' }), true);
});

test('namespace match uses the peer identity namespace', () => {
  const p = pol('ns', 'Allow', one({ namespaces: [{ exact: 'default' }] }));
  assert.equal(matchesPolicy(p, sleep), true);
  // Same source IP (which belongs to a pod in "default"), but no identity: no namespace.
  assert.equal(matchesPolicy(p, plaintext), false);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://cluster.local/ns/prod/sa/sleep' }), false);
});

test('not_namespaces: plaintext has no namespace so it is not excluded', () => {
  const p = pol('nns', 'Allow', one({ notNamespaces: [{ exact: 'default' }] }));
  assert.equal(matchesPolicy(p, sleep), false);
  assert.equal(matchesPolicy(p, plaintext), true);
});

test('namespace prefix and suffix matches', () => {
  assert.equal(matchesPolicy(pol('a', 'Allow', one({ namespaces: [{ prefix: 'def' }] })), sleep), true);
  assert.equal(matchesPolicy(pol('b', 'Allow', one({ namespaces: [{ suffix: 'ault' }] })), sleep), true);
  assert.equal(matchesPolicy(pol('c', 'Allow', one({ namespaces: [{ suffix: 'prod' }] })), sleep), false);
});

test('service accounts match namespace and name from the identity, whatever the trust domain', () => {
  const p = pol('sa', 'Allow', one({ serviceAccounts: [{ namespace: 'default', serviceAccount: 'sleep' }] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIdentity: 'spiffe://td2/ns/default/sa/sleep' }), true);
  assert.equal(matchesPolicy(p, plaintext), false);
  const n = pol('nsa', 'Allow', one({ notServiceAccounts: [{ namespace: 'default', serviceAccount: 'sleep' }] }));
  assert.equal(matchesPolicy(n, sleep), false);
  assert.equal(matchesPolicy(n, plaintext), true);
});

test('source ip cidr v4', () => {
  const p = pol('ip', 'Allow', one({ sourceIps: ['10.0.1.0/24'] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: '10.0.2.1' }), false);
});

test('source ip cidr v6', () => {
  const p = pol('ip6', 'Allow', one({ sourceIps: ['fd00:1::/64'] }));
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: 'fd00:1::abcd' }), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: 'FD00:1:0:0:ffff::1' }), true);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: 'fd00:2::1' }), false);
  assert.equal(matchesPolicy(p, sleep), false, 'an ipv4 source never matches an ipv6 block');
});

test('ipv4-mapped source address matches an ipv4 block', () => {
  const p = pol('ip', 'Allow', one({ sourceIps: ['10.0.1.0/24'] }));
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: '::ffff:10.0.1.10' }), true);
});

test('cidr with host bits set matches on the network part', () => {
  const p = pol('ip', 'Allow', one({ sourceIps: ['10.0.1.77/24'] }));
  assert.equal(matchesPolicy(p, sleep), true);
});

test('bare ip in a cidr list is a single host', () => {
  const p = pol('ip', 'Allow', one({ destinationIps: ['10.0.2.20'] }));
  assert.equal(matchesPolicy(p, sleep), true);
  assert.equal(matchesPolicy(p, { ...sleep, destinationIp: '10.0.2.21' }), false);
});

test('not_source_ips excludes', () => {
  const p = pol('nip', 'Allow', one({ notSourceIps: ['10.0.1.0/24', 'fd00::/8'] }));
  assert.equal(matchesPolicy(p, sleep), false);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: '192.168.1.1' }), true);
});

test('destination ips and not destination ips', () => {
  assert.equal(matchesPolicy(pol('d', 'Allow', one({ destinationIps: ['10.0.2.0/27'] })), sleep), true);
  assert.equal(matchesPolicy(pol('d28', 'Allow', one({ destinationIps: ['10.0.2.0/28'] })), sleep), false);
  assert.equal(matchesPolicy(pol('nd', 'Allow', one({ notDestinationIps: ['10.0.2.0/27'] })), sleep), false);
});

test('not_destination_ports excludes', () => {
  const p = pol('ndp', 'Allow', one({ notDestinationPorts: [8080] }));
  assert.equal(matchesPolicy(p, sleep), false);
  assert.equal(matchesPolicy(p, { ...sleep, destinationPort: 9090 }), true);
});

test('positive and negative in one field both apply', () => {
  const p = pol('pn', 'Allow', one({ sourceIps: ['10.0.0.0/16'], notSourceIps: ['10.0.1.0/24'] }));
  assert.equal(matchesPolicy(p, sleep), false);
  assert.equal(matchesPolicy(p, { ...sleep, sourceIp: '10.0.5.5' }), true);
});

test('destination port is the target port, not the hbone port', () => {
  const p = pol('port', 'Allow', one({ destinationPorts: [8080] }));
  assert.equal(authorize({ ...sleep, destinationPort: 15008 }, [p]).allow, false);
  assert.equal(authorize(sleep, [p]).allow, true);
});

test('an identity that is not a spiffe ns/sa uri matches no principal or namespace', () => {
  const facts = { ...sleep, sourceIdentity: 'spiffe://cluster.local/workload/x' };
  assert.equal(matchesPolicy(pol('p', 'Allow', one({ principals: [{ presence: true }] })), facts), false);
  assert.equal(matchesPolicy(pol('n', 'Allow', one({ namespaces: [{ presence: true }] })), facts), false);
});

test('dry-run deny is reported but not enforced', () => {
  const d = authorize(plaintext, [pol('audit', 'Deny', one({ notPrincipals: [{ presence: true }] }), { dryRun: true })]);
  assert.equal(d.allow, true);
  assert.deepEqual(d.dryRun, { allow: false, reason: 'denied by DENY policy "echo/audit"', policy: 'echo/audit' });
});

test('dry-run allow does not turn on allow-list mode', () => {
  const d = authorize(sleep, [pol('would-allow-other', 'Allow', one({ namespaces: [{ exact: 'other' }] }), { dryRun: true })]);
  assert.equal(d.allow, true);
  assert.equal(d.dryRun?.allow, false);
  assert.equal(d.dryRun?.reason, 'denied: no ALLOW policy matched (1 applicable)');
});

test('no dry-run field when no dry-run policy applies', () => {
  assert.equal('dryRun' in authorize(sleep, [pol('a', 'Allow', [[]])]), false);
});
