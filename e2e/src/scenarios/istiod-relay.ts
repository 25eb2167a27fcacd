// WORKAROUND for a cluster-in-a-box gap, not part of what the scenarios prove: our kubelet runs containers in the
// machine's mount namespace, so a pod's process reads this machine's /etc/resolv.conf and cannot resolve Service
// names (istiod.istio-system.svc) the way a pod with dnsPolicy ClusterFirst can. The agents are therefore installed
// with XDS_ADDRESS/CA_ADDRESS = 127.0.0.1:15012 (a name the controller's serving certificate carries), and this relay
// listens on 127.0.0.1:15012 inside each agent pod's netns and connects, from that same netns, to the istiod
// Service's ClusterIP: the bytes still go through kube-proxy to whichever controller replica serves the Service,
// and TLS is end to end between the agent and the controller. Remove once pods get the cluster's resolv.conf.
import type net from 'node:net';
import { connectInNetns, createServerInNetns } from '@ambit/netns';
import { netnsPath } from '../naming.js';

export interface ServiceRelay {
  readonly connections: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` in `netns` and relays each connection to `serviceIp`:`port` from the same netns. */
export async function relayLoopbackToService(netns: string, serviceIp: string, port: number): Promise<ServiceRelay> {
  let count = 0;
  const open = new Set<net.Socket>();
  const path = netnsPath(netns);
  const server = await createServerInNetns({
    netns: path,
    host: '127.0.0.1',
    port,
    reusePort: false,
    onConnection(down) {
      count++;
      const up = connectInNetns({ netns: path, host: serviceIp, port });
      open.add(down).add(up);
      const done = (): void => {
        down.destroy();
        up.destroy();
        open.delete(down);
        open.delete(up);
      };
      down.on('error', done).on('close', done);
      up.on('error', done).on('close', done);
      down.pipe(up);
      up.pipe(down);
    },
  });
  return {
    get connections() {
      return count;
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    }),
  };
}
