/**
 * Builders for NodeFacts as the probe produces them, so each model and verify test states
 * only what matters to it. The shapes follow the real cluster in test/fixtures/real
 * (vg-pmc, br0, /dev/drbdN on /dev/vg-pmc/<vm>); gather.test.ts proves the probe yields them.
 */
import type {
  Domain, DrbdPeer, DrbdResource, LogicalVolume, NodeFacts,
} from '../../../src/probe/types.js';
import type { NodeProbe } from '../../../src/model/cluster.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const ADDRESSES: Record<string, string> = { 'pm-1': '10.99.0.11', 'pm-2': '10.99.0.12', 'pm-3': '10.99.0.13' };

export function nodeFacts(hostname: string, parts: Partial<NodeFacts> = {}): NodeFacts {
  return {
    hostname,
    kernelRelease: '6.1.0-18-cloud-amd64',
    memory: { totalBytes: 2 * GiB, availableBytes: 1536 * MiB },
    cpus: 2,
    vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: 6 * GiB, extentSizeBytes: 4 * MiB },
    lvs: [],
    bridge: { name: 'br0', present: true, isBridge: true, up: true, carrier: true, operState: 'UP' },
    drbd: { moduleLoaded: true, kernelVersion: '8.4.11', utilsVersion: '9.22.0', minorsInKernel: [] },
    drbdResources: [],
    drbdResourceFiles: [],
    splitBrainMinors: [],
    domains: [],
    libvirt: { active: true, version: undefined, nodeInfo: undefined },
    tools: { xdelta3: true, rsync: true, zstd: true },
    backupDirExists: true,
    shared: undefined,
    authority: [],
    problems: [],
    ...parts,
  };
}

export function domain(name: string, state: Domain['state'], opts: Partial<Domain> & { minor?: number } = {}): Domain {
  const { minor = 10, ...rest } = opts;
  return {
    name,
    uuid: `uuid-of-${name}`,
    state,
    stateReason: state === 'running' ? 'booted' : 'shutdown',
    memoryBytes: 64 * MiB,
    vcpus: 1,
    disks: [{ device: 'disk', type: 'block', source: `/dev/drbd${minor}`, target: 'vda', bus: 'virtio' }],
    interfaces: [{ type: 'bridge', mac: '52:54:00:12:34:56', bridge: 'br0', network: undefined, model: 'virtio' }],
    autostart: false,
    persistent: true,
    xml: `<domain><name>${name}</name></domain>`,
    ...rest,
  };
}

export function peer(node: string, parts: Partial<DrbdPeer> = {}): DrbdPeer {
  return {
    node,
    nodeId: undefined,
    connection: 'Connected',
    role: 'Secondary',
    replication: 'Established',
    diskState: 'UpToDate',
    syncPercent: undefined,
    outOfSyncBytes: 0,
    splitBrainReported: false,
    ...parts,
  };
}

/** A resource the way the old bash tool and pmc lay it out: name = VM, disk = /dev/<vg>/<vm>. */
export function resource(name: string, self: string, hosts: [string, string], minor: number, parts: Partial<DrbdResource> = {}): DrbdResource {
  const other = hosts.find((h) => h !== self)!;
  const port = 7778 + minor;
  return {
    name,
    configured: true,
    up: true,
    configFile: `/etc/drbd.d/${name}.res`,
    minor,
    device: `/dev/drbd${minor}`,
    disk: `/dev/vg-pmc/${name}`,
    address: ADDRESSES[self],
    port,
    hosts: hosts.map((h) => ({ name: h, nodeId: undefined, address: ADDRESSES[h], port, device: `/dev/drbd${minor}`, minor, disk: `/dev/vg-pmc/${name}` })),
    allowTwoPrimaries: false,
    allowTwoPrimariesLive: false,
    role: 'Secondary',
    diskState: 'UpToDate',
    sizeBytes: GiB,
    peers: [peer(other)],
    splitBrain: false,
    lastConnectionLoss: undefined,
    ...parts,
  };
}

export function lv(name: string, sizeBytes = GiB): LogicalVolume {
  return { name, vgName: 'vg-pmc', path: `/dev/vg-pmc/${name}`, sizeBytes, attr: '-wi-ao----', active: true, open: true, origin: undefined };
}

/**
 * A healthy replicated VM: running and Primary on `home`, defined and Secondary on `peerNode`.
 * Returns the facts each of the two nodes contributes.
 */
export function pairedVm(name: string, home: string, peerNode: string, minor: number, memoryBytes = 64 * MiB, vcpus = 1): Record<string, Partial<NodeFacts>> {
  const hosts: [string, string] = [home, peerNode];
  return {
    [home]: {
      domains: [domain(name, 'running', { minor, memoryBytes, vcpus })],
      drbdResources: [resource(name, home, hosts, minor, { role: 'Primary', peers: [peer(peerNode)] })],
      lvs: [lv(name)],
      drbdResourceFiles: [`/etc/drbd.d/${name}.res`],
    },
    [peerNode]: {
      domains: [domain(name, 'shut off', { minor, memoryBytes, vcpus })],
      drbdResources: [resource(name, peerNode, hosts, minor, { peers: [peer(home, { role: 'Primary' })] })],
      lvs: [lv(name)],
      drbdResourceFiles: [`/etc/drbd.d/${name}.res`],
    },
  };
}

/** Merges per-node parts (lists are concatenated) into probes for the given nodes. */
export function probes(nodes: string[], ...parts: Record<string, Partial<NodeFacts>>[]): NodeProbe[] {
  return nodes.map((node) => {
    const merged: Partial<NodeFacts> = {};
    for (const p of parts) {
      for (const [key, value] of Object.entries(p[node] ?? {})) {
        const k = key as keyof NodeFacts;
        const prev = merged[k];
        (merged as Record<string, unknown>)[k] = Array.isArray(prev) && Array.isArray(value) ? [...prev, ...value] : value;
      }
    }
    return { node, ok: true, value: nodeFacts(node, merged) };
  });
}

export const CONFIG = { nodes: [{ name: 'pm-1' }, { name: 'pm-2' }, { name: 'pm-3' }], ignorePrefix: 'ignore' };

/** storage.shared as the lab configures it. */
export const SHARED_DIR = '/var/lib/pmc-shared';
export const SHARED_ID = '6f1c2a9e0b7d4e3f8a5c1d2e3f4a5b6c';
export const SHARED_CONFIG = { ...CONFIG, storage: { shared: { directory: SHARED_DIR } } };

/** The shared directory as the probe reads it on a node that mounts the NFS export. */
export function sharedFacts(parts: Partial<NonNullable<NodeFacts['shared']>> = {}): NodeFacts['shared'] {
  return { directory: SHARED_DIR, present: true, mountPoint: true, fsType: 'nfs4', id: SHARED_ID, files: [], failure: undefined, ...parts };
}

/** Every node mounting the shared directory, listing these disk files. */
export function sharedMounts(nodes: string[], files: { name: string; sizeBytes: number }[] = []): Record<string, Partial<NodeFacts>> {
  return Object.fromEntries(nodes.map((n) => [n, { shared: sharedFacts({ files }) }]));
}

/** A shared-storage VM defined on `definedOn`, running on `runningOn` (none: shut off everywhere). */
export function sharedVm(name: string, definedOn: string[], runningOn: string[], memoryBytes = 64 * MiB): Record<string, Partial<NodeFacts>> {
  const disks = [{ device: 'disk', type: 'file', source: `${SHARED_DIR}/${name}.img`, target: 'vda', bus: 'virtio' }];
  return Object.fromEntries(definedOn.map((n) => [n, {
    domains: [domain(name, runningOn.includes(n) ? 'running' : 'shut off', { disks, memoryBytes })],
  }]));
}
