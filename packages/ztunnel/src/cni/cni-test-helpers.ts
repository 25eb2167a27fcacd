// Shared by the tests that run a CNI plugin executable (the wrapper-run script and the self-contained build) as a
// container runtime would: environment + netconf on stdin, against a real enrollment server on a unix socket.
import { spawn } from 'node:child_process';
import { createFakeCapturer, startEnrollmentAgent, type FakeCapturer } from '../inpod/test-helpers.js';

export interface Run { code: number | null; stdout: string; stderr: string; json: any }

/** Execs `bin` itself (shebang or ELF + executable bit) with exactly `env`, netconf on stdin. */
export function runPluginFile(bin: string, env: Record<string, string>, stdin: string, cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      let json: unknown;
      try { json = stdout ? JSON.parse(stdout) : undefined; } catch { json = undefined; }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(stdin);
  });
}

type T = { after(fn: () => unknown): void };

/** The agent side of a plugin run: a real enrollment server in a fresh temp dir. */
export function startAgent(t: T, capturer: FakeCapturer = createFakeCapturer()) {
  return startEnrollmentAgent(t, { capturer });
}

export const PREV_1_0 = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'eth0', mac: '0a:58:0a:00:01:05', sandbox: '/var/run/netns/cni-1' }],
  ips: [{ address: '10.0.1.5/24', gateway: '10.0.1.1', interface: 0 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.0.1.1' }],
  dns: {},
};

export function netconf(socketPath: string, extra: object = {}) {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'ambit-cni', agentSocket: socketPath, prevResult: PREV_1_0, ...extra });
}

export function cniEnv(command: string, netns: string, pod = { ns: 'default', name: 'sleep-1', uid: 'uid-sleep-1' }): Record<string, string> {
  return {
    CNI_COMMAND: command, CNI_CONTAINERID: `sandbox-${pod.uid}`, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.ns};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=sandbox-${pod.uid};K8S_POD_UID=${pod.uid}`,
  };
}

