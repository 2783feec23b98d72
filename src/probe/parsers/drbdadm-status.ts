import type { Parsed } from '../types.js';
import {
  DrbdWords, integerOrUndefined, keyValues, percentOrUndefined,
  type DrbdLiveConnection, type DrbdLiveResource,
} from './drbd-live.js';

/**
 * Parses `drbdadm status` (`drbdsetup status`), on 8.4 and DRBD 9:
 *
 *     test-vm role:Primary
 *       disk:UpToDate
 *       pm-1 role:Secondary                      (8.4 names every peer "peer")
 *         replication:SyncSource peer-disk:Inconsistent done:95.70
 *       pm-3 connection:Connecting
 *
 * The format leaves out what is normal: no `connection:` means Connected, no `replication:`
 * means Established (on a connected peer), no `volume:` means volume 0, and a peer that is not
 * connected has no role and no peer-device line. A StandAlone 8.4 resource shows no peer at all.
 * Long lines wrap onto deeper-indented continuation lines, which are joined back first.
 */
export function parseDrbdadmStatus(text: string): Parsed<DrbdLiveResource[]> {
  const problems: string[] = [];
  const words = new DrbdWords(problems, 'drbdadm status');
  const resources: DrbdLiveResource[] = [];
  let resource: DrbdLiveResource | undefined;
  let connection: DrbdLiveConnection | undefined;

  for (const { indent, tokens } of logicalLines(text)) {
    const fields = keyValues(tokens);
    if (indent === 0) {
      resource = { name: tokens[0]!, role: words.role(fields.get('role')), devices: [], connections: [] };
      connection = undefined;
      resources.push(resource);
    } else if (!resource) {
      problems.push(`drbdadm status: indented line before any resource: ${tokens.join(' ')}`);
    } else if (indent === 2 && (fields.has('disk') || fields.has('volume'))) {
      resource.devices.push({
        volume: integerOrUndefined(fields.get('volume')) ?? 0,
        minor: integerOrUndefined(fields.get('minor')),
        diskState: words.disk(fields.get('disk')),
        sizeBytes: undefined,
        backingDisk: undefined,
        open: fields.has('open') ? fields.get('open') === 'yes' : undefined,
      });
    } else if (indent === 2) {
      const named = !tokens[0]!.includes(':');
      const state = fields.has('connection') ? words.connection(fields.get('connection')) : 'Connected';
      connection = {
        name: named ? tokens[0] : undefined,
        peerNodeId: integerOrUndefined(fields.get('node-id')),
        connection: state,
        role: fields.has('role') ? words.role(fields.get('role')) : 'Unknown',
        splitBrainReported: false,
        peerDevices: [],
      };
      resource.connections.push(connection);
    } else if (connection) {
      connection.peerDevices.push({
        volume: integerOrUndefined(fields.get('volume')) ?? 0,
        replication: fields.has('replication')
          ? words.replication(fields.get('replication'))
          : connection.connection === 'Connected' ? 'Established' : 'Off',
        diskState: fields.has('peer-disk') ? words.disk(fields.get('peer-disk')) : 'DUnknown',
        syncPercent: percentOrUndefined(fields.get('done')),
        outOfSyncBytes: undefined,
      });
    } else {
      problems.push(`drbdadm status: peer-device line without a connection in ${resource.name}: ${tokens.join(' ')}`);
    }
  }
  return { value: resources, problems };
}

/** Lines indented deeper than a peer-device line (4) continue the line before them. */
function logicalLines(text: string): { indent: number; tokens: string[] }[] {
  const lines: { indent: number; tokens: string[] }[] = [];
  for (const raw of text.split('\n')) {
    const tokens = raw.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0 || tokens[0]!.startsWith('#')) continue;
    const indent = raw.length - raw.trimStart().length;
    const previous = lines.at(-1);
    if (indent > 4 && previous) previous.tokens.push(...tokens);
    else lines.push({ indent, tokens });
  }
  return lines;
}
