// What a person watching the demo sees: numbered steps, a spinner while something takes time (only on a
// terminal; plain lines otherwise, e.g. in CI logs), short explanations, checks that pass or fail, and tables.
import type { Writable } from 'node:stream';

export interface DemoConsole {
  step(title: string): void;
  say(text: string): void;
  /** "Look at:" hints. */
  look(text: string): void;
  /** Shows `what` while `work` runs (spinner on a TTY); prints its duration when done. */
  progress<T>(what: string, work: (update: (detail: string) => void) => Promise<T>): Promise<T>;
  /** A passed check (✔) or, by throwing, a failed one. */
  check(ok: boolean, text: string, detail?: string): void;
  table(headers: readonly string[], rows: readonly (readonly string[])[]): void;
  /** Checks that failed (the demo continues where it can, and exits non-zero). */
  readonly failures: string[];
}

export class StepFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepFailedError';
  }
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function createConsole(out: Writable & { isTTY?: boolean } = process.stdout, options: { color?: boolean } = {}): DemoConsole {
  const tty = out.isTTY === true;
  const color = options.color ?? (tty && !process.env.NO_COLOR);
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const write = (s: string): void => void out.write(s);
  let n = 0;
  const failures: string[] = [];
  return {
    failures,
    step(title) {
      n++;
      write(`\n${paint('1;36', `[${n}] ${title}`)}\n`);
    },
    say(text) {
      for (const line of text.split('\n')) write(`    ${line}\n`);
    },
    look(text) {
      write(`    ${paint('33', 'look at:')} ${text}\n`);
    },
    async progress(what, work) {
      const started = Date.now();
      let detail = '';
      let frame = 0;
      const timer = tty
        ? setInterval(() => write(`\r\x1b[2K    ${FRAMES[frame++ % FRAMES.length]} ${what}${detail ? ` — ${detail}` : ''}`), 100)
        : undefined;
      if (!tty) write(`    … ${what}\n`);
      const update = (d: string): void => {
        detail = d;
        if (!tty) write(`      ${d}\n`);
      };
      try {
        const result = await work(update);
        if (timer) clearInterval(timer);
        write(`${tty ? '\r\x1b[2K' : ''}    ${paint('32', '•')} ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
        return result;
      } catch (err) {
        if (timer) clearInterval(timer);
        write(`${tty ? '\r\x1b[2K' : ''}    ${paint('31', '✘')} ${what}: ${(err as Error).message}\n`);
        throw err;
      }
    },
    check(ok, text, detail) {
      if (ok) {
        write(`    ${paint('32', '✔')} ${text}${detail ? paint('2', `  (${detail})`) : ''}\n`);
        return;
      }
      write(`    ${paint('31', '✘')} ${text}${detail ? `  (${detail})` : ''}\n`);
      failures.push(`${text}${detail ? ` (${detail})` : ''}`);
      throw new StepFailedError(`check failed: ${text}${detail ? ` (${detail})` : ''}`);
    },
    table(headers, rows) {
      const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
      write(`    ${paint('1', line(headers))}\n`);
      for (const r of rows) write(`    ${line(r)}\n`);
    },
  };
}
