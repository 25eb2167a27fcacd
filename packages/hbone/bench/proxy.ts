// The forwarding processes, one role per process so each side's CPU can be measured on its own:
//   tcp-client    plain TCP in -> plain TCP to tcp-server (reference: what forwarding through two Node processes
//   tcp-server    costs without any TLS or HTTP/2)
//   tls-client    plain TCP in -> TLS 1.3 (mutual, same certificates and suites as HBONE) out, one TLS connection
//                 per TCP connection (a stunnel-like originator built on plain node:tls)
//   tls-server    TLS 1.3 in -> plain TCP to the app
//   hbone-client  plain TCP in -> HboneClient.connect + splice, like the node agent's outbound: pooled HTTP/2
//                 connections, one CONNECT stream per TCP connection
//   hbone-server  HboneServer -> plain TCP to the app + splice, like the node agent's inbound
// Each process is started by run.ts with its role as argv[2], then configured with one `start` call.
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { parseUriSans } from '@ambit/pki';
import { HboneClient, HboneServer, formatAuthority, secureContextOptions, splice, type Credentials } from '../src/index.js';
import { serveParent } from './ipc.js';

export type ProxyRole = 'tcp-client' | 'tcp-server' | 'tls-client' | 'tls-server' | 'hbone-client' | 'hbone-server';

export interface ProxyStart {
  credentials: Credentials;
  /** Identity the client side requires of the server side. */
  serverIdentity: string;
  trustDomain: string;
  /** Where the client side sends to (the server side's port). */
  upstreamPort?: number;
  /** The app's port. */
  appPort: number;
}

const role = process.argv[2] as ProxyRole;
let opened = 0;
let failed = 0;

/** Copies both ways between two sockets; either side closing or failing takes the other one down. */
function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const down = (err?: Error) => { if (err) failed++; a.destroy(); b.destroy(); };
  a.on('error', down);
  b.on('error', down);
  a.once('close', () => down());
  b.once('close', () => down());
}

async function listenPlain(onSocket: (s: Socket) => void): Promise<number> {
  const server = net.createServer(onSocket);
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return (server.address() as AddressInfo).port;
}

async function start(p: ProxyStart): Promise<{ port: number }> {
  const tlsOptions = secureContextOptions(p.credentials);
  switch (role) {
    case 'tcp-client':
    case 'tcp-server':
      return { port: await listenPlain((inbound) => {
        opened++;
        inbound.setNoDelay(true);
        const out = net.connect({ host: '127.0.0.1', port: role === 'tcp-client' ? p.upstreamPort! : p.appPort });
        out.setNoDelay(true);
        pipeBoth(inbound, out);
      }) };
    case 'tls-client': {
      const secureContext = tls.createSecureContext(tlsOptions); // once, not per connection
      return { port: await listenPlain((inbound) => {
        opened++;
        inbound.setNoDelay(true);
        const out = tls.connect({
          host: '127.0.0.1', port: p.upstreamPort!, secureContext, servername: '', rejectUnauthorized: true,
          checkServerIdentity: (_h, cert) => parseUriSans(cert.subjectaltname ?? '').includes(p.serverIdentity)
            ? undefined : new Error(`server presented ${cert.subjectaltname}`),
        });
        out.setNoDelay(true);
        pipeBoth(inbound, out);
      }) };
    }
    case 'tls-server': {
      const server = tls.createServer({ ...tlsOptions, requestCert: true, rejectUnauthorized: true }, (inbound: TLSSocket) => {
        opened++;
        inbound.setNoDelay(true);
        // The same admission check HboneServer makes once per connection: a SPIFFE id of our trust domain.
        const sans = parseUriSans(inbound.getPeerCertificate().subjectaltname ?? '');
        if (!sans[0]?.startsWith(`spiffe://${p.trustDomain}/`)) { failed++; inbound.destroy(); return; }
        const app = net.connect({ host: '127.0.0.1', port: p.appPort });
        app.setNoDelay(true);
        pipeBoth(inbound, app);
      });
      server.on('tlsClientError', () => { failed++; });
      await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
      return { port: (server.address() as AddressInfo).port };
    }
    case 'hbone-client': {
      const client = new HboneClient({ getCredentials: () => p.credentials });
      const authority = formatAuthority('127.0.0.1', p.appPort);
      return { port: await listenPlain((inbound) => {
        opened++;
        inbound.setNoDelay(true);
        inbound.on('error', () => {});
        client.connect({
          sourceIdentity: p.credentials.identity, destinationIdentities: [p.serverIdentity],
          destination: { host: '127.0.0.1', port: p.upstreamPort! }, authority,
        }).then(
          (tunnel) => { void splice(inbound, tunnel.stream).then((r) => { if (r.error) failed++; }); },
          () => { failed++; inbound.resetAndDestroy(); },
        );
      }) };
    }
    case 'hbone-server': {
      const server = new HboneServer({
        credentials: p.credentials,
        trustDomain: p.trustDomain,
        onConnect: (req) => {
          opened++;
          const app = net.connect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true });
          app.setNoDelay(true);
          app.once('connect', () => { void splice(app, req.accept()).then((r) => { if (r.error) failed++; }); });
          app.once('error', (err) => { failed++; req.reject(503, `connect to app failed: ${err.message}`); });
        },
      });
      return { port: (await server.listen(0)).port };
    }
    default:
      throw new Error(`unknown proxy role ${String(role)}`);
  }
}

serveParent({
  start: (params) => start(params as ProxyStart),
  counters: () => ({ opened, failed }),
});
