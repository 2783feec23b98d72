import type { Context } from '../cli/context.js';
import type { ClusterState, NodeState, Vm } from '../model/cluster.js';
import { readCluster, unreachableWarnings } from '../model/read.js';
import type { Report } from '../render/output.js';
import { selectNodes } from '../config/targets.js';
import { PmcError } from '../util/errors.js';

/** One row of `pmc pm ls`: what an operator needs to know about a node at a glance. */
export interface PmSummary {
  name: string;
  host: string;
  reachable: boolean;
  /** Why the node could not be asked. */
  error: string | undefined;
  hostname: string | undefined;
  cpus: number | undefined;
  memoryTotalBytes: number | undefined;
  memoryAvailableBytes: number | undefined;
  running: { name: string; memoryBytes: number }[];
  runningMemoryBytes: number;
  shutOff: { name: string; memoryBytes: number }[];
  shutOffMemoryBytes: number;
  vg: { name: string; sizeBytes: number; freeBytes: number } | undefined;
  drbd: { kernelVersion: string | undefined; utilsVersion: string | undefined; moduleLoaded: boolean } | undefined;
  /** DRBD disks by local disk state. */
  drbdDisks: Record<string, number>;
  /** Every VM with a domain or a resource on this node. */
  vms: string[];
}

export function summarizeNode(node: NodeState, state: ClusterState): PmSummary {
  const f = node.facts;
  const usage = node.usage;
  return {
    name: node.name,
    host: node.host,
    reachable: node.reachable,
    error: node.error?.message,
    hostname: f?.hostname,
    cpus: f?.cpus,
    memoryTotalBytes: f?.memory?.totalBytes,
    memoryAvailableBytes: f?.memory?.availableBytes,
    running: usage.running,
    runningMemoryBytes: usage.runningMemoryBytes,
    shutOff: usage.shutOff,
    shutOffMemoryBytes: usage.shutOff.reduce((s, v) => s + v.memoryBytes, 0),
    vg: f?.vg ? { name: f.vg.name, sizeBytes: f.vg.sizeBytes, freeBytes: f.vg.freeBytes } : undefined,
    drbd: f ? { kernelVersion: f.drbd.kernelVersion, utilsVersion: f.drbd.utilsVersion, moduleLoaded: f.drbd.moduleLoaded } : undefined,
    drbdDisks: usage.drbdDisks,
    vms: state.vms.filter((vm) => vm.replicas.some((r) => r.node === node.name && (r.domain || r.resource))).map((vm) => vm.name),
  };
}

export async function listNodes(ctx: Context, names: readonly string[]): Promise<Report<PmSummary[]>> {
  selectNodes(ctx.config, names);
  const state = await readCluster(ctx);
  const nodes = state.nodes.filter((n) => names.length === 0 || names.includes(n.name));
  return {
    data: nodes.map((n) => summarizeNode(n, state)),
    status: nodes.every((n) => n.reachable) ? 'ok' : 'partial',
    warnings: unreachableWarnings({ ...state, nodes }),
  };
}

/** One row of `pmc vm ls`. */
export interface VmSummary {
  name: string;
  node: string | undefined;
  peer: string | undefined;
  nodes: string[];
  state: string;
  runningOn: string[];
  vcpus: number | undefined;
  memoryBytes: number | undefined;
  diskBytes: number | undefined;
  minor: number | undefined;
  port: number | undefined;
  uuid: string | undefined;
  replication: Vm['replication'];
  flags: string[];
}

export function summarizeVm(vm: Vm): VmSummary {
  return {
    name: vm.name,
    node: vm.home,
    peer: vm.peer,
    nodes: vm.nodes,
    state: vm.state,
    runningOn: vm.runningOn,
    vcpus: vm.vcpus,
    memoryBytes: vm.memoryBytes,
    diskBytes: vm.diskBytes,
    minor: vm.minor,
    port: vm.port,
    uuid: vm.uuid,
    replication: vm.replication,
    flags: vm.flags,
  };
}

export async function listVms(ctx: Context, names: readonly string[]): Promise<Report<VmSummary[]>> {
  const state = await readCluster(ctx);
  const vms = names.length === 0 ? state.vms : names.map((n) => findVm(state, n));
  const touched = new Set(vms.flatMap((vm) => vm.nodes));
  const partial = state.nodes.some((n) => !n.reachable && (names.length === 0 || touched.has(n.name)));
  return {
    data: vms.map(summarizeVm),
    status: partial ? 'partial' : 'ok',
    warnings: unreachableWarnings(state),
  };
}

/** `pmc vm info`: the summary plus every node's raw view of the VM. */
export interface VmDetails extends VmSummary {
  ignored: boolean;
  replicas: Vm['replicas'];
}

export async function showVm(ctx: Context, name: string): Promise<Report<VmDetails>> {
  const state = await readCluster(ctx);
  const vm = findVm(state, name);
  return {
    data: { ...summarizeVm(vm), ignored: vm.ignored, replicas: vm.replicas },
    status: vm.replicas.every((r) => r.reachable) ? 'ok' : 'partial',
    warnings: unreachableWarnings(state),
  };
}

export function findVm(state: ClusterState, name: string): Vm {
  const vm = state.vms.find((v) => v.name === name);
  if (vm) return vm;
  const down = state.nodes.filter((n) => !n.reachable).map((n) => n.name);
  throw new PmcError('PMC_E_VM_UNKNOWN', `no VM named "${name}" on any ${down.length ? 'reachable ' : ''}node`,
    down.length ? `${down.join(', ')} could not be asked; it may be there` : 'run "pmc vm ls" to see the VMs');
}
