import type { Socket } from 'node:net';
import { constants as http2 } from 'node:http2';
import {
  AGENT_SOCKET_MARK, CONNECTION_SECURITY_POLICY, HBONE_STATUS, ILLEGAL_TARGET_PORTS, REPORTER, RESPONSE_FLAGS,
} from '@ambit/api';
import { parseForwarded, splice, type HboneRequest } from '@ambit/hbone';
import { connectInNetns } from '@ambit/netns';
import { authorize, type ConnectionFacts } from '../policy/authorize.js';
import { checkPeerAuthentication } from '../policy/peer-authentication.js';
import { canonicalizeIp } from '../state/ip.js';
import type { Service, Workload } from '../state/types.js';
import type { ConnectionResult } from '../telemetry/connection-result.js';
import { addressText, noop, plainIp, type PodContext } from './context.js';
import { runSplice } from './outbound.js';

/** Connects to the app inside the pod, from the client's address when spoofing is on (spec §1.6). */
function connectToApp(ctx: PodContext, host: string, port: number, sourceIp: string): Socket {
  const spoof = ctx.inputs.config.enableOrigSrc && sourceIp !== '' && !ctx.pod.ips.includes(sourceIp);
  const s = connectInNetns({
    netns: ctx.pod.netns, host, port, mark: AGENT_SOCKET_MARK,
    ...(spoof ? { transparent: true, localAddress: sourceIp } : {}),
  });
  s.setNoDelay(true);
  return s;
}

/** The service the client addressed, from `forwarded: host=`; trusted only if it is one of the workload's. */
function serviceFromForwarded(ctx: PodContext, w: Workload, forwarded: string | string[] | undefined): Service | undefined {
  const host = parseForwarded(Array.isArray(forwarded) ? forwarded[0] : forwarded).host;
  if (!host) return undefined;
  return ctx.inputs.state.servicesOf(w).find((s) => s.hostname === host);
}

function decide(ctx: PodContext, w: Workload, facts: ConnectionFacts): { allow: boolean; reason: string; policy?: string } {
  const policies = ctx.inputs.state.policiesFor(w);
  if (facts.sourceIdentity === undefined) {
    const pa = checkPeerAuthentication({ applicable: policies });
    if (!pa.allow) return { allow: false, reason: pa.reason };
  }
  const d = authorize(facts, policies);
  return { allow: d.allow, reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) };
}

/**
 * The re-check of a live inbound connection after a state change (spec §6.1 applies to established connections
 * too): the reason it is now denied, or undefined while it is still allowed.
 */
function recheckLater(ctx: PodContext, targetIp: string, facts: ConnectionFacts, result: ConnectionResult): () => string | undefined {
  const { state, config } = ctx.inputs;
  return () => {
    const w = state.workloadByAddress(config.network, targetIp);
    if (!w) return `workload ${targetIp} was removed`;
    const again = decide(ctx, w, { ...facts, destinationWorkload: w });
    if (again.allow) return undefined;
    result.deny({ reason: again.reason, ...(again.policy ? { policy: again.policy } : {}) });
    return again.reason;
  };
}

/** One CONNECT on the pod's 15008: check the target, authorize (spec §6.1), connect to the app, splice. */
export async function handleInboundHbone(ctx: PodContext, req: HboneRequest): Promise<void> {
  const { inputs, pod } = ctx;
  const { state, config, telemetry } = inputs;
  const srcAddr = addressText(req.peerAddress.address, req.peerAddress.port);
  const target = req.authority;
  const targetIp = target.isIp ? canonicalizeIp(target.host) : undefined;
  if (!targetIp || !pod.ips.includes(targetIp)) {
    const reason = `authority ${req.authorityText} is not an address of pod ${pod.namespace}/${pod.name} (${pod.ips.join(', ')})`;
    telemetry.earlyDeny({ reporter: REPORTER.destination, srcAddr, dstAddr: req.authorityText, error: reason });
    req.reject(HBONE_STATUS.badRequest, reason);
    return;
  }
  const workload = state.workloadByAddress(config.network, targetIp);
  if (!workload) {
    const reason = `no workload ${targetIp} in the agent's state for pod ${pod.namespace}/${pod.name}`;
    telemetry.earlyDeny({ reporter: REPORTER.destination, srcAddr, dstAddr: req.authorityText, error: reason });
    req.reject(HBONE_STATUS.unavailable, reason);
    return;
  }
  const sourceIp = plainIp(req.peerAddress.address);
  const sourceWorkload = state.workloadByAddress(config.network, sourceIp);
  const service = serviceFromForwarded(ctx, workload, req.headers.forwarded);
  const result = telemetry.open({
    reporter: REPORTER.destination, securityPolicy: CONNECTION_SECURITY_POLICY.mutualTls,
    source: { addr: srcAddr, identity: req.peerIdentity, ...(sourceWorkload ? { workload: sourceWorkload } : {}) },
    destination: { addr: addressText(targetIp, target.port), hboneAddr: req.authorityText, workload, ...(service ? { service } : {}) },
  });
  const facts: ConnectionFacts = { sourceIdentity: req.peerIdentity, sourceIp, destinationIp: targetIp, destinationPort: target.port, destinationWorkload: workload };
  const d = decide(ctx, workload, facts);
  if (!d.allow) {
    result.deny({ reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) });
    result.finish({ error: d.reason });
    req.reject(HBONE_STATUS.unauthorized, d.reason);
    return;
  }
  const app = connectToApp(ctx, targetIp, target.port, sourceIp);
  const connectError = await new Promise<Error | undefined>((resolve) => {
    app.once('connect', () => resolve(undefined));
    app.once('error', (err) => resolve(err));
  });
  if (connectError) {
    result.setResponseFlags(RESPONSE_FLAGS.connect);
    result.finish({ error: `connect to app ${addressText(targetIp, target.port)} failed: ${connectError.message}` });
    req.reject(HBONE_STATUS.unavailable, `connect to app failed: ${connectError.message}`);
    return;
  }
  let stream: ReturnType<HboneRequest['accept']>;
  try {
    stream = req.accept();
  } catch (err) {
    // The client went away while we connected to the app.
    app.destroy();
    result.finish({ error: err });
    return;
  }
  const untrack = inputs.connections.add({
    podUid: pod.uid, direction: 'inbound',
    info: { src: srcAddr, originalDst: req.authorityText, actualDst: addressText(targetIp, target.port), protocol: 'HBONE' },
    recheck: recheckLater(ctx, targetIp, facts, result),
    close: (reason) => {
      result.finish({ bytesSent: app.bytesRead, bytesRecv: app.bytesWritten, error: reason });
      if (!stream.destroyed) stream.close(http2.NGHTTP2_CONNECT_ERROR);
      app.resetAndDestroy();
    },
  });
  try {
    const r = await splice(app, stream);
    // Inbound: sent = toward the source (the app's reply), received = toward the app.
    result.finish({ bytesSent: r.bytesFromTcp, bytesRecv: r.bytesFromTunnel, ...(r.error ? { error: r.error } : {}) });
  } finally {
    untrack();
  }
}

/** A plaintext connection on the pod's 15006 (TPROXY): allowed under PERMISSIVE, refused under STRICT. */
export async function handleInboundPlaintext(ctx: PodContext, downstream: Socket): Promise<void> {
  const { inputs, pod } = ctx;
  const { state, config, telemetry } = inputs;
  downstream.on('error', noop);
  const srcAddr = addressText(downstream.remoteAddress, downstream.remotePort);
  // With TPROXY the accepted socket's local address is the original destination.
  const targetIp = canonicalizeIp(plainIp(downstream.localAddress)) ?? plainIp(downstream.localAddress);
  const targetPort = downstream.localPort ?? 0;
  const dstAddr = addressText(targetIp, targetPort);
  if (ILLEGAL_TARGET_PORTS.has(targetPort)) {
    telemetry.earlyDeny({ reporter: REPORTER.destination, srcAddr, dstAddr, error: `connection to the agent's own port ${targetPort}` });
    downstream.destroy();
    return;
  }
  const workload = state.workloadByAddress(config.network, targetIp);
  if (!workload || !pod.ips.includes(targetIp)) {
    telemetry.earlyDeny({ reporter: REPORTER.destination, srcAddr, dstAddr, error: `no workload ${targetIp} for pod ${pod.namespace}/${pod.name}` });
    downstream.resetAndDestroy();
    return;
  }
  const sourceIp = plainIp(downstream.remoteAddress);
  const sourceWorkload = state.workloadByAddress(config.network, sourceIp);
  const result: ConnectionResult = telemetry.open({
    reporter: REPORTER.destination, securityPolicy: CONNECTION_SECURITY_POLICY.unknown,
    source: { addr: srcAddr, ...(sourceWorkload ? { workload: sourceWorkload } : {}) },
    destination: { addr: dstAddr, workload },
  });
  const facts: ConnectionFacts = { sourceIp, destinationIp: targetIp, destinationPort: targetPort, destinationWorkload: workload };
  const d = decide(ctx, workload, facts);
  if (!d.allow) {
    result.deny({ reason: d.reason, ...(d.policy ? { policy: d.policy } : {}) });
    result.finish({ error: d.reason });
    downstream.resetAndDestroy();
    return;
  }
  const app = connectToApp(ctx, targetIp, targetPort, sourceIp);
  await runSplice(ctx, result, downstream, app, 'inbound', { src: srcAddr, originalDst: dstAddr, actualDst: dstAddr, protocol: 'TCP' }, recheckLater(ctx, targetIp, facts, result));
}
