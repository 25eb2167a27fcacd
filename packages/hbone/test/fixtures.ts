// Shared fixtures for the loopback tests: a mesh CA, identities, an echo app and an HBONE server in front of it.
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { CertificateAuthority, type CertifiedKey } from '@ambit/pki';
import { HboneClient, HboneServer, splice, type Credentials, type HboneClientOptions, type HboneServerOptions } from '../src/index.js';

export const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';
export const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';

export function credentialsOf(c: CertifiedKey): Credentials {
  return { identity: c.identity, keyPem: c.keyPem, certChainPem: c.certChainPem, rootsPem: c.rootsPem };
}

/** A pino logger whose JSON lines are kept for assertions. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** Echo app: echoes bytes and answers a FIN with a FIN (half-close aware). */
export async function startEcho(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

export interface Mesh {
  ca: CertificateAuthority;
  server: HboneServer;
  serverPort: number;
  client: HboneClient;
  clientCreds: Credentials;
  serverCreds: Credentials;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** An HBONE server that forwards each CONNECT to the authority on loopback (like the destination agent). */
export async function startMesh(opts: { server?: Partial<HboneServerOptions>; client?: Partial<HboneClientOptions>; ca?: CertificateAuthority } = {}): Promise<Mesh> {
  const ca = opts.ca ?? await CertificateAuthority.create();
  const serverCreds = credentialsOf(await ca.issueWorkloadCertificate(SERVER_ID));
  const clientCreds = credentialsOf(await ca.issueWorkloadCertificate(CLIENT_ID));
  const { logger, lines } = captureLogger();
  const server = new HboneServer({
    credentials: serverCreds,
    trustDomain: 'cluster.local',
    logger,
    onConnect: (req) => {
      const app = net.connect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true });
      app.once('connect', () => {
        try {
          void splice(app, req.accept());
        } catch {
          app.destroy(); // the client went away meanwhile
        }
      });
      app.once('error', (err) => req.reject(503, `connect to app failed: ${err.message}`));
    },
    ...opts.server,
  });
  const addr = await server.listen(0);
  const client = new HboneClient({ getCredentials: () => clientCreds, logger, ...opts.client });
  return {
    ca, server, serverPort: addr.port, client, clientCreds, serverCreds, logs: lines,
    async close() { client.destroy(); await server.close({ timeoutMs: 100 }); },
  };
}

/** Collects a readable until it ends. */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Polls until `cond` holds or the deadline passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
