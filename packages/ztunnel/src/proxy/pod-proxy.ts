import net from 'node:net';
import type { Logger } from 'pino';
import { AGENT_SOCKET_MARK, PORTS } from '@ambit/api';
import { HboneClient, HboneServer } from '@ambit/hbone';
import { connectInNetns, listenServerInNetns } from '@ambit/netns';
import type { PodContext, ProxyInputs, ProxyPod } from './context.js';
import { handleInboundHbone, handleInboundPlaintext } from './inbound.js';
import { handleOutbound } from './outbound.js';

/**
 * The agent's proxy for one captured pod: listeners 15001, 15006 and 15008 created inside the pod's network
 * namespace (SO_REUSEPORT, so a second agent process can bind them too during an upgrade), a per-pod HBONE pool
 * whose sockets come from the pod's netns with the agent mark, and an HBONE server presenting the pod's identity.
 */
export class PodProxy {
  private readonly outbound: net.Server;
  private readonly plaintext: net.Server;
  private readonly hbone: HboneServer;
  private readonly ctx: PodContext;
  private accepting = false;

  private constructor(readonly pod: ProxyPod, inputs: ProxyInputs, credentials: Awaited<ReturnType<ProxyInputs['secrets']['credentialsFor']>>) {
    const logger: Logger = inputs.logger.child({ pod: `${pod.namespace}/${pod.name}` });
    const { config } = inputs;
    const client = new HboneClient({
      getCredentials: (identity) => inputs.secrets.credentialsFor(identity),
      createSocket: (dst) => connectInNetns({ netns: pod.netns, host: dst.host, port: dst.port, mark: AGENT_SOCKET_MARK }),
      maxStreamsPerConnection: config.pool.maxStreamsPerConnection,
      idleTimeoutMs: config.pool.unusedReleaseTimeoutMs,
      pingIntervalMs: config.http2.keepaliveIntervalMs,
      pingTimeoutMs: config.http2.keepaliveTimeoutMs,
      connectTimeoutMs: config.http2.connectTimeoutMs,
      logger,
    });
    this.ctx = { inputs, pod, client, logger };
    const onError = (what: string) => (err: unknown) => logger.error({ err: (err as Error).message, listener: what }, 'connection handler failed');
    this.outbound = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => { handleOutbound(this.ctx, s).catch(onError('outbound')); });
    this.plaintext = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => { handleInboundPlaintext(this.ctx, s).catch(onError('inbound-plaintext')); });
    this.hbone = new HboneServer({
      credentials,
      trustDomain: config.trustDomain,
      pingIntervalMs: config.http2.keepaliveIntervalMs,
      pingTimeoutMs: config.http2.keepaliveTimeoutMs,
      logger,
      onConnect: (req) => handleInboundHbone(this.ctx, req),
    });
    for (const s of [this.outbound, this.plaintext, this.hbone.server]) s.on('error', (err) => logger.error({ err: err.message }, 'listener error'));
  }

  /** Fetches the pod's certificate, then opens the three listeners in the pod's netns. */
  static async start(pod: ProxyPod, inputs: ProxyInputs, options: { certificateTimeoutMs: number }): Promise<PodProxy> {
    const creds = await withTimeout(inputs.secrets.credentialsFor(pod.identity), options.certificateTimeoutMs,
      `no certificate for ${pod.identity} within ${options.certificateTimeoutMs} ms (is the CA reachable?)`);
    const proxy = new PodProxy(pod, inputs, creds);
    try {
      await listenServerInNetns(proxy.outbound, { netns: pod.netns, port: PORTS.outbound, reusePort: true });
      await listenServerInNetns(proxy.plaintext, { netns: pod.netns, port: PORTS.inboundPlaintext, transparent: true, reusePort: true });
      await listenServerInNetns(proxy.hbone.server, { netns: pod.netns, port: PORTS.hbone, transparent: true, reusePort: true });
    } catch (err) {
      proxy.closeListeners();
      proxy.ctx.client.destroy();
      throw err;
    }
    proxy.accepting = true;
    return proxy;
  }

  /** New certificate for the pod's identity: new connections present it, established ones keep theirs. */
  rotate(credentials: Parameters<HboneServer['setCredentials']>[0]): void {
    this.hbone.setCredentials(credentials);
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  /**
   * Stops accepting (closes the listening sockets, so new connections go to another agent process bound with
   * SO_REUSEPORT), sends GOAWAY on inbound HBONE connections, and lets established connections run on.
   */
  stopAccepting(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.closeListeners();
    void this.hbone.close();
  }

  /** Closes everything now: listeners, pooled connections and (through the tracker) live connections. */
  destroy(reason: string): void {
    this.stopAccepting();
    this.ctx.inputs.connections.closeAll(reason, this.pod.uid);
    this.ctx.client.destroy();
  }

  /** Pooled outbound connections, for config dumps and tests. */
  poolStats(): ReturnType<HboneClient['stats']> {
    return this.ctx.client.stats();
  }

  private closeListeners(): void {
    for (const s of [this.outbound, this.plaintext]) if (s.listening) s.close();
    if (this.hbone.server.listening) this.hbone.server.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(message)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
