// A sample WaypointPlugin (see the package README): tags every request and response with a header, and answers
// requests that carry `x-block-me` itself with 403, without routing them.
import type { WaypointPlugin } from './plugin.js';

export function createSampleHeaderPlugin(options: { header?: string; value?: string } = {}): WaypointPlugin {
  const header = (options.header ?? 'x-ambit-plugin').toLowerCase();
  const value = options.value ?? 'sample';
  return {
    name: 'sample-header',
    onRequest(req) {
      if (req.headers['x-block-me'] !== undefined) {
        return { status: 403, headers: { [header]: value }, body: `blocked by plugin for ${req.service ?? 'a workload'}` };
      }
      req.headers[header] = value;
      return undefined;
    },
    onResponse(res) {
      res.headers[header] = value;
      res.headers['x-ambit-request-id'] = res.request.requestId;
    },
  };
}

/** Default export for AMBIT_WAYPOINT_PLUGINS: a factory, called once at start. */
export default function (): WaypointPlugin {
  return createSampleHeaderPlugin();
}
