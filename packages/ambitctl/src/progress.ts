// Progress while waiting: a spinner line rewritten in place on a terminal, one line every 10 s otherwise (CI logs).
import type { CliIo } from './io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Polls `check` every `intervalMs` until it returns true (-> true) or `timeoutMs` passes (-> false). */
export async function waitFor(io: CliIo, what: string, timeoutMs: number, check: () => Promise<boolean>, intervalMs = 500): Promise<boolean> {
  const start = Date.now();
  let frame = 0;
  let lastLine = 0;
  try {
    for (;;) {
      if (await check()) return true;
      const elapsed = Date.now() - start;
      if (elapsed >= timeoutMs) return false;
      if (io.interactive) {
        io.err(`\r${FRAMES[frame++ % FRAMES.length]} ${what} (${Math.floor(elapsed / 1000)}s)`);
      } else if (elapsed - lastLine >= 10_000 || lastLine === 0) {
        lastLine = Math.max(elapsed, 1);
        io.err(`${what} (${Math.floor(elapsed / 1000)}s)...\n`);
      }
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, timeoutMs - elapsed)));
    }
  } finally {
    if (io.interactive) io.err('\r\x1b[K');
  }
}
