import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { CONNECTION_SECURITY_POLICY, REPORTER, RESPONSE_FLAGS, UNKNOWN } from '@ambit/api';
import {
  deriveTrafficLabels, type ConnectionMetrics, type Reporter, type ResponseFlag, type SecurityPolicy, type ServiceFacts,
  type TrafficLabels, type WorkloadFacts,
} from './metrics.js';

/**
 * One record per proxied connection (ztunnel's `ConnectionResult`): it counts the open when made, and on
 * `finish` counts the close (and the failure), folds in the bytes and writes the single access-log line
 * (spec §7.2). Metrics and log are derived from the same fields, so they cannot disagree.
 */

export type Direction = 'outbound' | 'inbound';

export interface SourceFacts {
  /** `ip:port` of the client as this agent saw it. */
  readonly addr: string;
  readonly workload?: WorkloadFacts;
  /**
   * SPIFFE URI proven by mTLS: inbound, the peer certificate's; outbound HBONE, the one this agent presented
   * for the source. Leave unset for plaintext: it feeds `source_principal` and `src.identity`.
   */
  readonly identity?: string;
}

export interface DestinationFacts {
  /** The actual next hop, e.g. `10.0.2.7:15008` for HBONE. */
  readonly addr: string;
  /** The CONNECT authority (original destination after port translation), for HBONE. */
  readonly hboneAddr?: string;
  readonly service?: ServiceFacts;
  readonly workload?: WorkloadFacts;
  /** Verified destination identity; defaults to the destination workload's identity. */
  readonly identity?: string;
}

export interface ConnectionOpenFacts {
  /** `source` for outbound (the client's agent), `destination` for inbound; the log's `direction` follows. */
  readonly reporter: Reporter;
  readonly source: SourceFacts;
  readonly destination: DestinationFacts;
  readonly securityPolicy: SecurityPolicy;
}

/** The authorization decision that refused the connection (policy/authorize.ts `AuthorizationDecision`). */
export interface Denial {
  readonly reason: string;
  /** `ns/name` of the deciding policy, when one decided. */
  readonly policy?: string;
}

/**
 * Byte counts from this agent's side of the mesh hop, as the access log prints them:
 * - `bytesSent`: written toward the peer agent's side: outbound, to the destination (request bytes);
 *   inbound, back to the source (response bytes);
 * - `bytesRecv`: the other direction.
 * When given to `finish` they are totals for the connection, and replace what `addSent`/`addRecv` counted.
 */
export interface ConnectionOutcome {
  readonly bytesSent?: number;
  readonly bytesRecv?: number;
  /** Present when the connection failed: logged at error with `error`, counted in `_failed_total`. */
  readonly error?: unknown;
}

export interface ConnectionTelemetryOptions {
  readonly metrics: ConnectionMetrics;
  /** The access logger: `logLevels.logger('access')`, so `/logging?level=access=...` reaches it. */
  readonly logger: Logger;
  /** Milliseconds, monotonic; injected by tests. */
  readonly now?: () => number;
}

export interface EarlyDenyFacts {
  readonly reporter: Reporter;
  readonly srcAddr: string;
  readonly dstAddr: string;
  readonly error: unknown;
}

export interface ConnectionTelemetry {
  readonly metrics: ConnectionMetrics;
  /** Call when the connection is accepted and its facts are known: counts the open. */
  open(facts: ConnectionOpenFacts): ConnectionResult;
  /**
   * A connection refused before its facts were gathered (unknown local workload, bad original destination):
   * one `connection failed` line at warn with addresses, direction and error, as ztunnel's `log_early_deny`.
   * No metric: without workload facts every label would be `unknown`.
   */
  earlyDeny(facts: EarlyDenyFacts): void;
}

export function createConnectionTelemetry(options: ConnectionTelemetryOptions): ConnectionTelemetry {
  const now = options.now ?? (() => performance.now());
  const { metrics, logger } = options;
  return {
    metrics,
    open: (facts) => new ConnectionResult(facts, metrics, logger, now),
    earlyDeny: (f) => {
      logger.warn(
        { 'src.addr': f.srcAddr, 'dst.addr': f.dstAddr, direction: directionOf(f.reporter), error: errorText(f.error) },
        'connection failed',
      );
    },
  };
}

const directionOf = (r: Reporter): Direction => (r === REPORTER.source ? 'outbound' : 'inbound');

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

// The log reads the same label values the metrics carry, so the two cannot disagree; `unknown` is left out.
const known = (v: string): string | undefined => (v === UNKNOWN ? undefined : v);

export class ConnectionResult {
  readonly direction: Direction;
  private readonly labels: TrafficLabels;
  private responseFlags: ResponseFlag = RESPONSE_FLAGS.none;
  private denial: Denial | undefined;
  private sent = 0;
  private recv = 0;
  private flushedSent = 0;
  private flushedRecv = 0;
  private done = false;
  private readonly started: number;
  private readonly untrack: () => void;

  constructor(
    private readonly facts: ConnectionOpenFacts,
    private readonly metrics: ConnectionMetrics,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {
    this.started = now();
    this.direction = directionOf(facts.reporter);
    this.labels = deriveTrafficLabels({
      reporter: facts.reporter,
      sourceWorkload: facts.source.workload,
      sourceIdentity: facts.source.identity,
      destinationService: facts.destination.service,
      destinationWorkload: facts.destination.workload,
      destinationIdentity: facts.destination.identity,
      securityPolicy: facts.securityPolicy,
    });
    metrics.opened.inc(this.labels);
    metrics.socketsOpen.inc({ reporter: facts.reporter });
    this.untrack = metrics.track(this);
    if (logger.isLevelEnabled('debug')) logger.debug(this.logFields(), 'connection opened');
  }

  get finished(): boolean {
    return this.done;
  }

  /** Bytes counted so far, from this agent's side (see ConnectionOutcome). */
  get bytesSent(): number {
    return this.sent;
  }

  get bytesRecv(): number {
    return this.recv;
  }

  /** Why the connection ended badly (CONNECT, TLS_FAILURE, ...); applies to the closed/failed counts. */
  setResponseFlags(flag: ResponseFlag): void {
    this.responseFlags = flag;
  }

  /** Marks an authorization denial: response flag DENY, and `policy`/`reason` in the access log. */
  deny(denial: Denial): void {
    this.denial = denial;
    this.responseFlags = RESPONSE_FLAGS.deny;
  }

  addSent(n: number): void {
    if (!this.done) this.sent += n;
  }

  addRecv(n: number): void {
    if (!this.done) this.recv += n;
  }

  /**
   * Adds bytes counted since the last flush to the byte counters. The counters carry the labels of the open
   * (response_flags `-`), as ztunnel's do. Istio reports TCP bytes from the destination's point of view on both
   * reporters (istio#32399): `received` is what the server received (request bytes). On the destination
   * reporter that is what this agent received; on the source reporter it is what this agent sent, so the
   * source side is flipped here, and only here. The access log prints this agent's own view.
   */
  flushBytes(): void {
    const ds = this.sent - this.flushedSent;
    const dr = this.recv - this.flushedRecv;
    if (ds === 0 && dr === 0) return;
    this.flushedSent = this.sent;
    this.flushedRecv = this.recv;
    const flipped = this.facts.reporter === REPORTER.source;
    const toReceived = flipped ? ds : dr;
    const toSent = flipped ? dr : ds;
    if (toReceived > 0) this.metrics.receivedBytes.inc(this.labels, toReceived);
    if (toSent > 0) this.metrics.sentBytes.inc(this.labels, toSent);
  }

  /**
   * Records the end of the connection, once: later calls do nothing and return false. Counts the close (every
   * connection that was counted open is counted closed, as ztunnel does) and, on error or denial, the failure,
   * with the response flags set so far; then writes the access-log line.
   */
  finish(outcome: ConnectionOutcome = {}): boolean {
    if (this.done) return false;
    // Totals never go below what was already counted: a counter cannot be taken back.
    if (outcome.bytesSent !== undefined) this.sent = Math.max(this.sent, outcome.bytesSent);
    if (outcome.bytesRecv !== undefined) this.recv = Math.max(this.recv, outcome.bytesRecv);
    this.done = true;
    this.flushBytes();
    this.untrack();
    this.metrics.socketsOpen.dec({ reporter: this.facts.reporter });

    const failed = outcome.error !== undefined || this.denial !== undefined;
    const endLabels = { ...this.labels, response_flags: this.responseFlags };
    this.metrics.closed.inc(endLabels);
    if (failed) this.metrics.failed.inc(endLabels);

    const fields: Record<string, unknown> = {
      ...this.logFields(),
      bytes_sent: this.sent,
      bytes_recv: this.recv,
      duration: `${Math.max(0, Math.floor(this.now() - this.started))}ms`,
    };
    if (this.denial) {
      if (this.denial.policy !== undefined) fields.policy = this.denial.policy;
      fields.reason = this.denial.reason;
    }
    if (failed) {
      fields.error = outcome.error !== undefined ? errorText(outcome.error) : `connection denied: ${this.denial!.reason}`;
      this.logger.error(fields, 'connection complete');
    } else {
      this.logger.info(fields, 'connection complete');
    }
    return true;
  }

  /** ztunnel's access-log fields; unknown facts are left out rather than printed as `unknown`. */
  private logFields(): Record<string, unknown> {
    const { source: src, destination: dst } = this.facts;
    const l = this.labels;
    const mtls = this.facts.securityPolicy === CONNECTION_SECURITY_POLICY.mutualTls;
    const out: Record<string, unknown> = { 'src.addr': src.addr };
    const put = (k: string, v: string | undefined): void => {
      if (v) out[k] = v;
    };
    // The pod name says which replica; fall back to the canonical service, as ztunnel does.
    put('src.workload', src.workload?.name || src.workload?.canonicalName);
    put('src.namespace', known(l.source_workload_namespace));
    if (mtls) put('src.identity', known(l.source_principal));
    put('src.cluster', known(l.source_cluster));
    out['dst.addr'] = dst.addr;
    put('dst.hbone_addr', dst.hboneAddr);
    put('dst.service', known(l.destination_service));
    put('dst.workload', dst.workload?.name || dst.workload?.canonicalName);
    put('dst.namespace', known(l.destination_workload_namespace));
    if (mtls) put('dst.identity', known(l.destination_principal));
    put('dst.cluster', known(l.destination_cluster));
    out.direction = this.direction;
    return out;
  }
}
