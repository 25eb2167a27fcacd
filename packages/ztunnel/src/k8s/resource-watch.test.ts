// startResourceWatch against a small HTTP server speaking the watch protocol, through client-node's real Watch.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, Watch, type KubernetesListObject, type V1Namespace } from '@kubernetes/client-node';
import { recordingLogger, waitFor } from '../inpod/test-helpers.js';
import { startResourceWatch } from './resource-watch.js';

interface WatchServer {
  watch: Watch;
  /** Open watch responses, newest last, with the query they were asked with. */
  streams: Array<{ res: http.ServerResponse; query: URLSearchParams }>;
  /** Status the next watch requests get instead of a stream (then 200 again). */
  failNext: number[];
}

async function watchServer(t: TestContext): Promise<WatchServer> {
  const state: WatchServer = { watch: undefined as unknown as Watch, streams: [], failNext: [] };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const fail = state.failNext.shift();
    if (fail) {
      res.writeHead(fail, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: fail, message: 'injected' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    state.streams.push({ res, query: url.searchParams });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of state.streams) s.res.destroy();
    await new Promise((r) => server.close(r));
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
  });
  state.watch = new Watch(kc);
  return state;
}

const ns = (name: string, rv: string): V1Namespace => ({ metadata: { name, resourceVersion: rv } });
const send = (res: http.ServerResponse, type: string, object: unknown): void => { res.write(JSON.stringify({ type, object }) + '\n'); };


test('syncs after a failed list, follows watch events, and re-lists after 410 Gone (deletions reported)', async (t) => {
  const srv = await watchServer(t);
  const lists: Array<KubernetesListObject<V1Namespace> | Error> = [
    new Error('connect ECONNREFUSED'),
    { items: [ns('a', '10'), ns('b', '11')], metadata: { resourceVersion: '11' } },
    { items: [ns('a', '10'), ns('c', '30')], metadata: { resourceVersion: '30' } },
  ];
  let listed = 0;
  const events: string[] = [];
  const { logger, lines } = recordingLogger();
  const w = startResourceWatch<V1Namespace>({
    kind: 'namespaces', path: '/api/v1/namespaces', watch: srv.watch, logger, backoff: { baseMs: 5, maxMs: 20 },
    list: async () => { const l = lists[listed++]!; if (l instanceof Error) throw l; return l; },
    onUpsert: (o) => events.push(`upsert ${o.metadata?.name}`),
    onDelete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  t.after(() => w.stop());
  await w.synced;
  assert.equal(listed, 2, 'the failed list was retried');
  assert.ok(lines.some((l) => l.level === 40 && /namespaces list\/watch failed; retrying/.test(l.msg) && l.err === 'connect ECONNREFUSED'));
  assert.deepEqual(w.list().map((o) => o.metadata?.name).sort(), ['a', 'b']);
  assert.equal(srv.streams[0]!.query.get('resourceVersion'), '11');

  send(srv.streams[0]!.res, 'ADDED', ns('d', '12'));
  await waitFor('d added', () => w.get('d') !== undefined);
  // The server forgot version 12: an ERROR 410 event, then the stream ends. ListWatch must list again.
  send(srv.streams[0]!.res, 'ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 12 (25)' });
  srv.streams[0]!.res.end();
  await waitFor('a second watch after the re-list', () => srv.streams.length === 2);
  assert.equal(listed, 3);
  assert.equal(srv.streams[1]!.query.get('resourceVersion'), '30');
  assert.deepEqual(w.list().map((o) => o.metadata?.name).sort(), ['a', 'c']);
  assert.deepEqual(events.slice(-3).sort(), ['delete b', 'delete d', 'upsert c']);
});

test('a watch answered with an error status is restarted with backoff from the last version', async (t) => {
  const srv = await watchServer(t);
  srv.failNext.push(500, 503);
  let listed = 0;
  const w = startResourceWatch<V1Namespace>({
    kind: 'namespaces', path: '/api/v1/namespaces', watch: srv.watch, logger: recordingLogger().logger, backoff: { baseMs: 5, maxMs: 20 },
    list: async () => { listed++; return { items: [ns('a', '5')], metadata: { resourceVersion: '5' } }; },
    onUpsert: () => undefined, onDelete: () => undefined,
  });
  t.after(() => w.stop());
  await w.synced;
  assert.equal(srv.streams.length, 1);
  assert.equal(listed, 1, 'the version was still good: no second list');
  assert.equal(srv.streams[0]!.query.get('resourceVersion'), '5');
  assert.equal(w.hasSynced(), true);
});
