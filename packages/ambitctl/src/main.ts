// ambitctl entry: dispatches `waypoint`, `ztunnel-config`/`zc`, `analyze` and `version`; every failure becomes
// `error: <message>` and a non-zero exit, never a stack trace.
import { analyzeCommand } from './analyze.js';
import { CliError, processIo, type CliIo } from './io.js';
import { waypointCommand } from './waypoint.js';
import { ztunnelConfigCommand } from './ztunnel-config.js';
import { VERSION } from './version.js';

export const HELP = `ambitctl controls the Ambit service mesh (istioctl-compatible verbs).

Usage:
  ambitctl [command]

Available Commands:
  analyze         Analyze Istio configuration and print validation messages
  version         Print the ambitctl version
  waypoint        Manage waypoint configuration
  ztunnel-config  Inspect the node agent's configuration (alias: zc)

Global Flags:
      --context string      the name of the kubeconfig context to use
      --kubeconfig string   kubernetes configuration file
  -n, --namespace string    config namespace
`;

export async function main(argv: readonly string[], io: CliIo = processIo({})): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'waypoint': case 'waypoints': case 'wp': return await waypointCommand(rest, io);
      case 'ztunnel-config': case 'zc': return await ztunnelConfigCommand(rest, io);
      case 'analyze': return await analyzeCommand(rest, io);
      case 'version':
        if (rest.includes('-o') && rest[rest.indexOf('-o') + 1] === 'json') io.out(`${JSON.stringify({ clientVersion: { version: VERSION } })}\n`);
        else io.out(`client version: ${VERSION}\n`);
        return 0;
      case undefined: case 'help': case '--help': case '-h':
        io.out(HELP);
        return cmd === undefined ? 1 : 0;
      default:
        throw new CliError(`unknown command "${cmd}" for "ambitctl"\nRun 'ambitctl --help' for usage.`);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
