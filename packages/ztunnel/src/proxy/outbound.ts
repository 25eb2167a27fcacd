import type { Socket } from 'node:net';
import { AGENT_SOCKET_MARK, CONNECTION_SECURITY_POLICY, ILLEGAL_TARGET_PORTS, REPORTER, RESPONSE_FLAGS } from '@ambit/api';
import { formatBaggage, formatForwarded, HboneError, newTraceparent, splice, type HboneTunnel } from '@ambit/hbone';
import { connectInNetns, getSocketOriginalDst } from '@ambit/netns';
import type { ConnectionResult } from '../telemetry/connection-result.js';
import type { ResponseFlag } from '../telemetry/metrics.js';
import { addressText, noop, plainIp, type PodContext } from './context.js';
import { planOutbound } from './outbound-plan.js';
import type { ConnectionInfo } from './connections.js';

/**
 * One connection captured on 15001 in the pod: find the original destination, decide the next hop from state,
 * and carry the bytes over HBONE (or pass them through, marked, to an uncaptured destination).
 */
export async function handleOutbound(ctx: PodContext, downstream: Socket): Promise<void> {
  const { inputs, pod } = ctx;
  const { state, config, telemetry } = inputs;
  downstream.on('error', noop);
  const srcAddr = addressText(downstream.remoteAddress, downstream.remotePort);
  let orig: { address: string; port: number } | null;
  try {
    orig = getSocketOriginalDst(downstream);
  } catch (err) {
    orig = null;
    ctx.logger.debug({ err: (err as Error).message }, 'original destination lookup failed');
  }
  if (!orig) {
    telemetry.earlyDeny({ reporter: REPORTER.source, srcAddr, dstAddr: 'unknown', error: 'no original destination: the connection was not redirected to 15001' });
    downstream.destroy();
    return;
  }
  const dstAddr = addressText(orig.address, orig.port);
  const local = plainIp(downstream.localAddress);
  if (ILLEGAL_TARGET_PORTS.has(orig.port) && (orig.address.startsWith('127.') || orig.address === '::1' || orig.address === local || pod.ips.includes(orig.address))) {
    telemetry.earlyDeny({ reporter: REPORTER.source, srcAddr, dstAddr, error: `SelfCall: connection to the agent's own port ${orig.port}` });
    downstream.destroy();
    return;
  }
  const source = state.workloadByAddress(config.network, plainIp(downstream.remoteAddress)) ?? pod.ips.map((ip) => state.workloadByAddress(config.network, ip)).find(Boolean);
  const plan = planOutbound({ state, network: config.network, trustDomain: config.trustDomain, source, destination: orig });

  if (plan.kind === 'fail') {
    const result = telemetry.open({
      reporter: REPORTER.source, securityPolicy: CONNECTION_SECURITY_POLICY.unknown,
      source: { addr: srcAddr, ...(source ? { workload: source } : {}) },
      destination: { addr: dstAddr, ...(plan.service ? { service: plan.service } : {}) },
    });
    result.setResponseFlags(RESPONSE_FLAGS.connect);
    result.finish({ error: plan.reason });
    downstream.resetAndDestroy();
    return;
  }

  if (plan.kind === 'passthrough') {
    const result = telemetry.open({
      reporter: REPORTER.source, securityPolicy: CONNECTION_SECURITY_POLICY.unknown,
      source: { addr: srcAddr, ...(source ? { workload: source } : {}) },
      destination: { addr: addressText(plan.target.host, plan.target.port), ...(plan.service ? { service: plan.service } : {}), ...(plan.workload ? { workload: plan.workload } : {}) },
    });
    // Outbound is not spoofed (ztunnel): the agent's socket in the pod netns carries the pod's own address.
    const upstream = connectInNetns({ netns: pod.netns, host: plan.target.host, port: plan.target.port, mark: AGENT_SOCKET_MARK });
    upstream.setNoDelay(true);
    await runSplice(ctx, result, downstream, upstream, 'outbound', { src: srcAddr, originalDst: dstAddr, actualDst: addressText(plan.target.host, plan.target.port), protocol: 'TCP' });
    return;
  }

  const result = telemetry.open({
    reporter: REPORTER.source, securityPolicy: CONNECTION_SECURITY_POLICY.mutualTls,
    source: { addr: srcAddr, identity: pod.identity, ...(source ? { workload: source } : {}) },
    destination: {
      addr: addressText(plan.nextHop.host, plan.nextHop.port), hboneAddr: plan.authority,
      ...(plan.service ? { service: plan.service } : {}), ...(plan.workload ? { workload: plan.workload } : {}),
    },
  });
  let tunnel: HboneTunnel;
  try {
    tunnel = await ctx.client.connect({
      sourceIdentity: pod.identity,
      destinationIdentities: plan.identities,
      destination: plan.nextHop,
      authority: plan.authority,
      sourceAddress: pod.ips[0],
      headers: {
        baggage: formatBaggage({
          clusterName: source?.clusterId || config.clusterId, namespace: source?.namespace ?? pod.namespace,
          workloadType: source?.workloadType || 'pod', workloadName: source?.workloadName || source?.name || pod.name,
          serviceName: source?.canonicalName, serviceVersion: source?.canonicalRevision,
          region: source?.locality.region, zone: source?.locality.zone,
        }),
        forwarded: formatForwarded(plainIp(downstream.remoteAddress), downstream.remotePort ?? 0, plan.service?.hostname),
        traceparent: newTraceparent(),
      },
    });
  } catch (err) {
    result.setResponseFlags(responseFlagOf(err));
    result.finish({ error: err });
    downstream.resetAndDestroy();
    return;
  }
  const untrack = inputs.connections.add({ podUid: pod.uid, direction: 'outbound',
    info: { src: srcAddr, originalDst: dstAddr, actualDst: addressText(plan.nextHop.host, plan.nextHop.port), protocol: 'HBONE' }, close: (reason) => { result.finish({ error: reason }); tunnel.stream.close(0x8); downstream.resetAndDestroy(); } });
  try {
    const r = await splice(downstream, tunnel.stream);
    result.finish({ bytesSent: r.bytesFromTcp, bytesRecv: r.bytesFromTunnel, ...(r.error ? { error: r.error } : {}) });
  } finally {
    untrack();
  }
}

async function runSplice(ctx: PodContext, result: ConnectionResult, downstream: Socket, upstream: Socket, direction: 'outbound' | 'inbound',
  info: ConnectionInfo, recheck?: () => string | undefined): Promise<void> {
  const connected = await new Promise<Error | undefined>((resolve) => {
    upstream.once('connect', () => resolve(undefined));
    upstream.once('error', (err) => resolve(err));
  });
  if (connected) {
    result.setResponseFlags(RESPONSE_FLAGS.connect);
    result.finish({ error: connected });
    downstream.resetAndDestroy();
    return;
  }
  const untrack = ctx.inputs.connections.add({
    podUid: ctx.pod.uid, direction, info, ...(recheck ? { recheck } : {}),
    close: (reason) => { result.finish({ error: reason }); upstream.resetAndDestroy(); downstream.resetAndDestroy(); },
  });
  try {
    const r = await spliceSockets(downstream, upstream);
    result.finish({ bytesSent: r.sent, bytesRecv: r.recv, ...(r.error ? { error: r.error } : {}) });
  } finally {
    untrack();
  }
}

/** Plain TCP relay with half-close and reset propagation (passthrough and inbound plaintext). */
export function spliceSockets(a: Socket, b: Socket): Promise<{ sent: number; recv: number; error?: Error }> {
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  return new Promise((resolve) => {
    let error: Error | undefined;
    let open = 2;
    const onError = (other: Socket) => (err: Error) => { error ??= err; if (!other.destroyed) other.resetAndDestroy(); };
    a.on('error', onError(b));
    b.on('error', onError(a));
    const onClose = () => { if (--open === 0) resolve({ sent: a.bytesRead, recv: a.bytesWritten, ...(error ? { error } : {}) }); };
    a.once('close', onClose);
    b.once('close', onClose);
    a.pipe(b);
    b.pipe(a);
  });
}

export function responseFlagOf(err: unknown): ResponseFlag {
  if (err instanceof HboneError) {
    switch (err.code) {
      case 'AMB_ERR_HBONE_TLS': return RESPONSE_FLAGS.tlsFailure;
      case 'AMB_ERR_HBONE_IDENTITY': return RESPONSE_FLAGS.identityError;
      case 'AMB_ERR_HBONE_H2': return RESPONSE_FLAGS.h2HandshakeFailure;
      case 'AMB_ERR_HBONE_STATUS': return err.status === 401 ? RESPONSE_FLAGS.deny : RESPONSE_FLAGS.connect;
      default: return RESPONSE_FLAGS.connect;
    }
  }
  return RESPONSE_FLAGS.connect;
}

export { runSplice };
