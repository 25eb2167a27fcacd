import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { KubeObject } from '@ambit/api';
import { compileRequestAuthentication, createJwtAuthenticator, type JwtRequest } from './jwt.js';
import { PolicyConfigError } from './diagnostics.js';

const waypoint = { namespace: 'foo', name: 'waypoint' };
const T0 = Date.UTC(2030, 0, 1) ; // the injected clock, ms
let es: { privateKey: CryptoKey; jwk: JWK };
let rs: { privateKey: CryptoKey; jwk: JWK };
let rotated: { privateKey: CryptoKey; jwk: JWK };
let server: Server;
let baseUrl: string;
let served: JWK[] = [];
let fetches = 0;

before(async () => {
  const mk = async (alg: string, kid: string) => {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    return { privateKey: privateKey as CryptoKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
  };
  es = await mk('ES256', 'es-1');
  rs = await mk('RS256', 'rs-1');
  rotated = await mk('ES256', 'es-2');
  served = [es.jwk, rs.jwk];
  server = createServer((req, res) => {
    fetches++;
    if (req.url === '/jwks') { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: served })); return; }
    if (req.url === '/.well-known/openid-configuration') { res.end(JSON.stringify({ jwks_uri: `${baseUrl}/jwks` })); return; }
    res.statusCode = 500; res.end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const ISS = 'testing@secure.istio.io';
async function sign(key: { privateKey: CryptoKey; jwk: JWK }, claims: Record<string, unknown>, opts: { exp?: number; nbf?: number; iss?: string } = {}) {
  const t = new SignJWT(claims).setProtectedHeader({ alg: key.jwk.alg!, kid: key.jwk.kid! }).setIssuer(opts.iss ?? ISS).setSubject('user-1')
    .setIssuedAt(Math.floor(T0 / 1000)).setExpirationTime(opts.exp ?? Math.floor(T0 / 1000) + 3600);
  if (opts.nbf) t.setNotBefore(opts.nbf);
  return t.sign(key.privateKey);
}
function ra(name: string, jwtRules: unknown[], targetRefs: unknown[] = [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }]): KubeObject {
  return { kind: 'RequestAuthentication', metadata: { name, namespace: 'foo' }, spec: { targetRefs, jwtRules } };
}
const bearer = (token: string, path = '/headers'): JwtRequest => ({ headers: { authorization: `Bearer ${token}`, host: 'httpbin.foo' }, path });

test('ES256 token verified against a jwksUri on loopback: principal iss/sub, claims, audiences, presenter; token header removed', async () => {
  let clock = T0;
  const a = createJwtAuthenticator([ra('jwt', [{ issuer: ISS, jwksUri: `${baseUrl}/jwks`, audiences: ['bookstore'] }])], { waypoint, now: () => clock });
  const token = await sign(es, { aud: ['bookstore', 'x'], azp: 'web', groups: ['admin'] });
  const r = await a.authenticate(bearer(token));
  assert.equal(r.ok, true);
  assert.ok(r.ok && !r.anonymous);
  assert.deepEqual(r.identity.principal, `${ISS}/user-1`);
  assert.deepEqual(r.identity.audiences, ['bookstore', 'x']);
  assert.equal(r.identity.presenter, 'web');
  assert.deepEqual(r.identity.claims.groups, ['admin']);
  assert.equal(r.policy, 'foo/jwt');
  assert.deepEqual(r.removeHeaders, ['authorization']);
  // Expired an hour later (plus Envoy's 60 s skew).
  clock = T0 + 3600_000 + 59_000;
  assert.equal((await a.authenticate(bearer(token))).ok, true, 'within the clock skew');
  clock = T0 + 3600_000 + 61_000;
  const expired = await a.authenticate(bearer(token));
  assert.deepEqual(expired.ok === false && [expired.status, expired.reason, expired.body], [401, 'Jwt is expired', 'Jwt verification fails']);
  assert.deepEqual(expired.ok === false && expired.headers, { 'www-authenticate': 'Bearer realm="http://httpbin.foo/headers", error="invalid_token"' });
});

test('RS256 with inline jwks; no token is anonymous; wrong audience, wrong issuer, bad signature and garbage get 401', async () => {
  const a = createJwtAuthenticator([ra('jwt', [{ issuer: ISS, jwks: JSON.stringify({ keys: [rs.jwk] }), audiences: ['bookstore'] }])], { waypoint, now: () => T0 });
  assert.deepEqual(await a.authenticate({ headers: {}, path: '/' }), { ok: true, anonymous: true });
  assert.equal((await a.authenticate(bearer(await sign(rs, { aud: 'bookstore' })))).ok, true);
  const reason = async (req: JwtRequest) => { const r = await a.authenticate(req); return r.ok ? 'ok' : r.reason; };
  assert.equal(await reason(bearer(await sign(rs, { aud: 'other' }))), 'Audiences in Jwt are not allowed');
  assert.equal(await reason(bearer(await sign(rs, { aud: 'bookstore' }, { iss: 'evil' }))), 'Jwt issuer is not configured');
  assert.equal(await reason(bearer(await sign(es, { aud: 'bookstore' }))), "Jwks doesn't have key to match kid or alg from Jwt");
  const good = await sign(rs, { aud: 'bookstore' });
  const [h, p] = good.split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ iss: ISS, sub: 'admin', aud: 'bookstore', exp: Math.floor(T0 / 1000) + 60 })).toString('base64url')}.${good.split('.')[2]}`;
  assert.equal(await reason(bearer(forged)), 'Jwt verification fails');
  void p;
  assert.equal(await reason(bearer('not-a-jwt')), 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections');
  assert.equal(await reason(bearer(await sign(rs, { aud: 'bookstore' }, { nbf: Math.floor(T0 / 1000) + 600 }))), 'Jwt not yet valid');
});

test('no audiences configured: any aud accepted; access_token query parameter is a default location', async () => {
  const a = createJwtAuthenticator([ra('jwt', [{ issuer: ISS, jwks: JSON.stringify({ keys: [es.jwk] }) }])], { waypoint, now: () => T0 });
  const token = await sign(es, { aud: 'whatever' });
  const r = await a.authenticate({ headers: {}, path: `/x?access_token=${token}&a=1` });
  assert.ok(r.ok && !r.anonymous);
  assert.deepEqual(r.removeHeaders, []);
});

test('fromHeaders with prefix, fromParams, fromCookies; outputPayloadToHeader, outputClaimToHeaders, forwardOriginalToken', async () => {
  const a = createJwtAuthenticator([ra('jwt', [{
    issuer: ISS, jwks: JSON.stringify({ keys: [es.jwk] }),
    fromHeaders: [{ name: 'x-jwt-assertion', prefix: 'Token ' }], fromParams: ['my_token'], fromCookies: ['session'],
    outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [{ header: 'x-group', claim: 'group' }, { header: 'x-tier', claim: 'plan.tier' }],
    forwardOriginalToken: true,
  }])], { waypoint, now: () => T0 });
  const token = await sign(es, { group: 'admins', plan: { tier: 'gold' } });
  const r = await a.authenticate({ headers: { 'x-jwt-assertion': `Token ${token}` }, path: '/' });
  assert.ok(r.ok && !r.anonymous);
  assert.equal(r.setHeaders['x-group'], 'admins');
  assert.equal(r.setHeaders['x-tier'], 'gold');
  assert.deepEqual(JSON.parse(Buffer.from(r.setHeaders['x-jwt-payload']!, 'base64url').toString()).group, 'admins');
  assert.deepEqual(r.removeHeaders, [], 'forwardOriginalToken keeps the header');
  assert.ok((await a.authenticate({ headers: { cookie: `a=b; session=${token}` }, path: '/' })).ok);
  assert.ok((await a.authenticate({ headers: {}, path: `/?my_token=${token}` })).ok);
  assert.deepEqual(await a.authenticate({ headers: { authorization: `Bearer ${token}` }, path: '/' }), { ok: true, anonymous: true },
    'the default Authorization location is replaced by fromHeaders');
  assert.deepEqual(await a.authenticate({ headers: { 'x-jwt-assertion': token }, path: '/' }), { ok: true, anonymous: true }, 'without the prefix nothing is extracted');
});

test('JWKS is cached, refreshed after the cache period and re-fetched for an unknown kid after the cooldown', async () => {
  let clock = T0;
  served = [es.jwk];
  fetches = 0;
  const a = createJwtAuthenticator([ra('jwt', [{ issuer: ISS, jwksUri: `${baseUrl}/jwks` }])], { waypoint, now: () => clock, jwksCacheMs: 60_000, jwksRefetchCooldownMs: 10_000 });
  const t1 = await sign(es, {});
  assert.ok((await a.authenticate(bearer(t1))).ok);
  assert.ok((await a.authenticate(bearer(t1))).ok);
  assert.equal(fetches, 1, 'second request served from the cache');
  served = [es.jwk, rotated.jwk];
  const t2 = await sign(rotated, {});
  const early = await a.authenticate(bearer(t2));
  assert.equal(early.ok, false, 'within the cooldown the new kid is not fetched');
  assert.equal(fetches, 1);
  clock += 10_000;
  assert.ok((await a.authenticate(bearer(t2))).ok, 'unknown kid after the cooldown triggers a re-fetch');
  assert.equal(fetches, 2);
  clock += 60_000;
  assert.ok((await a.authenticate(bearer(t1))).ok);
  assert.equal(fetches, 3, 'refreshed after the cache period');
  served = [es.jwk, rs.jwk];
});

test('OpenID discovery when neither jwks nor jwksUri is set; an unreachable JWKS gives 401', async () => {
  const a = createJwtAuthenticator([ra('jwt', [{ issuer: baseUrl }])], { waypoint, now: () => T0 });
  assert.ok((await a.authenticate(bearer(await sign(es, {}, { iss: baseUrl })))).ok);
  const b = createJwtAuthenticator([ra('jwt', [{ issuer: ISS, jwksUri: `${baseUrl}/missing` }])], { waypoint, now: () => T0 });
  const r = await b.authenticate(bearer(await sign(es, {})));
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /^Jwks remote fetch is failed \(GET .*\/missing answered 500\)$/);
});

test('targetRefs select the policy: Service targets apply only to that service; selector policies never apply', async () => {
  const jwks = JSON.stringify({ keys: [es.jwk] });
  const a = createJwtAuthenticator([
    ra('svc', [{ issuer: ISS, jwks }], [{ kind: 'Service', group: '', name: 'httpbin' }]),
    { kind: 'RequestAuthentication', metadata: { name: 'sel', namespace: 'foo' }, spec: { selector: { matchLabels: { app: 'x' } }, jwtRules: [{ issuer: 'other', jwks }] } },
  ], { waypoint, now: () => T0 });
  const bad = bearer('a.b.c');
  assert.deepEqual(await a.authenticate(bad), { ok: true, anonymous: true }, 'no policy applies to the waypoint itself');
  const r = await a.authenticate({ ...bad, destinationService: { kind: 'Service', namespace: 'foo', name: 'httpbin' } });
  assert.equal(r.ok, false);
});

test('invalid RequestAuthentication names the field; lastGood keeps the previous version', async () => {
  const bad = (rules: unknown[], re: RegExp) => assert.throws(() => compileRequestAuthentication(ra('bad', rules)), (e: unknown) => e instanceof PolicyConfigError && re.test(e.message));
  bad([{ jwksUri: 'http://x/jwks' }], /RequestAuthentication foo\/bad: spec\.jwtRules\[0\]\.issuer: is required/);
  bad([{ issuer: 'a', jwksUri: 'ftp://x' }], /spec\.jwtRules\[0\]\.jwksUri: must be an http\(s\) URL/);
  bad([{ issuer: 'a', jwks: '{nope' }], /spec\.jwtRules\[0\]\.jwks: must be a JSON Web Key Set/);
  bad([{ issuer: 'a', fromHeaders: [{ prefix: 'x' }] }], /fromHeaders\[0\]\.name: is required/);
  bad([{ issuer: 'a' }, { issuer: 'a' }], /jwtRules\[1\]\.issuer: duplicate issuer/);
  const good = compileRequestAuthentication(ra('p', [{ issuer: ISS, jwks: JSON.stringify({ keys: [es.jwk] }) }]));
  const a = createJwtAuthenticator([ra('p', [{ issuer: '' }])], { waypoint, now: () => T0, lastGood: new Map([['foo/p', good]]) });
  assert.deepEqual(a.rejected, ['foo/p']);
  assert.equal((await a.authenticate(bearer('x.y.z'))).ok, false, 'the last good rule still verifies tokens');
});
