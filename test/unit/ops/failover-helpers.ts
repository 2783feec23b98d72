/** Cluster states around a failover, shared by the failover and cluster heal tests. */
import type { NodeFacts } from '../../../src/probe/types.js';
import { domain, pairedVm, peer, resource } from '../model/factory.js';

const lostAsPrimary = { peerRoleBefore: 'Primary', to: 'NetworkFailure', secondsSinceBoot: 812.4 };

/** web ran on pm-1 (now dead); pm-2 is its Secondary and saw the link to its Primary fail. */
export function afterCrash(survivor: Partial<Parameters<typeof resource>[4]> = {}, name = 'web', minor = 10): Record<string, Partial<NodeFacts>> {
  const pair = pairedVm(name, 'pm-1', 'pm-2', minor);
  return {
    ...pair,
    'pm-2': {
      ...pair['pm-2'],
      drbdResources: [resource(name, 'pm-2', ['pm-1', 'pm-2'], minor, {
        peers: [peer('pm-1', { connection: 'Connecting', role: 'Unknown', replication: 'Off', diskState: 'DUnknown' })],
        lastConnectionLoss: lostAsPrimary,
        ...survivor,
      })],
    },
  };
}

/** After the failover: pm-2 runs `name` (web) as Primary and holds the record; pm-1 is back, DRBD still down. */
export function afterFailover(pm1Resource: Partial<Parameters<typeof resource>[4]> = { up: false, role: undefined, diskState: undefined, peers: [] }, pm1Running = false, name = 'web', minor = 10): Record<string, Partial<NodeFacts>> {
  const pair = pairedVm(name, 'pm-2', 'pm-1', minor);
  return {
    'pm-2': { ...pair['pm-2'], authority: [{ resource: name, lostNode: 'pm-1', at: '2026-12-02T09:00:00Z' }],
      drbdResources: [resource(name, 'pm-2', ['pm-1', 'pm-2'], minor, { role: 'Primary', peers: [peer('pm-1', { connection: 'Connecting', role: 'Unknown', replication: 'Off', diskState: 'DUnknown' })] })] },
    'pm-1': { ...pair['pm-1'], domains: [domain(name, pm1Running ? 'running' : 'shut off', { minor })], drbdResources: [resource(name, 'pm-1', ['pm-1', 'pm-2'], minor, pm1Resource)] },
  };
}

