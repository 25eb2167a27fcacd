// The mesh suite's fixture (Gateway API conformance/mesh/manifests.yaml, adapted to the cluster-in-a-box): namespace
// gateway-conformance-mesh (ambient), Deployments echo-v1 and echo-v2, Services echo (both versions), echo-v1 and
// echo-v2 (http 80 -> 8080, http-alt 8080 -> 8080, grpc 7070 -> 7070), and a meshed client pod. With `consumer`, a
// second ambient namespace gateway-conformance-mesh-consumer with its own client (MeshConsumerRoute).
export const MESH_NS = 'gateway-conformance-mesh';
export const CONSUMER_NS = 'gateway-conformance-mesh-consumer';
export const ECHO_IMAGE = 'ambit/conformance-echo';

export interface EchoContainer {
  image: string;
  command?: string[];
}

export interface FixtureOptions {
  /** How the echo container is started (the embedded mesh runs the app through an explicit command). */
  echo: EchoContainer;
  /** Also the consumer namespace with a client. */
  consumer?: boolean;
  /** Extra Deployments behind their own Services (name -> env), e.g. a failing endpoint. */
  extraBackends?: { name: string; app: string; env?: Record<string, string> }[];
}

function containerYaml(c: EchoContainer, env: Record<string, string> = {}): string {
  const lines = [`        - name: echo`, `          image: ${c.image}`];
  if (c.command) lines.push(`          command: ${JSON.stringify(c.command)}`);
  lines.push(`          args: ["--port", "8080", "--grpc-port", "7070"]`);
  lines.push(`          ports: [{containerPort: 8080}, {containerPort: 7070}]`);
  lines.push(`          readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}`);
  lines.push('          env:');
  lines.push('            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}');
  lines.push('            - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}');
  for (const [k, v] of Object.entries(env)) lines.push(`            - {name: ${k}, value: ${JSON.stringify(v)}}`);
  return lines.join('\n');
}

function deployment(ns: string, name: string, labels: Record<string, string>, c: EchoContainer, env?: Record<string, string>): string {
  // JSON is YAML: unquoted `{app:echo}` would be one key "app:echo" with a null value.
  const l = JSON.stringify(labels);
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: ${l}}
  template:
    metadata: {labels: ${l}}
    spec:
      serviceAccountName: echo
      containers:
${containerYaml(c, env)}
`;
}

function service(ns: string, name: string, selector: Record<string, string>): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: ${JSON.stringify(selector)}
  ports:
    - {name: http, port: 80, targetPort: 8080, appProtocol: http}
    - {name: http-alt, port: 8080, targetPort: 8080, appProtocol: http}
    - {name: grpc, port: 7070, targetPort: 7070, appProtocol: grpc}
`;
}

function clientYaml(ns: string, name = 'client'): string {
  return `apiVersion: v1
kind: ServiceAccount
metadata: {name: client, namespace: ${ns}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      serviceAccountName: client
      containers:
        - {name: client, image: curlimages/curl, command: [sleep, infinity]}
`;
}

/** The fixture's YAML, namespaces first. */
export function fixtureYaml(options: FixtureOptions): string {
  const docs: string[] = [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${MESH_NS}, labels: {istio.io/dataplane-mode: ambient}}\n`,
    `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: echo, namespace: ${MESH_NS}}\n`,
    deployment(MESH_NS, 'echo-v1', { app: 'echo', version: 'v1' }, options.echo),
    deployment(MESH_NS, 'echo-v2', { app: 'echo', version: 'v2' }, options.echo),
    service(MESH_NS, 'echo', { app: 'echo' }),
    service(MESH_NS, 'echo-v1', { app: 'echo', version: 'v1' }),
    service(MESH_NS, 'echo-v2', { app: 'echo', version: 'v2' }),
    clientYaml(MESH_NS),
  ];
  for (const b of options.extraBackends ?? []) {
    docs.push(deployment(MESH_NS, b.name, { app: b.app, version: b.name }, options.echo, b.env));
  }
  for (const app of new Set((options.extraBackends ?? []).map((b) => b.app))) docs.push(service(MESH_NS, app, { app }));
  if (options.consumer) {
    docs.push(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${CONSUMER_NS}, labels: {istio.io/dataplane-mode: ambient}}\n`);
    // Its own Deployment name: pod names stay unique across namespaces (the embedded mesh keys sandboxes by name).
    docs.push(clientYaml(CONSUMER_NS, 'consumer-client'));
  }
  return docs.join('---\n');
}
