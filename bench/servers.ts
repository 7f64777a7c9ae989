// The real bus each benchmark rehearses against, in its own process, by protocol name: the same
// harnesses the conformance tests start (test/servers/), so bench and tests measure one setup.

import { UsageError } from '../core/errors.js';
import { startEmbeddedBus } from '../test/servers/embedded-bus.js';
import { startFaye } from '../test/servers/faye.js';
import { nchanAvailable, startNchan } from '../test/servers/nginx-nchan.js';
import type { TargetServer } from '../test/servers/types.js';

export const benchProtocols = ['v1', 'nchan', 'bayeux'] as const;

export async function startBenchServer(protocol: string): Promise<TargetServer> {
  switch (protocol) {
    case 'v1':
      return startEmbeddedBus();
    case 'nchan':
      if (!nchanAvailable) throw new UsageError('nginx with the Nchan module is not installed (Debian: nginx libnginx-mod-nchan)', '--protocol');
      return startNchan();
    case 'bayeux':
      return startFaye();
    default:
      throw new UsageError(`expected one of ${benchProtocols.join(', ')}, got '${protocol}'`, '--protocol');
  }
}
