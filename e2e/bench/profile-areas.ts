// What dominates a V8 CPU profile (`node --cpu-prof`): self time charged to the sampled frame, merged per function
// and per area of code (the waypoint's own modules, the libraries it uses, Node's internals by module, V8's
// pseudo-frames). The time the process waited in epoll is `(idle)`; shares are of the non-idle time.
export interface CpuProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }
export interface CpuProfile { nodes: CpuProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface ProfileRow { name: string; busyPct: number; ms: number }
export interface ProfileAreas { busyMs: number; idleMs: number; areas: ProfileRow[]; functions: ProfileRow[] }

/** The area of a frame: `packages/waypoint/proxy`, `node_modules/pino`, `node:internal/http2`, or a V8 pseudo-frame. */
export function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /\/packages\/([^/]+)\/(?:dist\/)?(?:src\/)?([^/]+)\//.exec(url);
  if (pkg) return `packages/${pkg[1]}/${pkg[2]}`;
  const mod = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (mod) return `node_modules/${mod[1]}`;
  const internal = /^node:internal\/([^/]+)/.exec(url);
  if (internal) return `node:internal/${internal[1]!.replace(/\.js$/, '')}`;
  return url.replace(/^file:\/\//, '').replace(/^.*\/packages\//, 'packages/');
}

export function summarizeAreas(profile: CpuProfile, top = 20): ProfileAreas {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i + 1] ?? 0;
    const frame = nodes.get(id)!;
    if (frame.functionName === '(idle)') { idleUs += us; return; }
    busyUs += us;
    const area = areaOf(frame.url, frame.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    const fn = `${frame.functionName || '(anonymous)'} ${area}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  });
  const rows = (m: Map<string, number>): ProfileRow[] => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, busyPct: busyUs ? (us * 100) / busyUs : 0 }));
  return { busyMs: busyUs / 1000, idleMs: idleUs / 1000, areas: rows(byArea), functions: rows(byFunction) };
}
