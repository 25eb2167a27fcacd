// `ambitctl analyze [file|dir ...]`: the controller's validation and cross-object analyzers (shared code in
// @ambit/api) over local files, the live cluster, or both (istioctl's default: the files as if applied on top of
// the cluster). Output `Error [IST0101] (VirtualService reviews.default) ...` or -o json|yaml; like istioctl, the
// exit code is 79 when a message at or above --failure-threshold (default Error) is found.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  WATCHED_KINDS, analyze, formatDiagnostic, isWatchedKind, type Diagnostic, type KubeObject,
} from '@ambit/api';
import { bool, parseFlags, str } from './args.js';
import { apiMessage, connect, retryTransient, statusOf } from './kube.js';
import { CliError, formatStructured, parseOutputFormat, type CliIo } from './io.js';

/** istioctl's exit code for "analysis found issues at or above the failure threshold". */
export const ANALYZE_FOUND_ISSUES_EXIT = 79;
const LEVELS = ['Info', 'Warning', 'Error'] as const;

export async function readManifests(paths: readonly string[]): Promise<KubeObject[]> {
  const files: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch {
      throw new CliError(`${p}: no such file or directory`);
    }
    if (st.isDirectory()) {
      for (const e of (await readdir(p)).sort()) if (/\.(ya?ml|json)$/.test(e)) files.push(join(p, e));
    } else files.push(p);
  }
  const out: KubeObject[] = [];
  for (const f of files) {
    const text = await readFile(f, 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        throw new CliError(`${f}:${e.linePos?.[0]?.line ?? '?'}: invalid YAML: ${e.message.split('\n')[0]}`);
      }
      const value = doc.toJS() as unknown;
      if (value === null || value === undefined) continue;
      const items = (value as { kind?: string; items?: unknown[] }).kind?.endsWith('List') ? (value as { items: unknown[] }).items : [value];
      for (const item of items) {
        const o = item as KubeObject;
        if (typeof o !== 'object' || !o || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
          throw new CliError(`${f}: a document without kind or metadata.name`);
        }
        out.push(o);
      }
    }
  }
  return out;
}

async function clusterObjects(io: CliIo, values: Record<string, unknown>, namespace: string | undefined): Promise<KubeObject[]> {
  const kube = connect({
    ...(str(values, 'kubeconfig') ? { kubeconfig: str(values, 'kubeconfig')! } : {}),
    ...(str(values, 'context') ? { context: str(values, 'context')! } : {}),
  }, io);
  const out: KubeObject[] = [];
  for (const [kind, info] of Object.entries(WATCHED_KINDS)) {
    const apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
    try {
      const list = await retryTransient(() => kube.objects.list(apiVersion, kind, info.namespaced ? namespace : undefined));
      for (const item of list.items) out.push({ ...(item as KubeObject), apiVersion, kind });
    } catch (err) {
      if (statusOf(err) === 404) continue; // CRD not installed: nothing of that kind to analyze
      throw new CliError(`cannot list ${info.plural}: ${apiMessage(err)}`);
    }
  }
  return out;
}

export async function analyzeCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    'all-namespaces': { type: 'boolean', short: 'A' },
    output: { type: 'string', short: 'o' },
    'use-kube': { type: 'string' },
    'failure-threshold': { type: 'string' },
    'output-threshold': { type: 'string' },
  });
  const format = parseOutputFormat(str(values, 'output'), ['table', 'json', 'yaml'], 'table');
  const level = (flag: string, fallback: (typeof LEVELS)[number]) => {
    const v = str(values, flag) ?? fallback;
    if (!(LEVELS as readonly string[]).includes(v)) throw new CliError(`--${flag} must be one of ${LEVELS.join(', ')}, not "${v}"`);
    return LEVELS.indexOf(v as (typeof LEVELS)[number]);
  };
  const failAt = level('failure-threshold', 'Error');
  const showAt = level('output-threshold', 'Info');
  const useKubeFlag = str(values, 'use-kube');
  if (useKubeFlag !== undefined && useKubeFlag !== 'true' && useKubeFlag !== 'false') throw new CliError('--use-kube takes true or false');
  const useKube = useKubeFlag !== 'false';
  if (!useKube && positionals.length === 0) throw new CliError('nothing to analyze: give files or directories, or drop --use-kube=false');
  const all = bool(values, 'all-namespaces');
  const namespace = all ? undefined : (str(values, 'namespace') ?? undefined);
  const local = await readManifests(positionals);
  const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const merged = new Map<string, KubeObject>();
  if (useKube) for (const o of await clusterObjects(io, values, namespace)) merged.set(key(o), o);
  // Local files behave as if applied on top of the cluster; objects without a namespace take -n or "default".
  for (const o of local) {
    const info = isWatchedKind(o.kind) ? WATCHED_KINDS[o.kind] : undefined;
    const withNs = info?.namespaced === false || o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: str(values, 'namespace') ?? 'default' } };
    merged.set(key(withNs), withNs);
  }
  // Files alone are not a whole cluster: checks that need kinds the files do not contain (pods for subsets) are
  // skipped rather than reported against every object.
  const diagnostics = analyze([...merged.values()], { assumeComplete: useKube })
    .filter((d) => LEVELS.indexOf(d.severity) >= showAt)
    .filter((d) => all || !namespace || !d.namespace || d.namespace === namespace);
  print(diagnostics, format, io, namespace, all);
  return diagnostics.some((d) => LEVELS.indexOf(d.severity) >= failAt) ? ANALYZE_FOUND_ISSUES_EXIT : 0;
}

function print(diagnostics: Diagnostic[], format: string, io: CliIo, namespace: string | undefined, all: boolean): void {
  if (format === 'json' || format === 'yaml') {
    io.out(formatStructured(diagnostics, format));
    return;
  }
  if (diagnostics.length === 0) {
    io.err(`✔ No validation issues found when analyzing ${all || !namespace ? 'all namespaces' : `namespace: ${namespace}`}.\n`);
    return;
  }
  for (const d of diagnostics) io.out(`${formatDiagnostic(d)}\n`);
}
