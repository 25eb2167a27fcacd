// Public surface of @ambit/e2e: the netns test topology and the helpers every e2e test shares.
export {
  createTopology,
  Topology,
  TopologyLeftoverError,
  type TopologyOptions,
  type TopologyNode,
  type TopologyPod,
  type Underlay,
  type Target,
} from './topology.js';
export {
  spawnInNetns,
  execInNetns,
  runCommand,
  NetnsProcess,
  BoundedBuffer,
  type SpawnOptions,
  type ExecOptions,
  type ExecResult,
  type ExitStatus,
} from './process.js';
export { Capture, CaptureResult, startCapture, captureDuring, waitForMarker, type CaptureOptions, type Spawner } from './capture.js';
export { parsePcap, buildPcap, type CapturedPacket } from './pcap.js';
export { waitFor, pollSync, WaitTimeoutError, type WaitOptions } from './wait.js';
export { requireRoot, requireTools, NotRootError } from './root.js';
export { netnsInode, processNetnsInode, pidsInNetns, listNetns, isProcessAlive } from './netns.js';
export {
  appPath,
  startEchoServer,
  runEchoClient,
  type EchoServer,
  type EchoServerEvent,
  type EchoClientResult,
} from './echo.js';
export * from './naming.js';
export { createImageRegistry, defaultImages, normalizeImage, type ImageEntry, type ImageRegistry, type ImageResolution } from './kubelet/image-registry.js';
export { createCniRuntime, loadNetworkConfig, CniPluginError, CniConfigMissingError, type CniRuntime, type CniAttachment } from './kubelet/cni-runtime.js';
export { PodWorker, type PodWorkerDeps } from './kubelet/pod-worker.js';
export { createSandboxManager, type Sandbox, type SandboxManager } from './kubelet/sandbox.js';
export { buildPodStatus, type PodSnapshot, type ContainerSnapshot } from './kubelet/status.js';
export { parseNetworkConfig, pluginStdin, type CniResult, type NetworkConfigList } from './cni/spec.js';
export { startKubelet, type Kubelet, type KubeletOptions } from './kubelet/kubelet.js';
export { NODE_INDEX_LABEL } from './kubelet/node-status.js';
export { connectionFromKubeconfig, createKubeApi, KubeletApiError, type KubeApi, type KubeconfigSource } from './kubelet/kube-api.js';
export { k8sBinaries, k8sCacheDir, clusterToolsDir, clusterToolsHash, K8sBinariesError, COLD_BUILD_MINUTES, type K8sBinaries, type K8sBinariesOptions, type K8sVersions } from './cluster/binaries.js';
export { startControlPlane, ControlPlane, ControlPlaneProcessExitedError, ControlPlaneStartError, KubeClient, KubeApiError, type ControlPlaneOptions, type ControlPlaneBinaries, type ControlPlaneProcess, type ComponentName, type StartupTimings, type KubeClientOptions } from './cluster/control-plane.js';
export { startCluster, Cluster, ClusterFeatureUnavailableError, ManifestError, parseManifest, type StartClusterOptions, type ObjectRef, type ApplyOptions, type WaitForOptions, type KubernetesObject, type ApiResource } from './cluster/cluster.js';
export { createControlPlanePki, buildKubeconfig, type ControlPlanePki, type KubeconfigOptions } from './cluster/certs.js';
export { startNodePool, nodeNameOf, type NodePool, type NodePoolOptions } from './cluster/node-pool.js';
export { startClusterServices, CLUSTER_DNS_IP, CLUSTER_DOMAIN, CLUSTER_CIDR, type ClusterServices } from './cluster/services.js';
