// `npm run demo -- --kubernetes`: the demo's story on the cluster-in-a-box (cluster-mesh.ts), with Ambit installed by
// helm and the waypoint added by ambitctl. Cleans up (helm uninstall, cluster stop) at the end, on a failed step,
// and on Ctrl-C.
import { k8sBinaries } from '../cluster/binaries.js';
import type { DemoConsole } from './console.js';
import { ClusterDemoMesh } from './cluster-mesh.js';
import { runStory, type DemoOptions, type DemoResult } from './story.js';

export interface KubernetesDemoOptions extends DemoOptions {
  /**
   * Ctrl-C (SIGINT, SIGTERM, SIGHUP) once the cluster runs: uninstall the release and stop the cluster, then exit 130;
   * a second Ctrl-C tears down at once. For the command line; a test leaves signals alone.
   */
  handleSignals?: boolean;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export async function runKubernetesDemo(ui: DemoConsole, options: KubernetesDemoOptions = {}): Promise<DemoResult> {
  ui.step('Start a Kubernetes cluster in a box and install Ambit with helm');
  ui.say('A real kube-apiserver with etcd, controller-manager and scheduler on this machine\'s loopback; two nodes, each a\n' +
    'network namespace run by our kubelet (pods are processes in network namespaces of their own), kube-proxy and\n' +
    'CoreDNS. Then, as on any cluster:\n' +
    '  kubectl apply --server-side -f <Gateway API standard CRDs>\n' +
    '  helm install ambit charts/ambit -n istio-system --create-namespace -f charts/ambit/profiles/default.yaml');
  const mesh = await ui.progress('starting the cluster, installing the Gateway API CRDs and the chart', (update) =>
    ClusterDemoMesh.start({ keep: options.keep ?? false }, update));
  const restoreSignals = options.handleSignals ? cleanUpOnSignals(mesh) : () => undefined;
  try {
    ui.table(['pod', 'node', 'ip', 'status'], await mesh.systemPodRows());
    ui.look(`the cluster while the demo runs: ${k8sBinaries().kubectl} --kubeconfig ${mesh.kubeconfigPath} get pods -A`);
    ui.look(`pod logs: ${mesh.podLogDir}`);
    return await runStory(ui, mesh, options);
  } finally {
    restoreSignals();
  }
}

/**
 * Takes over the interrupt signals while the cluster runs: the first one closes the mesh (helm uninstall, cluster
 * stop) and exits 130; a second one hands the signal back to the e2e safety net (cleanup.ts: synchronous teardown).
 * Returns a function that gives the signals back.
 */
function cleanUpOnSignals(mesh: ClusterDemoMesh): () => void {
  const saved = new Map(SIGNALS.map((s) => [s, process.listeners(s)]));
  let interrupted = false;
  const restore = (): void => {
    for (const s of SIGNALS) {
      process.removeListener(s, onSignal);
      for (const l of saved.get(s) ?? []) if (!process.listeners(s).includes(l)) process.on(s, l);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      restore();
      process.kill(process.pid, signal);
      return;
    }
    interrupted = true;
    process.stderr.write(`\n${signal}: cleaning up (helm uninstall, cluster stop); ${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to tear down at once\n`);
    mesh.close().then(
      () => process.exit(130),
      (err: Error) => {
        process.stderr.write(`clean-up failed: ${err.message}\n`);
        process.exit(130);
      },
    );
  };
  for (const s of SIGNALS) {
    process.removeAllListeners(s);
    process.on(s, onSignal);
  }
  return restore;
}
