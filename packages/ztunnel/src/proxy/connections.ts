/**
 * Live connections of the agent, so that shutdown can drain them and a policy change can re-check them.
 * Listeners add each connection when it is established and remove it when it closes.
 */
/** A connection as ztunnel's config dump lists it under `workloadState[uid].connections` (istioctl ztunnel-config connections). */
export interface ConnectionInfo {
  /** The client's address:port. */
  readonly src: string;
  /** Where the client meant to go (original destination, or the HBONE authority for inbound tunnels). */
  readonly originalDst: string;
  /** Where the agent actually connected (the HBONE next hop, or the app). */
  readonly actualDst: string;
  readonly protocol: 'HBONE' | 'TCP';
}

export interface LiveConnection {
  readonly podUid: string;
  readonly direction: 'outbound' | 'inbound';
  readonly info?: ConnectionInfo;
  /** Re-runs the connection's authorization; returns a reason when it is now denied (inbound only). */
  readonly recheck?: () => string | undefined;
  /** Closes the connection with a reset on both sides. */
  close(reason: string): void;
}

export class ConnectionTracker {
  private readonly live = new Set<LiveConnection>();
  private waiters: Array<() => void> = [];

  add(c: LiveConnection): () => void {
    this.live.add(c);
    return () => {
      this.live.delete(c);
      if (this.live.size === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  get size(): number {
    return this.live.size;
  }

  countFor(podUid: string): number {
    let n = 0;
    for (const c of this.live) if (c.podUid === podUid) n++;
    return n;
  }

  /** The pod's live connections by direction, for the config dump. */
  listFor(podUid: string): { inbound: ConnectionInfo[]; outbound: ConnectionInfo[] } {
    const out = { inbound: [] as ConnectionInfo[], outbound: [] as ConnectionInfo[] };
    for (const c of this.live) if (c.podUid === podUid && c.info) out[c.direction].push(c.info);
    return out;
  }

  /** Re-checks inbound connections (of one pod or all) and closes the ones now denied; returns how many. */
  recheck(podUid?: string): number {
    let closed = 0;
    for (const c of [...this.live]) {
      if (podUid !== undefined && c.podUid !== podUid) continue;
      const reason = c.recheck?.();
      if (reason !== undefined) { c.close(reason); closed++; }
    }
    return closed;
  }

  closeAll(reason: string, podUid?: string): void {
    for (const c of [...this.live]) if (podUid === undefined || c.podUid === podUid) c.close(reason);
  }

  /** Resolves when no connection is left, or after `timeoutMs` (undefined: no bound). Returns true if drained. */
  waitForDrain(timeoutMs?: number): Promise<boolean> {
    if (this.live.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => { clearTimeout(timer); resolve(true); };
      this.waiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== done); resolve(false); }, timeoutMs);
      }
    });
  }
}
