// A small reader of docker/Dockerfile for the checks that need no Docker daemon: stages, their COPY sources,
// labels, USER and ENTRYPOINT. Handles what the file uses: line continuations, comments, `FROM x AS name`,
// `COPY [--from=stage] src... dst`, exec-form ENTRYPOINT, `LABEL k="v" ...`.

export interface CopyInstruction {
  /** Stage name of --from, or undefined for the build context. */
  from: string | undefined;
  sources: string[];
  destination: string;
}

export interface Stage {
  name: string;
  base: string;
  copies: CopyInstruction[];
  labels: Record<string, string>;
  user: string | undefined;
  entrypoint: string[] | undefined;
  workdir: string | undefined;
}

export interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
  stage(name: string): Stage;
}

/** Logical lines: comments dropped, `\` continuations joined. */
function logicalLines(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    current += line;
    if (current.trim()) out.push(current.trim());
    current = '';
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

function parseLabels(rest: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of rest.matchAll(/([\w.-]+)=("((?:[^"\\]|\\.)*)"|\S+)/g)) labels[m[1]!] = m[3] ?? m[2]!;
  return labels;
}

export function parseDockerfile(text: string): Dockerfile {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logicalLines(text)) {
    const [instr, ...restParts] = line.split(/\s+/);
    const rest = restParts.join(' ');
    const stage = stages[stages.length - 1];
    switch (instr!.toUpperCase()) {
      case 'ARG': {
        const m = /^(\w+)(?:=(.*))?$/.exec(rest);
        if (m && stages.length === 0) args[m[1]!] = m[2] ?? '';
        break;
      }
      case 'FROM': {
        const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
        if (!m) throw new Error(`Dockerfile: cannot read FROM ${rest}`);
        const base = m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args[k] ?? '');
        stages.push({ name: m[2] ?? String(stages.length), base, copies: [], labels: {}, user: undefined, entrypoint: undefined, workdir: undefined });
        break;
      }
      case 'COPY': {
        if (!stage) throw new Error('Dockerfile: COPY before FROM');
        const words = rest.split(/\s+/);
        let from: string | undefined;
        while (words[0]?.startsWith('--')) {
          const flag = words.shift()!;
          const m = /^--from=(.+)$/.exec(flag);
          if (m) from = m[1];
        }
        const destination = words.pop();
        if (!destination || words.length === 0) throw new Error(`Dockerfile: COPY needs a source and a destination: ${line}`);
        stage.copies.push({ from, sources: words, destination });
        break;
      }
      case 'LABEL':
        if (stage) Object.assign(stage.labels, parseLabels(rest));
        break;
      case 'USER':
        if (stage) stage.user = rest;
        break;
      case 'WORKDIR':
        if (stage) stage.workdir = rest;
        break;
      case 'ENTRYPOINT':
        if (stage) {
          const parsed = JSON.parse(rest) as unknown;
          if (!Array.isArray(parsed)) throw new Error(`Dockerfile: ENTRYPOINT must be exec form (a JSON array): ${rest}`);
          stage.entrypoint = parsed.map(String);
        }
        break;
      default:
        break;
    }
  }
  return {
    args,
    stages,
    stage(name) {
      const s = stages.find((x) => x.name === name);
      if (!s) throw new Error(`Dockerfile has no stage ${name}; stages: ${stages.map((x) => x.name).join(', ')}`);
      return s;
    },
  };
}
