// Process-wide safety net: every live topology is torn down when the process exits, however it exits short of
// SIGKILL (for that, scripts/cleanup-netns.sh). A failing or interrupted test must not leave namespaces or
// processes behind for the next run to trip over.
//
// - 'exit' covers a normal end, process.exit(), and uncaught exceptions / unhandled rejections (Node emits 'exit'
//   before dying of them), so no 'uncaughtException' handler is needed — adding one would change Node's default
//   of crashing, and under `node --test` uncaught errors are routed to the failing test while the file goes on.
// - SIGINT/SIGTERM/SIGHUP: Node's default is to die without emitting 'exit', so we clean up, then remove our
//   listener and re-raise the signal so the process still dies of it (exit status 128+n as the caller expects).
// Handlers run synchronously (nothing can be awaited in 'exit'), hence the *Sync teardown.

export interface SyncDestroyable {
  readonly prefix: string;
  destroySync(): void;
}

const live = new Set<SyncDestroyable>();
let installed = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function destroyAll(reason: string): void {
  for (const t of [...live]) {
    try {
      t.destroySync();
    } catch (err) {
      // stderr is synchronous for files and pipes on Linux, so this line is not lost at exit.
      process.stderr.write(`e2e: teardown of topology ${t.prefix} on ${reason} failed: ${(err as Error).message}\n`);
    }
    live.delete(t);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  destroyAll(signal);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

function onExit(): void {
  destroyAll('exit');
}

export function registerForCleanup(t: SyncDestroyable): void {
  live.add(t);
  if (!installed) {
    installed = true;
    process.on('exit', onExit);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
}

export function unregisterFromCleanup(t: SyncDestroyable): void {
  live.delete(t);
}
