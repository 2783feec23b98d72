import type { Parsed } from '../types.js';
import {
  DrbdWords, integerOrUndefined, keyValues, percentOrUndefined,
  type DrbdLiveConnection, type DrbdLiveResource,
} from './drbd-live.js';

const KiB = 1024;

/**
 * Parses `drbdsetup events2 --now --statistics`: one `exists <object> key:value...` line per
 * resource, connection, device and peer-device, ended by `exists -`. The same format comes from
 * an 8.4 kernel (through drbd-utils' compatibility path) and from DRBD 9, where a resource can
 * have several connections and a resyncing peer-device carries `done:`.
 *
 * Sizes in events2 are KiB. `path` and `helper` lines carry nothing the probe needs.
 */
export function parseDrbdEvents2(text: string): Parsed<DrbdLiveResource[]> {
  const problems: string[] = [];
  const words = new DrbdWords(problems, 'events2');
  const resources = new Map<string, DrbdLiveResource>();

  const resourceNamed = (name: string): DrbdLiveResource => {
    let resource = resources.get(name);
    if (!resource) {
      resource = { name, role: 'Unknown', devices: [], connections: [] };
      resources.set(name, resource);
    }
    return resource;
  };
  // 8.4 names its one connection "peer" or not at all; DRBD 9 always gives a node id.
  const connectionOf = (resource: DrbdLiveResource, fields: Map<string, string>): DrbdLiveConnection => {
    const peerNodeId = integerOrUndefined(fields.get('peer-node-id'));
    const name = fields.get('conn-name');
    let connection = resource.connections.find((c) =>
      peerNodeId !== undefined ? c.peerNodeId === peerNodeId : c.name === name);
    if (!connection) {
      connection = {
        name, peerNodeId, connection: 'StandAlone', role: 'Unknown', splitBrainReported: false, peerDevices: [],
      };
      resource.connections.push(connection);
    }
    if (name !== undefined) connection.name = name;
    return connection;
  };

  for (const [index, line] of text.split('\n').entries()) {
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    const [action, object, ...rest] = tokens;
    // --now prints the current state only, as "exists" lines; anything else is not events2 --now.
    if (action !== 'exists') {
      problems.push(`events2: line ${index + 1} not understood: ${line.trim()}`);
      continue;
    }
    if (object === '-' || object === 'path' || object === 'helper') continue;
    const fields = keyValues(rest);
    const name = fields.get('name');
    if (name === undefined) {
      problems.push(`events2: line ${index + 1} has no resource name: ${line.trim()}`);
      continue;
    }
    const resource = resourceNamed(name);
    switch (object) {
      case 'resource':
        if (fields.has('role')) resource.role = words.role(fields.get('role'));
        break;
      case 'device': {
        const volume = integerOrUndefined(fields.get('volume')) ?? 0;
        const size = integerOrUndefined(fields.get('size'));
        const backing = fields.get('backing_dev');
        const open = fields.get('open');
        const device = {
          volume,
          minor: integerOrUndefined(fields.get('minor')),
          diskState: words.disk(fields.get('disk')),
          sizeBytes: size === undefined ? undefined : size * KiB,
          backingDisk: backing === undefined || backing === 'none' ? undefined : backing,
          open: open === undefined ? undefined : open === 'yes',
        };
        resource.devices = resource.devices.filter((d) => d.volume !== volume).concat(device);
        break;
      }
      case 'connection': {
        const connection = connectionOf(resource, fields);
        if (fields.has('connection')) connection.connection = words.connection(fields.get('connection'));
        if (fields.has('role')) connection.role = words.role(fields.get('role'));
        connection.splitBrainReported = fields.get('sync-state') === 'SplitBrain';
        break;
      }
      case 'peer-device': {
        const connection = connectionOf(resource, fields);
        const volume = integerOrUndefined(fields.get('volume')) ?? 0;
        const outOfSync = integerOrUndefined(fields.get('out-of-sync'));
        const peerDevice = {
          volume,
          replication: words.replication(fields.get('replication')),
          diskState: words.disk(fields.get('peer-disk')),
          syncPercent: percentOrUndefined(fields.get('done')),
          outOfSyncBytes: outOfSync === undefined ? undefined : outOfSync * KiB,
        };
        connection.peerDevices = connection.peerDevices.filter((p) => p.volume !== volume).concat(peerDevice);
        break;
      }
      default:
        problems.push(`events2: unknown object ${JSON.stringify(object)} on line ${index + 1}`);
    }
  }
  return { value: [...resources.values()], problems };
}
