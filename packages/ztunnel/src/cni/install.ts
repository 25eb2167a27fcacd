// The node agent installs its own chained CNI plugin, as istio-cni's install-cni does: put the plugin executable in
// the node's CNI bin dir, append `{type: "ambit-cni", ...}` to the primary network configuration (chained mode),
// watch the conf dir and put the entry back when another writer (the primary CNI restarting, an operator) rewrites
// the file, and on an uninstall take both out again. The node's directories are hostPath volumes mounted into the
// agent (default /host/etc/cni/net.d and /host/opt/cni/bin), found through AMBIT_MOUNTS in the cluster-in-a-box.
//
// The plugin needs no kubeconfig (istio-cni's plugin reads pods from the API server; ours asks the agent over its
// unix socket, and the agent decides from its own caches), so none is written.
//
// Rolling upgrades (maxSurge 1): the new agent starts next to the old one and writes its entry on start (the newest
// settings win); each agent's repair only puts an entry back when none is there, so two versions never rewrite each
// other's entry. When the old agent exits, install-decision.ts decides whether the entry goes (it must not while the
// DaemonSet lives on or another agent serves the socket).
import { watch, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AMBIT_CNI_TYPE, CniInstallError, hasPlugin, insertPlugin, isConfigFile, primaryConfigFile, removePlugin, type AmbitPluginEntry, type ConfigEdit, type ExistingEntryPolicy } from './install-conflist.js';

/** The package's plugin entry script (compiled to dist/src/cni/, the script lives in packages/ztunnel/bin/). */
export const PLUGIN_SCRIPT = fileURLToPath(new URL('../../../bin/ambit-cni', import.meta.url));

export interface CniInstallerOptions {
  /** The node's CNI network configuration directory as the agent sees it. */
  confDir: string;
  /** The node's CNI plugin directory as the agent sees it. */
  binDir: string;
  /** The plugin's netconf entry (socket, log level, excluded namespaces). */
  entry: AmbitPluginEntry;
  logger: Logger;
  /** The script the installed executable runs; default the package's bin/ambit-cni. */
  pluginScript?: string;
  /** The node binary the installed executable runs the script with; default this process's. */
  nodeBinary?: string;
  /**
   * A self-contained plugin executable (executable.ts) to copy instead of writing the wrapper script: what a real
   * node needs, whose host has neither Node nor this package.
   */
  pluginExecutable?: string;
  /** Full check besides the directory watches (inotify can miss events on some filesystems); default 30 s. */
  resyncMs?: number;
  /** Delay that folds a burst of watch events into one check; default 100 ms. */
  debounceMs?: number;
}

export interface CniInstaller {
  /** Installs, then keeps the installation in place until stop(). Resolves after the first check. */
  start(): Promise<void>;
  /** Resolves once the plugin is in the bin dir and chained in the primary config (after start()). */
  readonly installed: Promise<void>;
  /** Stops watching. Leaves the installation as it is. */
  stop(): Promise<void>;
  /** Removes our entry from every config in the conf dir, and the executable. */
  uninstall(): Promise<{ configs: string[]; binary: boolean }>;
  /** One check now (also what the watches run): what was written, if anything. */
  reconcile(policy?: ExistingEntryPolicy): Promise<ReconcileResult>;
}

export type ReconcileResult =
  | { state: 'installed'; config: string; wroteConfig: boolean; wroteBinary: boolean }
  | { state: 'waiting'; reason: string };

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The executable put in the CNI bin dir. In the cluster-in-a-box the node's filesystem is this machine's, so a
 * two-line shell script that runs bin/ambit-cni with this node binary by absolute path is enough. A real image
 * cannot point into its own filesystem from the host: there the image ships a self-contained executable (the plugin
 * bundled into a Node single-executable application, executable.ts) and the installer copies that file instead;
 * the write (temp file + rename) and the removal stay the same.
 */
export function pluginWrapper(nodeBinary: string, script: string): string {
  return `#!/bin/sh\n# Ambit chained CNI plugin, installed by the Ambit node agent; removed when the agent is uninstalled.\nexec ${quote(nodeBinary)} ${quote(script)} "$@"\n`;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes through a hidden temp file and rename, so a runtime never reads a half-written config or plugin. */
async function writeAtomic(dir: string, name: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = join(dir, `.${name}.ambit-tmp-${process.pid}`);
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  try {
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function createCniInstaller(options: CniInstallerOptions): CniInstaller {
  const { confDir, binDir, entry } = options;
  const log = options.logger;
  const binary = pluginWrapper(options.nodeBinary ?? process.execPath, options.pluginScript ?? PLUGIN_SCRIPT);
  const binaryPath = join(binDir, AMBIT_CNI_TYPE);
  let markInstalled!: () => void;
  const installed = new Promise<void>((resolve) => { markInstalled = resolve; });
  let watchers: FSWatcher[] = [];
  let resync: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let stopped = false;
  // One check at a time; a request during a check runs once more after it.
  let running: Promise<unknown> = Promise.resolve();
  let lastWaiting = '';

  // The self-contained executable is ~100 MB: its digest is taken once, the installed file's only when its size,
  // mtime or inode changed since the last check (the watches and the resync check often).
  let sourceDigest: { size: number; sha256: string } | undefined;
  let installedSeen: { key: string; sha256: string } | undefined;
  const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

  async function executableInPlace(source: string): Promise<boolean> {
    let want = sourceDigest;
    if (!want) {
      const data = await readFile(source);
      want = sourceDigest = { size: data.length, sha256: sha256(data) };
    }
    const st = await stat(binaryPath).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err; });
    if (!st || st.size !== want.size) return false;
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if (installedSeen?.key !== key) installedSeen = { key, sha256: sha256(await readFile(binaryPath)) };
    return installedSeen.sha256 === want.sha256;
  }

  async function ensureBinary(): Promise<boolean> {
    const source = options.pluginExecutable;
    if (source ? await executableInPlace(source) : (await readIfExists(binaryPath)) === binary) return false;
    await mkdir(binDir, { recursive: true });
    await writeAtomic(binDir, AMBIT_CNI_TYPE, source ? await readFile(source) : binary, 0o755);
    installedSeen = undefined;
    log.info({ path: binaryPath, ...(source ? { from: source } : {}) }, `installed CNI plugin executable ${binaryPath}`);
    return true;
  }

  async function apply(edit: ConfigEdit): Promise<void> {
    await writeAtomic(confDir, edit.write, edit.text, 0o644);
    if (edit.remove && edit.remove !== edit.write) await rm(join(confDir, edit.remove), { force: true });
  }

  async function reconcileOnce(policy: ExistingEntryPolicy): Promise<ReconcileResult> {
    const wroteBinary = await ensureBinary();
    const names = await readdir(confDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    const primary = primaryConfigFile(names);
    if (!primary) return { state: 'waiting', reason: `no CNI network configuration in ${confDir} yet; waiting for the primary CNI plugin to write one` };
    const text = await readIfExists(join(confDir, primary));
    if (text === undefined) return { state: 'waiting', reason: `${primary} vanished while being read` };
    const edit = insertPlugin(primary, text, entry, policy);
    if (edit) {
      await apply(edit);
      log.info({ config: join(confDir, edit.write), converted: edit.remove ?? undefined }, edit.remove
        ? `converted ${edit.remove} to ${edit.write} and chained ${AMBIT_CNI_TYPE} into it`
        : hasPlugin(text) ? `updated the ${AMBIT_CNI_TYPE} entry in ${edit.write}` : `chained ${AMBIT_CNI_TYPE} into ${edit.write}`);
    }
    return { state: 'installed', config: edit?.write ?? primary, wroteConfig: edit !== undefined, wroteBinary };
  }

  function reconcile(policy: ExistingEntryPolicy = 'keep'): Promise<ReconcileResult> {
    const next = running.then(() => reconcileOnce(policy));
    running = next.catch(() => undefined);
    return next;
  }

  /** A watch-triggered or periodic check: errors are logged, never thrown (the next event tries again). */
  function check(policy: ExistingEntryPolicy): Promise<void> {
    return reconcile(policy).then((r) => {
      if (r.state === 'installed') {
        lastWaiting = '';
        markInstalled();
      } else if (r.reason !== lastWaiting) {
        lastWaiting = r.reason;
        log.warn({ confDir }, r.reason);
      }
    }, (err: unknown) => {
      const message = err instanceof CniInstallError ? err.message : `CNI plugin install in ${confDir} failed: ${(err as Error).message}`;
      if (message !== lastWaiting) log.error({ confDir, code: (err as { code?: string }).code }, message);
      lastWaiting = message;
    });
  }

  const schedule = () => {
    if (stopped) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => { void check('keep'); }, options.debounceMs ?? 100);
    debounce.unref();
  };

  return {
    installed,
    reconcile,
    async start() {
      await mkdir(confDir, { recursive: true });
      await mkdir(binDir, { recursive: true });
      // Watch first, so a rewrite between the first check and the watch is not missed.
      for (const dir of [confDir, binDir]) {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || isConfigFile(name) || name === AMBIT_CNI_TYPE) schedule();
        });
        w.on('error', (err) => log.warn({ dir, err: err.message }, 'CNI directory watch failed; relying on the periodic check'));
        watchers.push(w);
      }
      resync = setInterval(() => { void check('keep'); }, options.resyncMs ?? 30_000);
      resync.unref();
      // On start our settings replace an existing entry's (a previous version's, or this agent's before a restart).
      await check('replace');
    },
    async stop() {
      stopped = true;
      clearTimeout(debounce);
      clearInterval(resync);
      for (const w of watchers) w.close();
      watchers = [];
      await running;
    },
    async uninstall() {
      const configs: string[] = [];
      const names = await readdir(confDir).catch(() => [] as string[]);
      for (const name of names.filter(isConfigFile).sort()) {
        const text = await readIfExists(join(confDir, name));
        const edit = text === undefined ? undefined : removePlugin(name, text);
        if (!edit) continue;
        await apply(edit);
        configs.push(name);
      }
      let removedBinary = false;
      if (await stat(binaryPath).then(() => true, () => false)) {
        await rm(binaryPath, { force: true });
        removedBinary = true;
      }
      log.info({ configs, binary: removedBinary ? binaryPath : undefined }, `uninstalled the ${AMBIT_CNI_TYPE} CNI plugin`);
      return { configs, binary: removedBinary };
    },
  };
}
