// The CNI plugin as one self-contained executable for real nodes. The container runtime runs the plugin on the
// host, where neither Node nor this package exists (istio-cni ships a static Go binary for the same reason), so the
// node image carries a Node single-executable application: the plugin bundled into one CommonJS script (esbuild),
// turned into a SEA blob by `node --experimental-sea-config`, injected into a copy of the node binary (postject).
// The installer copies that file into the node's CNI bin dir (AMBIT_CNI_PLUGIN_EXECUTABLE); without it, in the
// cluster-in-a-box whose nodes share this machine's filesystem, a wrapper script is enough (install.ts).
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** Node's SEA fuse (documented in Node's single-executable-applications guide). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** The SEA's main script (compiled to dist/src/cni/; the script lives in packages/ztunnel/bin/). */
const SEA_ENTRY = fileURLToPath(new URL('../../../bin/ambit-cni-sea.cjs', import.meta.url));

export interface BuiltExecutable {
  path: string;
  bytes: number;
  /** Size of the bundled plugin script inside it. */
  scriptBytes: number;
}

/** Builds the self-contained plugin executable at `outFile` (atomically: written next to it, then renamed). */
export async function buildCniExecutable(outFile: string, nodeBinary: string = process.execPath): Promise<BuiltExecutable> {
  // Dev-time tools: loaded here only, never by the agent or the plugin at run time.
  const esbuild = await import('esbuild');
  const { inject } = await import('postject');
  const work = await mkdtemp(join(tmpdir(), 'ambit-cni-sea-'));
  try {
    const bundled = await esbuild.build({
      entryPoints: [SEA_ENTRY],
      bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false, logLevel: 'silent', legalComments: 'none',
    });
    const script = join(work, 'ambit-cni.cjs');
    await writeFile(script, bundled.outputFiles[0]!.contents);
    const blob = join(work, 'ambit-cni.blob');
    await writeFile(join(work, 'sea-config.json'), JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true }));
    await promisify(execFile)(nodeBinary, ['--experimental-sea-config', join(work, 'sea-config.json')], { cwd: work });
    const tmpOut = `${outFile}.tmp-${process.pid}`;
    await copyFile(nodeBinary, tmpOut);
    await chmod(tmpOut, 0o755);
    await inject(tmpOut, 'NODE_SEA_BLOB', await readFile(blob), { sentinelFuse: SEA_FUSE });
    await rename(tmpOut, outFile);
    return { path: outFile, bytes: (await stat(outFile)).size, scriptBytes: bundled.outputFiles[0]!.contents.length };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
