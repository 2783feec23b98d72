import type {
  Domain, DrbdPeer, DrbdResource, LogicalVolume, NodeFacts,
} from '../probe/types.js';
import type { PmcErrorCode } from '../util/errors.js';
import { backupOverlayFile, sharedDiskFile } from './shared.js';

/**
 * The cluster model: every node's facts, read live in this run, joined into VMs and nodes.
 * It is a pure function of the probes, so listings, verify and plans all see one picture.
 */
export interface ClusterState {
  nodes: NodeState[];
  /** Sorted by name. */
  vms: Vm[];
}

export interface NodeState {
  name: string;
  /** What pmc connected to (the configured address, else the name). */
  host: string;
  reachable: boolean;
  error: { code: PmcErrorCode; message: string; hint: string | undefined } | undefined;
  facts: NodeFacts | undefined;
  usage: NodeUsage;
}

export interface NodeUsage {
  running: VmMemory[];
  shutOff: VmMemory[];
  /** Memory of the VMs running here. */
  runningMemoryBytes: number;
  /**
   * Memory of every VM defined here, running or not: what the node must hold if all its
   * VMs end up on it after its peers fail. Placement counts this (the old tool counted none).
   */
  definedMemoryBytes: number;
  /** DRBD disks on this node by local disk state (UpToDate: 3, Inconsistent: 1, ...). */
  drbdDisks: Record<string, number>;
}

export interface VmMemory {
  name: string;
  memoryBytes: number;
}

/** One node's share of a VM. */
export interface VmReplica {
  node: string;
  /** False when the node could not be asked: everything else is then unknown. */
  reachable: boolean;
  domain: Domain | undefined;
  resource: DrbdResource | undefined;
  lv: LogicalVolume | undefined;
}

export type VmFlag =
  | 'degraded' | 'syncing' | 'split-brain' | 'running-twice' | 'two-primaries' | 'ignored' | 'node-down'
  /** A failover made one node's copy authoritative; the other node's copy is stale until `pmc pm rejoin`. */
  | 'stale-copy';

export type VmState = 'running' | 'shut off' | 'paused' | 'running twice' | 'not defined' | 'unknown' | string;

export interface Vm {
  name: string;
  ignored: boolean;
  /** Nodes holding any part of it: the resource's hosts first, then others with a domain or LV. */
  nodes: string[];
  replicas: VmReplica[];
  runningOn: string[];
  primaryOn: string[];
  /** Where it runs, else its DRBD primary, else the first node with a definition. */
  home: string | undefined;
  /** The other node of its pair. */
  peer: string | undefined;
  state: VmState;
  memoryBytes: number | undefined;
  vcpus: number | undefined;
  uuid: string | undefined;
  diskBytes: number | undefined;
  minor: number | undefined;
  port: number | undefined;
  replication: Replication | undefined;
  /**
   * A shared-storage VM: its disk is this file in storage.shared.directory, which every node
   * mounts, so it may run on any node that defines it (`nodes`) and has no `peer`, DRBD or
   * replication. undefined for a DRBD VM.
   */
  shared: { file: string } | undefined;
  /** Set after a failover: `node` holds the authoritative copy, `lostNode` a stale one (until `pmc pm rejoin`). */
  authority: { node: string; lostNode: string; at: string } | undefined;
  flags: VmFlag[];
}

/** The DRBD picture of a VM, seen from its home node. */
export interface Replication {
  /** `UpToDate/UpToDate`: local disk / peer disk, as /proc/drbd's ds: shows it. */
  disks: string;
  /** `Primary/Secondary`. */
  roles: string;
  connection: string;
  replication: string;
  syncPercent: number | undefined;
}

/** What the probe of one node produced: its facts, or why it could not be asked. */
export type NodeProbe =
  | { node: string; ok: true; value: NodeFacts }
  | { node: string; ok: false; error: { code: PmcErrorCode; message: string; hint?: string | undefined } };

/** What the model needs of pmc.yaml: the nodes in order, the ignore prefix and the shared storage directory. */
export interface ModelConfig {
  nodes: ReadonlyArray<{ name: string; address?: string | undefined }>;
  ignorePrefix: string;
  storage?: { shared?: { directory: string } | undefined } | undefined;
}

export function buildCluster(config: ModelConfig, probes: readonly NodeProbe[]): ClusterState {
  const byNode = new Map(probes.map((p) => [p.node, p]));
  const order = config.nodes.map((n) => n.name);
  const parts = indexByVm(probes);
  const sharedDir = config.storage?.shared?.directory;
  const vms = [...parts.keys()].sort().map((name) => buildVm(name, parts.get(name)!, order, byNode, config.ignorePrefix, sharedDir));

  const nodes = config.nodes.map((n): NodeState => {
    const probe = byNode.get(n.name);
    const nodeFacts = probe?.ok ? probe.value : undefined;
    return {
      name: n.name,
      host: n.address ?? n.name,
      reachable: Boolean(probe?.ok),
      error: probe && !probe.ok ? { code: probe.error.code, message: probe.error.message, hint: probe.error.hint } : undefined,
      facts: nodeFacts,
      usage: nodeUsage(n.name, nodeFacts, vms),
    };
  });
  return { nodes, vms };
}

/** What one node holds of one VM. */
interface NodePart {
  domain: Domain | undefined;
  resource: DrbdResource | undefined;
}

/** VM name -> node -> its domain and resource there: one pass over every node's facts. */
function indexByVm(probes: readonly NodeProbe[]): Map<string, Map<string, NodePart>> {
  const index = new Map<string, Map<string, NodePart>>();
  const part = (vm: string, node: string): NodePart => {
    let nodes = index.get(vm);
    if (!nodes) index.set(vm, nodes = new Map());
    let p = nodes.get(node);
    if (!p) nodes.set(node, p = { domain: undefined, resource: undefined });
    return p;
  };
  for (const probe of probes) {
    if (!probe.ok) continue;
    for (const d of probe.value.domains) part(d.name, probe.node).domain = d;
    for (const r of probe.value.drbdResources) part(r.name, probe.node).resource = r;
  }
  return index;
}

function buildVm(
  name: string,
  parts: ReadonlyMap<string, NodePart>,
  order: readonly string[],
  probes: ReadonlyMap<string, NodeProbe>,
  ignorePrefix: string,
  sharedDir: string | undefined,
): Vm {
  const resourceHosts: string[] = [];
  for (const p of parts.values()) {
    for (const h of p.resource?.hosts ?? []) if (!resourceHosts.includes(h.name)) resourceHosts.push(h.name);
  }
  const rank = (n: string) => (order.includes(n) ? order.indexOf(n) : order.length);
  const others = [...parts.keys()].filter((n) => !resourceHosts.includes(n)).sort((a, b) => rank(a) - rank(b));
  const nodes = [...resourceHosts, ...others];

  const replicas = nodes.map((node): VmReplica => {
    const probe = probes.get(node);
    const part = parts.get(node);
    const resource = part?.resource;
    return {
      node,
      reachable: probe?.ok === true,
      domain: part?.domain,
      resource,
      lv: probe?.ok ? probe.value.lvs.find((lv) => lv.path === resource?.disk || lv.name === name) : undefined,
    };
  });

  const runningOn = replicas.filter((r) => r.domain && isActive(r.domain)).map((r) => r.node);
  const primaryOn = replicas.filter((r) => r.resource?.role === 'Primary').map((r) => r.node);
  const defined = replicas.filter((r) => r.domain);
  const home = runningOn[0] ?? primaryOn[0] ?? defined[0]?.node ?? nodes[0];
  const homeReplica = replicas.find((r) => r.node === home);
  const definition = homeReplica?.domain ?? defined[0]?.domain;
  const shared = sharedDisk(definition, sharedDir);
  const peer = shared ? undefined : nodes.find((n) => n !== home);
  const resource = homeReplica?.resource ?? replicas.find((r) => r.resource)?.resource;

  const ignored = ignorePrefix !== '' && name.startsWith(ignorePrefix);
  const unreachable = replicas.some((r) => !r.reachable);
  const replication = resource ? describeReplication(resource, peer) : undefined;

  const flags: VmFlag[] = [];
  // Any node may run a shared VM, the ones that do not define it as far as is known included.
  if (unreachable || (shared && order.some((n) => probes.get(n)?.ok !== true))) flags.push('node-down');
  if (replicas.some((r) => r.resource?.splitBrain) || bothStandAlone(replicas)) flags.push('split-brain');
  if (resource && replicas.some((r) => r.reachable && r.resource && !healthy(r.resource))) {
    flags.push(replicas.some((r) => r.resource && isSyncing(r.resource)) ? 'syncing' : 'degraded');
  } else if (resource && unreachable) flags.push('degraded');
  if (runningOn.length > 1) flags.push('running-twice');
  if (primaryOn.length > 1) flags.push('two-primaries');
  if (ignored) flags.push('ignored');
  const authority = authorityOf(name, replicas, probes);
  if (authority) flags.push('stale-copy');

  return {
    name,
    ignored,
    nodes,
    replicas,
    runningOn,
    primaryOn,
    home,
    peer,
    state: vmState(runningOn, defined.map((r) => r.domain!), homeReplica, unreachable),
    memoryBytes: definition?.memoryBytes,
    vcpus: definition?.vcpus,
    uuid: definition?.uuid,
    shared,
    diskBytes: shared ? sharedFileSize(shared.file, sharedDir!, probes) : resource?.sizeBytes ?? replicas.find((r) => r.lv)?.lv?.sizeBytes,
    minor: resource?.minor,
    port: resource?.port,
    replication,
    authority,
    flags,
  };
}

/** The VM's disk when it is a file in the shared directory (a DRBD VM's is /dev/drbdN). */
function sharedDisk(definition: Domain | undefined, sharedDir: string | undefined): Vm['shared'] {
  if (sharedDir === undefined) return undefined;
  const disk = definition?.disks.find((d) => d.device === 'disk' && d.source?.startsWith(`${sharedDir}/`));
  if (!disk) return undefined;
  return { file: disk.source === backupOverlayFile(sharedDir, definition!.name) ? sharedDiskFile(sharedDir, definition!.name) : disk.source! };
}

/** The size of a disk file directly in the shared directory, as the first node that lists it says. */
function sharedFileSize(file: string, sharedDir: string, probes: ReadonlyMap<string, NodeProbe>): number | undefined {
  const name = file.slice(sharedDir.length + 1);
  for (const probe of probes.values()) {
    const listed = probe.ok ? probe.value.shared?.files.find((f) => f.name === name) : undefined;
    if (listed) return listed.sizeBytes;
  }
  return undefined;
}

/** The failover record of this VM's resource on one of its nodes that names another of its nodes as lost. */
function authorityOf(name: string, replicas: readonly VmReplica[], probes: ReadonlyMap<string, NodeProbe>): Vm['authority'] {
  for (const r of replicas) {
    const probe = probes.get(r.node);
    const resource = r.resource?.name ?? name;
    const mark = probe?.ok ? probe.value.authority.find((m) => m.resource === resource && m.lostNode !== r.node) : undefined;
    if (mark && replicas.some((other) => other.node === mark.lostNode)) return { node: r.node, lostNode: mark.lostNode, at: mark.at };
  }
  return undefined;
}

/** A domain that holds its disk open: running, paused, or on its way in or out. */
export function isActive(domain: Domain): boolean {
  return domain.state !== 'shut off' && domain.state !== 'crashed' && domain.state !== 'no state';
}

function vmState(runningOn: string[], domains: Domain[], home: VmReplica | undefined, unreachable: boolean): VmState {
  if (runningOn.length > 1) return 'running twice';
  if (home?.domain) return home.domain.state;
  if (domains.length > 0) return domains[0]!.state;
  return unreachable ? 'unknown' : 'not defined';
}

/** Connected and every disk UpToDate: the state in which the VM can move or lose a node. */
export function healthy(resource: DrbdResource): boolean {
  return resource.diskState === 'UpToDate' && resource.peers.length > 0
    && resource.peers.every((p) => p.connection === 'Connected' && p.diskState === 'UpToDate');
}

function isSyncing(resource: DrbdResource): boolean {
  return resource.peers.some((p) => /^(Sync|PausedSync|StartingSync|WFBitMap|WFSyncUUID)/.test(p.replication));
}

function bothStandAlone(replicas: readonly VmReplica[]): boolean {
  const states = replicas.filter((r) => r.resource?.up).map((r) => r.resource!.peers[0]?.connection);
  return states.length >= 2 && states.every((s) => s === 'StandAlone');
}

function describeReplication(resource: DrbdResource, peerName: string | undefined): Replication {
  const peer: DrbdPeer | undefined = resource.peers.find((p) => p.node === peerName) ?? resource.peers[0];
  if (!resource.up) {
    return { disks: 'down', roles: '-', connection: 'down', replication: 'Off', syncPercent: undefined };
  }
  return {
    disks: `${resource.diskState ?? 'DUnknown'}/${peer?.diskState ?? 'DUnknown'}`,
    roles: `${resource.role ?? 'Unknown'}/${peer?.role ?? 'Unknown'}`,
    connection: peer?.connection ?? 'StandAlone',
    replication: peer?.replication ?? 'Off',
    syncPercent: peer?.syncPercent,
  };
}

function nodeUsage(node: string, facts: NodeFacts | undefined, vms: readonly Vm[]): NodeUsage {
  const running: VmMemory[] = [];
  const shutOff: VmMemory[] = [];
  for (const domain of facts?.domains ?? []) {
    (isActive(domain) ? running : shutOff).push({ name: domain.name, memoryBytes: domain.memoryBytes });
  }
  const drbdDisks: Record<string, number> = {};
  for (const r of facts?.drbdResources ?? []) {
    const state = r.up ? (r.diskState ?? 'DUnknown') : 'down';
    drbdDisks[state] = (drbdDisks[state] ?? 0) + 1;
  }
  // A VM whose pair includes this node must fit here even when only its peer defines it so far.
  // A shared VM is defined on every node but lands on one: it counts where it lives.
  const definedMemoryBytes = vms
    .filter((vm) => (vm.shared ? vm.home === node : vm.nodes.includes(node)) && vm.memoryBytes !== undefined)
    .reduce((sum, vm) => sum + vm.memoryBytes!, 0);
  const sum = (list: VmMemory[]) => list.reduce((s, v) => s + v.memoryBytes, 0);
  return { running, shutOff, runningMemoryBytes: sum(running), definedMemoryBytes, drbdDisks };
}
