// On a failed demo step, the warnings and errors the mesh's processes logged (pino JSON lines, level >= warn), newest
// last: the logs are removed with the demo unless --keep, and a CI run shows only the test's output.
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const TAIL_BYTES = 512 * 1024;

/** The last `max` warn/error lines of every `*.log` under `dirs` (depth <= 6), ordered by time, one line each. */
export function warningExcerpt(dirs: readonly string[], max = 25): string[] {
  const lines: { time: number; text: string }[] = [];
  for (const dir of dirs) {
    for (const file of logFiles(dir, 6)) {
      for (const raw of tail(file).split('\n')) {
        if (!raw.startsWith('{')) continue;
        let rec: Record<string, unknown>;
        try { rec = JSON.parse(raw) as Record<string, unknown>; } catch { continue; }
        if (typeof rec.level !== 'number' || rec.level < 40) continue;
        const { level, time, msg, pid: _pid, hostname: _h, ...rest } = rec;
        const extra = JSON.stringify(rest);
        lines.push({
          time: typeof time === 'number' ? time : 0,
          text: `${relative(dir, file)} ${level >= 50 ? 'ERROR' : 'WARN'} ${String(msg ?? '')}${extra === '{}' ? '' : ` ${extra.slice(0, 300)}`}`,
        });
      }
    }
  }
  return lines.sort((a, b) => a.time - b.time).slice(-max).map((l) => l.text);
}

function logFiles(dir: string, depth: number): string[] {
  if (depth < 0 || !existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...logFiles(p, depth - 1));
    else if (e.isFile() && e.name.endsWith('.log')) out.push(p);
  }
  return out;
}

function tail(file: string): string {
  const size = statSync(file).size;
  const n = Math.min(size, TAIL_BYTES);
  const buf = Buffer.alloc(n);
  const fd = openSync(file, 'r');
  try { readSync(fd, buf, 0, n, size - n); } finally { closeSync(fd); }
  return buf.toString('utf8');
}
