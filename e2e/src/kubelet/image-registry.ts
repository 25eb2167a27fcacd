// Our kubelet has no container runtime: an "image" is a name mapped to a local program, with Docker's ENTRYPOINT/
// CMD split so a pod's `command`/`args` override it the way Kubernetes defines:
//   no command, no args -> entrypoint + cmd;   args only -> entrypoint + args;   command (+ args) -> command + args.
// A name that is not in the registry is the equivalent of a pull failure (ErrImagePull), never a crash.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ImageEntry {
  /** Docker ENTRYPOINT: replaced by the container's `command`. */
  entrypoint: readonly string[];
  /** Docker CMD: replaced by the container's `args`. */
  cmd?: readonly string[];
  /** Files that must exist for the image to be "present" (e.g. a compiled script); missing -> ErrImagePull. */
  requires?: readonly string[];
  /** Extra environment the image sets (Docker ENV); the container's env wins. */
  env?: Readonly<Record<string, string>>;
}

export type ImageResolution =
  | { ok: true; image: string; argv: string[]; env: Record<string, string> }
  | { ok: false; image: string; reason: 'ErrImagePull' | 'InvalidImageName' | 'RunContainerError'; message: string };

export interface ImageRegistry {
  /** The entry for an image reference (any tag/digest/docker.io spelling of a registered name). */
  lookup(image: string): ImageEntry | undefined;
  /** The argv and image env for a container, or why it cannot start. */
  resolve(container: { image?: string; command?: string[]; args?: string[] }): ImageResolution;
  /** Adds or replaces an entry (tests register their own images). */
  register(image: string, entry: ImageEntry): void;
  names(): string[];
}

const IMAGE_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/**
 * Canonical name of an image reference: tag and digest dropped, Docker Hub spellings folded
 * (`docker.io/library/busybox:1.36` -> `busybox`, `docker.io/curlimages/curl` -> `curlimages/curl`).
 */
export function normalizeImage(image: string): string {
  let name = image.trim();
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) name = name.slice(0, colon);
  for (const hub of ['docker.io/library/', 'index.docker.io/library/', 'docker.io/', 'index.docker.io/']) {
    if (name.startsWith(hub)) {
      name = name.slice(hub.length);
      break;
    }
  }
  if (name.startsWith('library/')) name = name.slice('library/'.length);
  return name;
}

export function isValidImageReference(image: string): boolean {
  return image.length > 0 && image.length <= 512 && IMAGE_RE.test(image);
}

/** Path of a compiled app in this package's dist/src/apps. */
export function e2eAppPath(name: string): string {
  return fileURLToPath(new URL(`../apps/${name}.js`, import.meta.url));
}

/** Path of a file relative to the repository root (this file is e2e/dist/src/kubelet/image-registry.js). */
export function repoPath(rel: string): string {
  return fileURLToPath(new URL(`../../../../${rel}`, import.meta.url));
}

/**
 * The images every cluster-in-a-box knows:
 * - `ambit/echo`: the TCP echo server (apps/echo-server.ts), port 8080 unless args say otherwise;
 * - `ambit/echo-client`: one echo exchange (apps/echo-client.ts), pass `--host`/`--port` as args;
 * - `ambit/http-echo`: a small HTTP server answering with who it is (apps/http-echo.ts), port 8080;
 * - `ambit/client`: a curl-like HTTP client (apps/http-get.ts);
 * - `ambit/bookinfo`: the bookinfo-like sample (apps/bookinfo.ts), `--role productpage|details|reviews|ratings`;
 * - `curlimages/curl`: the host's curl (requires /usr/bin/curl);
 * - `registry.k8s.io/pause`, `busybox`: sleep forever / the host's shell tools;
 * - `ambit/ztunnel`: the Ambit node agent (packages/ztunnel/dist/src/main.js);
 * - `ambit/controller`: the Ambit controller (packages/controller/dist/src/main.js);
 * - `ambit/waypoint`: the Ambit waypoint proxy (packages/waypoint/dist/src/main.js).
 */
export function defaultImages(): Record<string, ImageEntry> {
  const node = process.execPath;
  const app = (name: string, cmd: string[] = []): ImageEntry => ({ entrypoint: [node, e2eAppPath(name)], cmd, requires: [e2eAppPath(name)] });
  const ztunnel = repoPath('packages/ztunnel/dist/src/main.js');
  const controller = repoPath('packages/controller/dist/src/main.js');
  const waypoint = repoPath('packages/waypoint/dist/src/main.js');
  return {
    'ambit/echo': app('echo-server', ['--port', '8080']),
    'ambit/echo-client': app('echo-client'),
    'ambit/http-echo': app('http-echo', ['--port', '8080']),
    'ambit/client': app('http-get'),
    'ambit/bookinfo': app('bookinfo'),
    'curlimages/curl': { entrypoint: ['curl'], requires: ['/usr/bin/curl'] },
    'registry.k8s.io/pause': { entrypoint: ['sleep', 'infinity'] },
    'k8s.gcr.io/pause': { entrypoint: ['sleep', 'infinity'] },
    busybox: { entrypoint: [], cmd: ['sh'] },
    'ambit/ztunnel': { entrypoint: [node, ztunnel], requires: [ztunnel] },
    'ambit/controller': { entrypoint: [node, controller], requires: [controller] },
    'ambit/waypoint': { entrypoint: [node, waypoint], requires: [waypoint] },
  };
}

/** A registry with the default images plus `extra` (which may override them). */
export function createImageRegistry(extra: Record<string, ImageEntry> = {}, options: { defaults?: boolean } = {}): ImageRegistry {
  const entries = new Map<string, ImageEntry>();
  const register = (image: string, entry: ImageEntry) => entries.set(normalizeImage(image), entry);
  if (options.defaults !== false) for (const [k, v] of Object.entries(defaultImages())) register(k, v);
  for (const [k, v] of Object.entries(extra)) register(k, v);
  return {
    lookup: (image) => entries.get(normalizeImage(image)),
    register,
    names: () => [...entries.keys()].sort(),
    resolve(container) {
      const image = container.image ?? '';
      if (!isValidImageReference(image)) {
        return { ok: false, image, reason: 'InvalidImageName', message: `Failed to apply default image tag "${image}": couldn't parse image name` };
      }
      const entry = entries.get(normalizeImage(image));
      if (!entry) {
        return {
          ok: false,
          image,
          reason: 'ErrImagePull',
          message: `Failed to pull image "${image}": the cluster-in-a-box image registry has no image ${normalizeImage(image)} (known: ${[...entries.keys()].sort().join(', ')})`,
        };
      }
      const missing = (entry.requires ?? []).filter((p) => !existsSync(p));
      if (missing.length > 0) {
        return { ok: false, image, reason: 'ErrImagePull', message: `Failed to pull image "${image}": ${missing.join(', ')} missing (built? run npm run build)` };
      }
      const argv = commandLine(entry, container.command, container.args);
      if (argv.length === 0) {
        return { ok: false, image, reason: 'RunContainerError', message: `image ${image} has no entrypoint and the container sets no command` };
      }
      return { ok: true, image, argv, env: { ...(entry.env ?? {}) } };
    },
  };
}

/** Kubernetes' rule for combining an image's ENTRYPOINT/CMD with a container's command/args. */
export function commandLine(entry: ImageEntry, command: readonly string[] | undefined, args: readonly string[] | undefined): string[] {
  if (command && command.length > 0) return [...command, ...(args ?? [])];
  if (args && args.length > 0) return [...entry.entrypoint, ...args];
  return [...entry.entrypoint, ...(entry.cmd ?? [])];
}
