/**
 * `pmc vm add`, the pure part: every check that must pass before anything changes, where the
 * VM goes (its nodes, DRBD minor and port), and the plan that creates it. The live reads the
 * plan depends on (CPU baseline, node addresses, ISO copies on the nodes) come in as VmAddFacts,
 * so a dry run prints exactly the commands a real run sends.
 *
 * Layout, as the old tool's, so clusters stay compatible: LV /dev/<vg>/<vm>, resource file
 * /etc/drbd.d/<vm>.res, DRBD resource and libvirt domain named <vm>. A one-node VM (one -p,
 * or a one-node cluster) has no DRBD at all: its LV is its disk. A shared-storage VM
 * (--shared) has neither: its disk is the raw file <storage.shared.directory>/<vm>.img, and it
 * is defined on every node.
 */
import { isIPv6 } from 'node:net';
import type { Config } from '../../config/load.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState, NodeState } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { assertVmName } from '../../util/names.js';
import { macFromIp, randomMac } from '../../util/network.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import { domainXml, type NodeCapabilities } from './domain-xml.js';
import { findVm } from './list.js';
import type { Plan, Step } from '../engine/plan.js';
import { assertNotIgnored } from '../engine/run-plan.js';
import { drbdadmCommand } from './lifecycle.js';
import { assertNotRunningElsewhere, sharedDirectory } from './shared.js';
import { sharedDiskFile } from '../../model/shared.js';

export interface VmAddRequest {
  name: string;
  /** Nodes given with -p, in order: the first is the primary. Empty: pmc places the VM. */
  nodes: string[];
  sizeBytes: number;
  memoryBytes: number;
  vcpus: number;
  /** File name in the ISO store (`ubuntu-2020.iso`). */
  iso: string | undefined;
  ip: string | undefined;
  /** --mac, already validated and lower-case. */
  mac: string | undefined;
  clone: { vm: string; from: string | undefined } | undefined;
  /** File name in the image store whose content becomes the disk (`--image`). */
  image: string | undefined;
  start: boolean;
  /** Overrides the capacity checks (memory, disk space, vCPUs), nothing else. */
  force: boolean;
  /** --shared: the disk is a file on storage.shared, the domain defined on every node. */
  shared: boolean;
}

/** Where a clone's data is read. */
export interface CloneSource {
  vm: string;
  node: string;
  /** The source's DRBD device where it is Primary; elsewhere the LV under it (or a one-node VM's LV). */
  device: string;
  /** Bytes of VM data to copy: DRBD's internal metadata at the end of an LV is not part of it. */
  bytes: number;
  running: boolean;
}

export interface VmAddTarget {
  /**
   * The primary (where the VM starts) first; a single node means no DRBD. A shared VM's are
   * every node, the placed one first.
   */
  nodes: string[];
  /** A shared VM's disk file. */
  shared: { file: string } | undefined;
  drbd: { minor: number; port: number } | undefined;
  /** The requested size rounded up to whole extents of the volume group (a shared VM's file: whole MiB). */
  lvBytes: number;
  clone: CloneSource | undefined;
  /** Why pmc chose these nodes, when it did. */
  placement: string | undefined;
  /** Capacity checks that --force overrode. */
  overridden: string[];
  /** Nodes that could not be asked, so the name, minor and port were not checked against them. */
  unchecked: string[];
}

export interface IsoFacts {
  /** The image on the manager. */
  localFile: string;
  /** Its file name, the same in the nodes' ISO directory. */
  name: string;
  sizeBytes: number;
  sha256: string;
  /** Nodes that hold an identical copy (same size and sha256) already: nothing is sent there. */
  presentOn: string[];
  /** Nodes that hold a different file of that name: it is replaced. */
  differentOn: string[];
}

/** What the handler read or chose before planning. */
export interface VmAddFacts {
  uuid: string;
  mac: string;
  /** The `<cpu>` element of `virsh cpu-baseline --migratable` over the VM's nodes. */
  cpu: string;
  capabilities: Record<string, NodeCapabilities>;
  /** The replication address of each node of a pair. */
  addresses: Record<string, string>;
  iso: IsoFacts | undefined;
  image: ImageFacts | undefined;
}

/** A disk image of the image store (`--image`), as the manager read it. */
export interface ImageFacts {
  localFile: string;
  name: string;
  format: 'raw' | 'qcow2';
  /** Bytes sent to the node. */
  fileBytes: number;
  /** Bytes of disk it fills: a raw file's size, a qcow2 image's virtual size. */
  virtualBytes: number;
}

/**
 * How a VM's disk is kept, which decides what a node needs to hold it: a DRBD pair (an LV and
 * DRBD on both nodes), a single node's LV, or a file on the shared file system (no LV at all).
 */
export type DiskKind = 'pair' | 'single' | 'shared';

/** Where ISO images live on the nodes: the same path on both, so a VM with a CD attached can migrate. */
export const NODE_ISO_DIR = '/var/lib/libvirt/images/pmc-iso';

/**
 * Memory a node keeps for itself (kernel, libvirtd, QEMU's overhead per VM) beyond the memory of
 * the VMs defined for it. The old tool warned below 1 GiB free; half of that is a floor even a
 * small node needs.
 */
export const HOST_RESERVED_MEMORY = 512 * 1024 ** 2;

const CONNECT_WAIT_S = 120;
const RESYNC_STALL_S = 60;
const MiB = 1024 ** 2;

// ---------------------------------------------------------------------------------------------
// Checks, placement and numbering

/**
 * Every check before anything changes; throws a PmcError with the reason. Returns where the VM
 * goes. Pure: the same state and request always give the same answer.
 */
export function checkVmAdd(state: ClusterState, config: Config, request: VmAddRequest): VmAddTarget {
  const { name } = request;
  assertVmName(name);
  assertNotIgnored({ name, ignored: config.ignorePrefix !== '' && name.startsWith(config.ignorePrefix) }, config.ignorePrefix);
  const sharedDir = request.shared ? sharedDirectory(state, config, `vm add --shared ${name}`) : undefined;
  if (request.nodes.length > 0) assertNodeList(state, config, request.nodes, sharedDir !== undefined);
  assertNameFree(state, config, name);
  if (request.mac) assertMacFree(state, request.mac);

  const kind: DiskKind = sharedDir !== undefined ? 'shared'
    : (request.nodes.length > 0 ? request.nodes.length === 2 : config.nodes.length >= 2) ? 'pair' : 'single';
  const paired = kind === 'pair';
  const clone = request.clone ? (sharedDir !== undefined ? sharedCloneSource(state, request.clone) : cloneSource(state, request.clone)) : undefined;
  const byName = (n: string) => state.nodes.find((x) => x.name === n)!;

  let nodes: NodeState[];
  let placement: string | undefined;
  if (request.nodes.length > 0) {
    nodes = request.nodes.map(byName);
    for (const node of nodes) assertSuitable(node, kind);
  } else {
    ({ nodes, placement } = placeVm(state, config, request, kind));
  }
  // A file has no extents; whole MiB keep it a multiple of the guest's sectors.
  const lvBytes = roundUp(request.sizeBytes, kind === 'shared' ? MiB : Math.max(...nodes.map((n) => n.facts!.vg?.extentSizeBytes ?? 1)));

  const overridden: string[] = [];
  const shortfalls = nodes.flatMap((node, i) => capacityProblems(node, request, lvBytes, i === 0 && request.start, kind));
  if (shortfalls.length > 0) {
    if (!request.force) {
      throw new PmcError('PMC_E_CAPACITY', `${name} does not fit: ${shortfalls.join('; ')}`,
        'free memory or disk space, choose other nodes with -p, or pass --force to create it anyway');
    }
    overridden.push(...shortfalls);
  }

  if (clone) {
    const room = paired ? drbdUsableBytes(lvBytes) : lvBytes;
    if (clone.bytes > room) {
      throw new PmcError('PMC_E_SIZE_INVALID',
        `${clone.vm}'s disk holds ${clone.bytes} bytes (${formatBytes(clone.bytes)}), more than the ${room} bytes ${name}'s disk of ${formatBytes(lvBytes)} has room for`,
        `give -s ${lvMiBFor(clone.bytes, paired)}M or more`);
    }
  }
  // A shared VM is defined on every node, so that it can run on any of them: each must be able to.
  const others = sharedDir !== undefined ? state.nodes.filter((n) => n !== nodes[0]) : [];
  for (const node of others) assertSuitable(node, kind);
  return {
    nodes: [...nodes, ...others].map((n) => n.name),
    shared: sharedDir !== undefined ? { file: sharedDiskFile(sharedDir, name) } : undefined,
    drbd: paired ? allocateDrbd(state, config) : undefined,
    lvBytes,
    clone,
    placement,
    overridden,
    unchecked: state.nodes.filter((n) => !asked(n)).map((n) => n.name),
  };
}

/** A node whose facts this run has. */
function asked(node: NodeState): boolean {
  return node.reachable && node.facts !== undefined;
}

function assertNodeList(state: ClusterState, config: Config, nodes: readonly string[], shared: boolean): void {
  selectNodes(config, nodes);
  if (shared && nodes.length > 1) {
    throw new PmcError('PMC_E_USAGE', `-p names ${nodes.join(', ')}: a shared-storage VM starts on one node (and is defined on all)`,
      'pmc vm add --shared -p pm-1 ..., or leave -p out and pmc places the VM');
  }
  if (nodes.length > 2 || new Set(nodes).size !== nodes.length) {
    throw new PmcError('PMC_E_USAGE', `-p names ${nodes.join(', ')}: give one node, or two different ones (the first is the primary)`,
      'pmc vm add -p pm-1 -p pm-2 ..., or leave -p out and pmc places the VM');
  }
  const down = state.nodes.find((n) => nodes.includes(n.name) && !asked(n));
  if (down) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${down.name} could not be asked, so the VM cannot be created there`,
      `${down.error?.message ?? `check that ${down.host} is up`}; or choose other nodes with -p`);
  }
}

/** Nothing of that name anywhere: no domain, LV, resource file or DRBD resource on any node. */
function assertNameFree(state: ClusterState, config: Config, name: string): void {
  const found: string[] = [];
  const resFile = `/etc/drbd.d/${name}.res`;
  for (const node of state.nodes.filter(asked)) {
    const f = node.facts!;
    if (f.domains.some((d) => d.name === name)) found.push(`a domain on ${node.name}`);
    if (f.lvs.some((lv) => lv.name === name)) found.push(`the LV ${config.storage.volumeGroup}/${name} on ${node.name}`);
    if (f.drbdResourceFiles.includes(resFile)) found.push(`${resFile} on ${node.name}`);
    else if (f.drbdResources.some((r) => r.name === name)) found.push(`a DRBD resource on ${node.name}`);
  }
  // The shared file system is one: its listing on the first node that has one stands for all.
  const listing = state.nodes.find((n) => n.facts?.shared?.present)?.facts!.shared!;
  if (listing?.files.some((f) => f.name === `${name}.img`)) found.push(`the file ${listing.directory}/${name}.img`);
  if (found.length > 0) {
    throw new PmcError('PMC_E_VM_EXISTS', `${name} exists already: ${found.join(', ')}`,
      `choose another name, or remove the old one first (pmc vm info ${name} shows it)`);
  }
}

/** The setup a node needs before it can hold the VM; not overridable, it would fail half-way. */
function assertSuitable(node: NodeState, kind: DiskKind): void {
  const problems = setupProblems(node, kind);
  if (problems.length > 0) {
    throw new PmcError('PMC_E_STATE', `${node.name} cannot hold the VM: ${problems.join('; ')}`,
      'pmc cluster verify says how to fix each; pmc pm init prepares a node');
  }
}

function setupProblems(node: NodeState, kind: DiskKind): string[] {
  const f = node.facts!;
  const paired = kind === 'pair';
  const problems: string[] = [];
  if (!f.vg && kind !== 'shared') problems.push('it has no volume group for VM disks');
  if (!f.bridge.present || !f.bridge.isBridge) problems.push(`it has no bridge ${f.bridge.name}`);
  if (!f.libvirt.active) problems.push(`libvirtd does not answer${f.libvirt.failure ? ` (virsh version: ${f.libvirt.failure})` : ''}`);
  if (paired && !f.drbd.moduleLoaded) problems.push('the drbd kernel module is not loaded');
  // DRBD finds a node's section of the resource file by its host name.
  if (paired && f.hostname !== node.name) problems.push(`it calls itself "${f.hostname}", not ${node.name}`);
  return problems;
}

/** Memory the node can still promise: every VM defined for it may end up running there. */
export function freeMemory(node: NodeState): number {
  return (node.facts?.memory?.totalBytes ?? 0) - HOST_RESERVED_MEMORY - node.usage.definedMemoryBytes;
}

/** What a node must have room for to hold a VM (or a copy of one): its memory, disk and vCPUs. */
export type PlacementNeed = Pick<VmAddRequest, 'sizeBytes' | 'memoryBytes' | 'vcpus' | 'force'>;

function capacityProblems(node: NodeState, request: Pick<VmAddRequest, 'memoryBytes' | 'vcpus'>, lvBytes: number, startsHere: boolean, kind: DiskKind): string[] {
  const f = node.facts!;
  const problems: string[] = [];
  if (!f.memory) problems.push(`the memory of ${node.name} is unknown`);
  else if (request.memoryBytes > freeMemory(node)) {
    problems.push(`${node.name} has ${formatBytes(Math.max(0, freeMemory(node)))} of memory left for VMs `
      + `(${formatBytes(f.memory.totalBytes)} less ${formatBytes(HOST_RESERVED_MEMORY)} for itself and ${formatBytes(node.usage.definedMemoryBytes)} for the VMs defined there), ${formatBytes(request.memoryBytes)} needed`);
  } else if (startsHere && request.memoryBytes > f.memory.availableBytes) {
    problems.push(`${node.name} has only ${formatBytes(f.memory.availableBytes)} available now to start it`);
  }
  if (f.vg && kind !== 'shared' && lvBytes > f.vg.freeBytes) {
    problems.push(`${node.name}'s volume group ${f.vg.name} has ${formatBytes(f.vg.freeBytes)} free, ${formatBytes(lvBytes)} needed`);
  }
  if (f.cpus !== undefined && request.vcpus > f.cpus) problems.push(`${node.name} has ${f.cpus} CPUs, ${request.vcpus} vCPUs asked`);
  return problems;
}

/**
 * The nodes that can hold a VM (set up for it and, unless forced, with room for it), the most
 * free memory first, then the most free disk, then in pmc.yaml's order; and why each other
 * node cannot. `exclude` names nodes that are out of the question whatever they hold.
 */
export function rankNodes(state: ClusterState, config: Pick<Config, 'nodes'>, need: PlacementNeed, kind: DiskKind, exclude: readonly string[] = []): { ranked: NodeState[]; rejected: string[] } {
  const rejected: string[] = [];
  const candidates = state.nodes.filter(asked).filter((node) => !exclude.includes(node.name)).filter((node) => {
    const setup = setupProblems(node, kind);
    const extent = node.facts!.vg?.extentSizeBytes ?? 1;
    const capacity = need.force ? [] : capacityProblems(node, need, roundUp(need.sizeBytes, extent), false, kind);
    const problems = [...setup, ...capacity];
    if (problems.length > 0) rejected.push(setup.length ? `${node.name}: ${setup.join(', ')}` : problems.join(', '));
    return problems.length === 0;
  });
  const order = config.nodes.map((n) => n.name);
  const ranked = [...candidates].sort((a, b) => freeMemory(b) - freeMemory(a)
    || (b.facts!.vg?.freeBytes ?? 0) - (a.facts!.vg?.freeBytes ?? 0)
    || order.indexOf(a.name) - order.indexOf(b.name));
  return { ranked, rejected };
}

/** Why pmc chose these nodes, for the plan's notes. */
export function describePlacement(chosen: readonly NodeState[]): string {
  const why = chosen.map((n) => `${n.name} (${formatBytes(Math.max(0, freeMemory(n)))} memory, ${formatBytes(n.facts!.vg?.freeBytes ?? 0)} disk free)`);
  return `placed on ${why.join(' and ')}: the most free memory, then disk`;
}

/** Without -p: the first node of the ranking becomes the primary, the second its peer. */
function placeVm(state: ClusterState, config: Config, request: VmAddRequest, kind: DiskKind): { nodes: NodeState[]; placement: string } {
  const paired = kind === 'pair';
  const want = paired ? 2 : 1;
  const { ranked, rejected } = rankNodes(state, config, request, kind);
  if (ranked.length < want) {
    throw new PmcError(rejected.length > 0 ? 'PMC_E_CAPACITY' : 'PMC_E_STATE',
      `no ${paired ? 'two nodes' : 'node'} can hold ${request.name}${rejected.length ? `: ${rejected.join('; ')}` : ''}`,
      'free memory or disk space, add a node, name the nodes with -p, or pass --force to ignore capacity');
  }
  const chosen = ranked.slice(0, want);
  return { nodes: chosen, placement: describePlacement(chosen) };
}

/** The lowest minor and port in the configured ranges that no resource on any node uses. */
export function allocateDrbd(state: ClusterState, config: Pick<Config, 'storage'>): { minor: number; port: number } {
  const minors = new Set<number>();
  const ports = new Set<number>();
  for (const node of state.nodes) {
    for (const minor of node.facts?.drbd.minorsInKernel ?? []) minors.add(minor);
    for (const r of node.facts?.drbdResources ?? []) {
      for (const host of [r, ...r.hosts]) {
        if (host.minor !== undefined) minors.add(host.minor);
        if (host.port !== undefined) ports.add(host.port);
      }
    }
  }
  const { minors: minorRange, ports: portRange } = config.storage.drbd;
  return { minor: firstFree(minorRange, minors, 'DRBD minor'), port: firstFree(portRange, ports, 'DRBD port') };
}

function firstFree(range: { first: number; last: number }, used: ReadonlySet<number>, what: string): number {
  for (let n = range.first; n <= range.last; n++) if (!used.has(n)) return n;
  throw new PmcError('PMC_E_RANGE_EXHAUSTED', `every ${what} from ${range.first} to ${range.last} is in use on some node`,
    `widen storage.drbd.${what.endsWith('minor') ? 'minors' : 'ports'} in pmc.yaml`);
}

function cloneSource(state: ClusterState, clone: { vm: string; from: string | undefined }): CloneSource {
  const vm = findVm(state, clone.vm);
  const node = clone.from ?? vm.primaryOn[0] ?? vm.home;
  const replica = vm.replicas.find((r) => r.node === node);
  if (replica && !replica.reachable) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${node} could not be asked, so ${vm.name}'s disk cannot be read there`,
      `bring ${node} back, or clone from ${vm.name}'s other node with --from`);
  }
  if (!replica || !(replica.resource || replica.lv)) {
    throw new PmcError('PMC_E_STATE', `${vm.name} has no disk on ${node}`, `its nodes are ${vm.nodes.join(', ')}; pass one of them with --from`);
  }
  const running = vm.runningOn.length > 0;
  const res = replica.resource;
  if (!res) return { vm: vm.name, node, device: replica.lv!.path, bytes: replica.lv!.sizeBytes, running };
  if (res.sizeBytes === undefined || !res.device || !res.disk) {
    throw new PmcError('PMC_E_STATE', `the DRBD resource of ${vm.name} on ${node} is not up, so the size of its data is unknown`,
      `bring it up (pmc pm drbd-up ${node}), or clone from the other node with --from`);
  }
  if (res.role === 'Primary') return { vm: vm.name, node, device: res.device, bytes: res.sizeBytes, running };
  // A Secondary's device cannot be opened; its backing LV holds the same data when UpToDate.
  if (res.diskState !== 'UpToDate') {
    throw new PmcError('PMC_E_STATE', `${vm.name}'s disk on ${node} is ${res.diskState ?? 'unknown'}, not UpToDate`,
      `clone from its primary${vm.primaryOn[0] ? ` (--from ${vm.primaryOn[0]})` : ''}`);
  }
  return { vm: vm.name, node, device: res.disk, bytes: res.sizeBytes, running };
}

/**
 * --clone for a shared VM: another shared VM, shut off (every node answered, so that is known),
 * whose file is copied on the shared file system.
 */
function sharedCloneSource(state: ClusterState, clone: { vm: string; from: string | undefined }): CloneSource {
  const vm = findVm(state, clone.vm);
  if (!vm.shared) {
    throw new PmcError('PMC_E_STATE', `${vm.name} is a DRBD VM: a shared-storage VM is cloned from another shared-storage VM`,
      `clone it without --shared, or pick a shared VM (pmc vm ls -o name,storage)`);
  }
  if (clone.from !== undefined) {
    throw new PmcError('PMC_E_USAGE', `--from names a node to read ${vm.name}'s disk on, but its disk is one file that every node reads`, 'leave --from out');
  }
  if (vm.runningOn.length > 0) {
    throw new PmcError('PMC_E_STATE', `${vm.name} runs on ${vm.runningOn.join(', ')}: a shared VM is cloned only while it is shut off`,
      `pmc vm stop ${quote(vm.name)} first`);
  }
  if (vm.diskBytes === undefined) {
    throw new PmcError('PMC_E_STATE', `${vm.shared.file} is not in the shared directory's listing, so ${vm.name}'s disk size is unknown`,
      'pmc cluster verify says whether every node mounts the shared file system');
  }
  return { vm: vm.name, node: vm.home!, device: vm.shared.file, bytes: vm.diskBytes, running: false };
}

/**
 * DRBD 8.4's internal metadata at the end of the LV: a bitmap bit per 4 KiB of data, aligned
 * to 32 KiB, plus 36 KiB of activity log and superblock (1 GiB: 68 KiB).
 */
export function drbdMetadataBytes(lvBytes: number): number {
  const sectors = Math.ceil(lvBytes / 512);
  return (Math.ceil(sectors / 2 ** 18) * 8 + 72) * 512;
}

export function drbdUsableBytes(lvBytes: number): number {
  return lvBytes - drbdMetadataBytes(lvBytes);
}

/** The smallest LV, in whole MiB, that holds `dataBytes` of VM data (and DRBD's metadata when paired). */
export function lvMiBFor(dataBytes: number, paired: boolean): number {
  let mib = Math.ceil(dataBytes / MiB);
  while (paired && drbdUsableBytes(mib * MiB) < dataBytes) mib++;
  return mib;
}

function roundUp(value: number, unit: number): number {
  return Math.ceil(value / unit) * unit;
}

// ---------------------------------------------------------------------------------------------
// MAC addresses

/** Every MAC address of every domain on every node, with who has it. */
function macsInUse(state: ClusterState): Map<string, string> {
  const macs = new Map<string, string>();
  for (const node of state.nodes) {
    for (const d of node.facts?.domains ?? []) {
      for (const nic of d.interfaces) if (nic.mac) macs.set(nic.mac.toLowerCase(), `${d.name} on ${node.name}`);
    }
  }
  return macs;
}

function assertMacFree(state: ClusterState, mac: string): void {
  const user = macsInUse(state).get(mac);
  if (user) {
    throw new PmcError('PMC_E_MAC_IN_USE', `MAC address ${mac} is used by ${user}`,
      'give another one with --mac, or leave --mac out and pmc picks a free one');
  }
}

/**
 * --mac; else with network.macFromIp and -a the old tool's scheme; else the configured prefix
 * and three random bytes no domain in the cluster has.
 */
export function chooseMac(state: ClusterState, config: Pick<Config, 'network'>, request: VmAddRequest, randomBytes: (count: number) => Uint8Array): string {
  const { macPrefix, macFromIp: fromIp, macByte4 } = config.network;
  if (request.mac) {
    assertMacFree(state, request.mac);
    return request.mac;
  }
  if (fromIp && request.ip) {
    const mac = macFromIp(macPrefix, macByte4, request.ip);
    assertMacFree(state, mac);
    return mac;
  }
  const used = macsInUse(state);
  for (let attempt = 0; attempt < 1000; attempt++) {
    const mac = randomMac(macPrefix, randomBytes);
    if (!used.has(mac)) return mac;
  }
  throw new PmcError('PMC_E_RANGE_EXHAUSTED', `no free MAC address found under the prefix ${macPrefix}`, 'set another network.macPrefix in pmc.yaml');
}

// ---------------------------------------------------------------------------------------------
// The plan

/** The plan that creates the VM; runs checkVmAdd again, so it never plans what the checks refuse. */
export function planVmAdd(state: ClusterState, config: Config, request: VmAddRequest, facts: VmAddFacts): Plan {
  const target = checkVmAdd(state, config, request);
  assertMacFree(state, facts.mac);
  const { name } = request;
  const [primary, peer] = target.nodes as [string, string | undefined];
  const kind = domainKind(target.nodes, facts, config.domainType);
  const vg = config.storage.volumeGroup;
  const lv = `/dev/${vg}/${name}`;
  const disk = target.shared?.file ?? (target.drbd ? `/dev/drbd${target.drbd.minor}` : lv);

  // Each node's LV, resource file, metadata and `up` run at the same time as the other node's.
  const steps: Step[] = [];
  if (target.shared) steps.push(sharedFileStep(primary, target.shared.file, target.lvBytes));
  for (const node of target.shared ? [] : target.nodes) {
    const create = lvCreateStep(node, name, vg, target.lvBytes);
    const blankPair = target.drbd && peer && !target.clone;
    steps.push({ ...(blankPair ? zeroedLvStep(create, lv, target.lvBytes) : create), id: `lv@${node}`, after: [] });
    if (target.drbd) steps.push(...drbdNodeSteps(node, name, resourceFile(config, name, lv, target, facts)));
  }
  const nodeSetup = steps.flatMap((s) => (s.id?.startsWith(target.drbd ? 'up@' : 'lv@') ? [s.id] : []));
  if (target.drbd && peer) steps.push(...drbdStartSteps(primary, peer, name, Boolean(target.clone)).map((s, i) => (i === 0 ? { ...s, after: nodeSetup } : s)));
  if (target.clone) steps.push(cloneStep(state, primary, target.clone, disk, target.lvBytes, Boolean(target.shared)));
  if (target.clone && target.drbd) steps.push(resyncWaitStep(primary, name, target.lvBytes));
  if (facts.image) steps.push(imageStep(primary, facts.image, disk, target, request.name));
  steps.push(...isoSteps(target.nodes, facts.iso));

  const xml = domainXml({
    name,
    uuid: facts.uuid,
    type: kind.type,
    arch: kind.arch,
    memoryBytes: request.memoryBytes,
    vcpus: request.vcpus,
    disk: target.shared ? { type: 'file', file: disk } : { type: 'block', dev: disk },
    cdrom: facts.iso ? `${NODE_ISO_DIR}/${facts.iso.name}` : undefined,
    bridge: config.network.bridge,
    mac: facts.mac,
    cpu: facts.cpu,
    ip: request.ip,
  });
  const undefine = (node: string) => ({ command: commandLine(['virsh', 'undefine', facts.uuid]), why: `undefine the domain ${name} on ${node}` });
  steps.push({
    node: primary,
    command: defineCommand(),
    input: { text: xml },
    why: `define the domain ${name} (UUID ${facts.uuid}) on ${primary}`,
    undo: undefine(primary),
  });
  for (const other of target.nodes.slice(1)) steps.push(definePeerStep(primary, other, name, facts.uuid));
  if (request.start && target.shared) assertNotRunningElsewhere(state, name);
  if (request.start) {
    steps.push({
      node: primary,
      command: commandLine(['virsh', 'start', facts.uuid]),
      why: `start ${name} on ${primary}`,
      undo: { command: commandLine(['virsh', 'destroy', facts.uuid]), why: `power ${name} off on ${primary}` },
    });
  }

  const notes = planNotes(request, target, facts, lv);
  if (kind.note) notes.push(kind.note);
  return { title: planTitle(request, target, facts.mac), steps, notes };
}

/** The architecture both nodes share, and the domain type: as configured, or with auto kvm where every node offers it. */
function domainKind(nodes: readonly string[], facts: VmAddFacts, configured: Config['domainType']): { arch: string; type: 'kvm' | 'qemu'; note: string | undefined } {
  const caps = nodes.map((n) => ({ node: n, ...facts.capabilities[n]! }));
  const arch = caps[0]!.arch;
  const odd = caps.find((c) => c.arch !== arch);
  if (odd) {
    throw new PmcError('PMC_E_STATE', `${caps[0]!.node} is ${arch} but ${odd.node} is ${odd.arch}: a VM cannot move between them`,
      'pair nodes of the same architecture with -p');
  }
  const withoutKvm = caps.find((c) => !c.domainTypes.includes('kvm'));
  if (configured === 'auto') {
    return withoutKvm
      ? { arch, type: 'qemu', note: `libvirt on ${withoutKvm.node} offers no KVM: the VM runs under software emulation (qemu), much slower` }
      : { arch, type: 'kvm', note: undefined };
  }
  const lacking = caps.find((c) => !c.domainTypes.includes(configured));
  if (lacking) {
    throw new PmcError('PMC_E_STATE', `${lacking.node} cannot run ${configured} domains (libvirt offers ${lacking.domainTypes.join(', ') || 'none'})`,
      configured === 'kvm' ? 'load the kvm module on the node, or set "domainType: auto" in pmc.yaml to fall back to software emulation' : 'check the node\'s QEMU installation (virsh capabilities)');
  }
  return { arch, type: configured, note: undefined };
}

/** The resource file, the same on both nodes; allow-two-primaries stays off (migrations turn it on while they run). */
export function resourceFile(config: Pick<Config, 'storage'>, name: string, lv: string, target: Pick<VmAddTarget, 'nodes' | 'drbd'>, facts: Pick<VmAddFacts, 'addresses'>): string {
  const { minor, port } = target.drbd!;
  const { pingTimeout } = config.storage.drbd;
  const on = target.nodes.flatMap((node) => {
    const address = facts.addresses[node]!;
    return [`  on ${node} {`, `    address ${isIPv6(address) ? `ipv6 [${address}]` : address}:${port};`, '  }'];
  });
  return [
    `# Written by pmc vm add: DRBD resource, LV ${lv} and libvirt domain are all named ${name}.`,
    `resource ${name} {`,
    `  device /dev/drbd${minor} minor ${minor};`,
    `  disk ${lv};`,
    '  meta-disk internal;',
    ...on,
    '  disk {',
    `    resync-rate ${config.storage.drbd.resyncRate};`,
    '    c-plan-ahead 0;',
    '  }',
    '  net {',
    '    protocol C;',
    ...(pingTimeout === undefined ? [] : [`    ping-timeout ${Math.round(pingTimeout * 10)};`]),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The LV of a VM's disk on one node, removed again if a later step fails. */
export function lvCreateStep(node: string, name: string, vg: string, bytes: number): Step {
  const lv = `/dev/${vg}/${name}`;
  return {
    node,
    command: commandLine(['lvcreate', '-q', '-y', '-W', 'y', '-Z', 'y', '-L', `${bytes}b`, '-n', name, '--', vg]),
    why: `create the LV ${lv} (${formatBytes(bytes)}) on ${node}`,
    undo: { command: commandLine(['lvremove', '-q', '-y', '--', `${vg}/${name}`]), why: `remove the LV ${lv} on ${node}` },
  };
}

/**
 * The LV step, then zeroes in the whole LV. The two disks of a new pair start UpToDate without a
 * sync (drbdStartSteps), which is true only if they hold the same bytes, and a new LV holds
 * whatever its extents last held on its node: blocks the guest never wrote would differ after a
 * migration or a failover, and a backup taken on the standby would not be the primary's disk.
 * blkdiscard -z lets the device write the zeroes where it can (-f: newer util-linux refuses a
 * device with an old signature without it, older ones do not know it); dd where it cannot.
 */
function zeroedLvStep(create: Step, lv: string, bytes: number): Step {
  const zero = [
    `${commandLine(['blkdiscard', '-f', '-z', lv])} 2>/dev/null`,
    `${commandLine(['blkdiscard', '-z', lv])} 2>/dev/null`,
    commandLine(['dd', 'if=/dev/zero', `of=${lv}`, 'bs=16M', 'iflag=count_bytes', `count=${bytes}`, 'oflag=direct', 'conv=fsync', 'status=none']),
  ].join(' || ');
  return {
    ...create,
    // A failed step is not undone: the LV it created goes with it.
    command: `${create.command} && { ${zero} || { rc=$?; ${create.undo!.command}; exit $rc; }; }`,
    why: `${create.why}, zeroed so that both copies start with the same bytes`,
    timeoutMs: copyTimeoutMs(bytes),
  };
}

/** Writes /etc/drbd.d/<name>.res on a node; `undo` says how to take it back (default: remove it). */
export function resourceFileStep(node: string, name: string, resource: string, undo?: Step['undo']): Step {
  const file = `/etc/drbd.d/${name}.res`;
  const temp = `${file}.tmp`;
  return {
    node,
    // Written aside and renamed, so drbdadm never reads half a file; the name ends in .tmp, not .res, so drbdadm skips it.
    command: `cat > ${quote(temp)} && mv -f ${quote(temp)} ${quote(file)} || { rm -f ${quote(temp)}; exit 1; }`,
    input: { text: resource },
    why: `write the DRBD resource file ${file} on ${node}`,
    undo: undo ?? { command: commandLine(['rm', '-f', file]), why: `remove ${file} on ${node}` },
  };
}

/**
 * Defines the domain on the peer from the primary's own description: the peer gets the same
 * UUID and expanded defaults (machine type, addresses); without that, live migration refuses it.
 */
export function definePeerStep(primary: string, peer: string, name: string, uuid: string): Step {
  return {
    node: peer,
    command: defineCommand(),
    input: { fromNode: primary, command: commandLine(['virsh', 'dumpxml', '--inactive', '--security-info', uuid]) },
    why: `define ${name} on ${peer} from ${primary}'s definition, with the same UUID`,
    undo: { command: commandLine(['virsh', 'undefine', uuid]), why: `undefine the domain ${name} on ${peer}` },
  };
}

export function drbdNodeSteps(node: string, name: string, resource: string): Step[] {
  return [
    { ...resourceFileStep(node, name, resource), id: `res@${node}`, after: [`lv@${node}`] },
    {
      id: `md@${node}`,
      after: [`res@${node}`],
      node,
      // --force: the LV is the one this run created; create-md would otherwise ask about its old content.
      command: commandLine(['drbdadm', '--', '--force', 'create-md', name]),
      why: `write DRBD metadata at the end of the LV on ${node}`,
    },
    {
      id: `up@${node}`,
      after: [`md@${node}`],
      node,
      // A failed up may have attached the disk already: take it down again before failing.
      command: `${commandLine(['drbdadm', 'up', name])} || { rc=$?; ${drbdadmCommand('down', name)}; exit $rc; }`,
      why: `bring the DRBD resource ${name} up on ${node}`,
      undo: { command: drbdadmCommand('down', name), why: `take the DRBD resource ${name} down on ${node}` },
    },
  ];
}

/**
 * Both sides up, then: a blank disk skips the initial sync (both start UpToDate, so the VM can
 * migrate at once); a clone's primary overwrites its peer, which then resyncs in full.
 */
function drbdStartSteps(primary: string, peer: string, name: string, clone: boolean): Step[] {
  const r = quote(name);
  const waitConnected = [
    'i=0',
    `while [ "$(drbdadm cstate ${r})" != Connected ]; do i=$((i + 1)); if [ "$i" -ge ${CONNECT_WAIT_S} ]; then echo ${quote(`not Connected to ${peer} after ${CONNECT_WAIT_S} s:`)} "$(drbdadm cstate ${r})" >&2; exit 1; fi; sleep 1; done`,
  ].join('; ');
  const steps: Step[] = [{
    node: primary,
    command: waitConnected,
    why: `wait until ${primary} and ${peer} connect for ${name}`,
    timeoutMs: (CONNECT_WAIT_S + 30) * 1000,
  }];
  if (clone) {
    steps.push({
      node: primary,
      command: commandLine(['drbdadm', '--', '--overwrite-data-of-peer', 'primary', name]),
      why: `make ${primary} Primary for ${name}; ${peer} resyncs everything from it`,
    });
  } else {
    steps.push({
      node: primary,
      command: commandLine(['drbdadm', '--', '--clear-bitmap', 'new-current-uuid', name]),
      why: `mark both (blank) disks of ${name} UpToDate without the initial full sync`,
    }, {
      node: primary,
      command: commandLine(['drbdadm', 'primary', name]),
      why: `make ${primary} Primary for ${name}`,
    });
  }
  return steps;
}

/** Long copies get time in proportion to their size, at a pessimistic 2 MB/s, and at least 15 minutes. */
function copyTimeoutMs(bytes: number): number {
  return Math.max(15 * 60_000, Math.ceil(bytes / 2e6) * 1000);
}

function cloneStep(state: ClusterState, target: string, source: CloneSource, device: string, lvBytes: number, intoFile: boolean): Step {
  const read = ['dd', `if=${source.device}`, 'bs=4M', 'iflag=count_bytes', `count=${source.bytes}`, 'status=progress'];
  let command: string;
  if (intoFile) {
    // Into the new, all-holes file of its full size on the shared file system (read there too):
    // zeroes stay holes, and the file keeps its size.
    command = commandLine([...read, `of=${device}`, 'conv=sparse,notrunc,fsync']);
  } else if (source.node === target) {
    command = commandLine([...read, `of=${device}`, 'conv=fsync']);
  } else {
    const host = state.nodes.find((n) => n.name === source.node)!.host;
    const ssh = commandLine(['ssh', '-o', 'BatchMode=yes', '--', host, commandLine(read)]);
    // sh has no pipefail: the reading side notes its failure in a file, so a broken transfer
    // that ends early cannot pass for a complete copy.
    command = `failed=$(mktemp) && trap 'rm -f "$failed"' EXIT && { ${ssh} || echo x > "$failed"; } | ${commandLine(['dd', `of=${device}`, 'bs=4M', 'iflag=fullblock', 'conv=fsync', 'status=none'])} && [ ! -s "$failed" ]`;
  }
  return {
    node: target,
    command,
    why: `copy ${source.vm}'s disk (${formatBytes(source.bytes)}) from ${source.node}:${source.device} into ${device} on ${target}`,
    progress: { totalBytes: source.bytes },
    timeoutMs: copyTimeoutMs(lvBytes),
  };
}

/**
 * The image written onto the new primary's device. Through DRBD, with both sides Connected and
 * UpToDate, every write reaches the peer as it happens: the peer needs no resync afterwards.
 * A qcow2 image is sent to a temporary file on the node and converted onto the device there
 * (qemu-img, which libvirt nodes have), so the manager needs no qemu-img.
 */
function imageStep(node: string, image: ImageFacts, device: string, target: VmAddTarget, name: string): Step {
  const room = target.drbd ? drbdUsableBytes(target.lvBytes) : target.lvBytes;
  if (image.virtualBytes > room) {
    throw new PmcError('PMC_E_SIZE_INVALID',
      `the image ${image.name} fills ${image.virtualBytes} bytes (${formatBytes(image.virtualBytes)}), more than the ${room} bytes ${name}'s disk of ${formatBytes(target.lvBytes)} has room for`,
      `give -s ${lvMiBFor(image.virtualBytes, Boolean(target.drbd))}M or more`);
  }
  // A shared disk is a file of its full size already: dd must not cut it to the image's size.
  const write = image.format === 'raw'
    ? commandLine(['dd', `of=${device}`, 'bs=4M', 'iflag=fullblock', target.shared ? 'conv=notrunc,fsync' : 'conv=fsync', 'status=none'])
    : `tmp=$(mktemp /var/tmp/pmc-image.XXXXXX) && trap 'rm -f "$tmp"' EXIT && cat > "$tmp" && ${commandLine(['qemu-img', 'convert', '-q', '-n', '-f', 'qcow2', '-O', 'raw', '-t', 'none'])} "$tmp" ${quote(device)}`;
  return {
    node,
    command: write,
    input: { localFile: image.localFile },
    why: `write the ${image.format} image ${image.name} (${formatBytes(image.virtualBytes)}) onto ${device} on ${node}${target.drbd ? '; DRBD mirrors every write to the peer' : ''}`,
    progress: true,
    timeoutMs: copyTimeoutMs(image.fileBytes),
  };
}

/**
 * A shared VM's disk: a new raw file of the full size, all holes (reads as zeroes). noclobber
 * makes the shell create it with O_EXCL, so a file of that name that appeared since the probe
 * is never overwritten, on NFS too.
 */
function sharedFileStep(node: string, file: string, bytes: number): Step {
  const rm = commandLine(['rm', '-f', file]);
  return {
    node,
    command: `set -C && : > ${quote(file)} && { ${commandLine(['truncate', '-s', bytes, file])} || { rc=$?; ${rm}; exit $rc; }; }`,
    why: `create the raw disk file ${file} (${formatBytes(bytes)}) on the shared file system, from ${node}`,
    undo: { command: rm, why: `remove ${file}` },
  };
}

export function resyncWaitStep(primary: string, name: string, lvBytes: number): Step {
  const r = quote(name);
  const loop = [
    `ds=$(drbdadm dstate ${r}) || exit 1`,
    'if [ "$ds" = UpToDate/UpToDate ]; then exit 0; fi',
    `cs=$(drbdadm cstate ${r}) || exit 1`,
    'case $cs in Connected|*Sync*|WFBitMap*) stalled=0 ;; *) stalled=$((stalled + 5)) ;; esac',
    `if [ "$stalled" -ge ${RESYNC_STALL_S} ]; then echo ${quote(`the resync stopped for ${RESYNC_STALL_S} s:`)} "$cs $ds" >&2; exit 1; fi`,
    `echo "$cs $ds $(drbdadm status ${r} | grep -o 'done:[0-9.]*')"`,
    'sleep 5',
  ];
  return {
    node: primary,
    command: `stalled=0; while :; do ${loop.join('; ')}; done`,
    why: `wait until the peer's copy of ${name} has resynced`,
    progress: true,
    timeoutMs: copyTimeoutMs(lvBytes),
  };
}

function isoSteps(nodes: readonly string[], iso: IsoFacts | undefined): Step[] {
  if (!iso) return [];
  const file = `${NODE_ISO_DIR}/${iso.name}`;
  return nodes.filter((node) => !iso.presentOn.includes(node)).map((node): Step => {
    const replaces = iso.differentOn.includes(node);
    const command = [
      `umask 022 && mkdir -p ${quote(NODE_ISO_DIR)}`,
      `tmp=${quote(file)}.tmp.$$`,
      `trap 'rm -f "$tmp"' EXIT`,
      'cat > "$tmp"',
      `{ [ "$(sha256sum < "$tmp")" = ${quote(`${iso.sha256}  -`)} ] || { echo ${quote('the copy differs from the manager\'s image (sha256)')} >&2; exit 1; }; }`,
      `mv -f "$tmp" ${quote(file)}`,
    ].join(' && ');
    return {
      node,
      command,
      input: { localFile: iso.localFile },
      why: `copy ${iso.name} (${formatBytes(iso.sizeBytes)}) to ${node}:${NODE_ISO_DIR}${replaces ? ', replacing a different file of that name' : ''}`,
      progress: true,
      timeoutMs: copyTimeoutMs(iso.sizeBytes),
      // A file that was there before is not this run's to remove.
      ...(replaces ? {} : { undo: { command: commandLine(['rm', '-f', file]), why: `remove ${file} on ${node}` } }),
    };
  });
}

function defineCommand(): string {
  return `f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`;
}

function planTitle(request: VmAddRequest, target: VmAddTarget, mac: string): string {
  const [primary, peer] = target.nodes;
  const where = target.shared ? `on ${primary}, disk ${target.shared.file} on the shared file system, defined on ${target.nodes.join(', ')}`
    : peer ? `on ${primary} (primary) and ${peer}, DRBD minor ${target.drbd!.minor} port ${target.drbd!.port}` : `on ${primary} only, without DRBD`;
  return `add ${request.name} ${where}: ${formatBytes(target.lvBytes)} disk, ${formatBytes(request.memoryBytes)} memory, ${request.vcpus} vCPU${request.vcpus > 1 ? 's' : ''}, MAC ${mac}`;
}

function planNotes(request: VmAddRequest, target: VmAddTarget, facts: VmAddFacts, lv: string): string[] {
  const notes: string[] = [];
  if (target.placement) notes.push(target.placement);
  if (target.shared) {
    notes.push(`${request.name} can run on any node, never on two at once: each start first checks that every node answers and none runs it`);
  } else if (target.nodes.length === 1) {
    notes.push(`${request.name} lives on ${target.nodes[0]} alone: its disk is the LV ${lv} without DRBD, so it cannot migrate or survive the loss of ${target.nodes[0]}`);
  }
  for (const shortfall of target.overridden) notes.push(`--force: ${shortfall}`);
  if (target.clone) {
    const c = target.clone;
    notes.push(`the disk gets a copy of ${c.vm}'s (${formatBytes(c.bytes)} from ${c.node}:${c.device})${target.drbd ? `; ${target.nodes[1]} then resyncs it in full` : ''}`);
    if (c.running) notes.push(`${c.vm} is running: the copy is only crash-consistent (as after a power cut); shut it down first for a clean copy`);
  }
  for (const node of facts.iso?.presentOn ?? []) notes.push(`${node} has an identical ${facts.iso!.name} already: not copied again`);
  for (const node of facts.iso?.differentOn ?? []) notes.push(`${node} has a different ${facts.iso!.name}: it is replaced (VMs that use it see the new image when they next start)`);
  if (target.drbd && !target.clone) notes.push(`both disks start UpToDate${facts.image ? ` and receive the image together` : ''}: the VM can migrate at once`);
  for (const node of target.unchecked) {
    notes.push(`${node} could not be asked: the name ${request.name}${target.drbd ? `, minor ${target.drbd.minor} and port ${target.drbd.port}` : ''} were not checked against it (pmc cluster verify shows a clash once it is back)`);
  }
  if (request.ip) notes.push(`${request.ip} is kept in the domain's metadata; pmc does not configure the guest's network`);
  return notes;
}
