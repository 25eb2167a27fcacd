// Self time per function from a V8 .cpuprofile (what `node --cpu-prof` writes): each sample is charged to the node
// it landed in, weighted by its time delta; nodes of the same function (same name, file, line) are merged.
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime { functionName: string; where: string; selfMs: number; selfPct: number }

export function summarizeProfile(p: CpuProfile, top: number): SelfTime[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  const merged = new Map<string, SelfTime>();
  let total = 0;
  for (const [id, us] of selfUs) {
    total += us;
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/packages\//, 'packages/');
    const where = file ? `${file}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName}|${where}`;
    const e = merged.get(key) ?? { functionName: f.functionName || '(anonymous)', where, selfMs: 0, selfPct: 0 };
    e.selfMs += us / 1000;
    merged.set(key, e);
  }
  const rows = [...merged.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const r of rows) r.selfPct = total ? (r.selfMs * 1000 * 100) / total : 0;
  return rows;
}
