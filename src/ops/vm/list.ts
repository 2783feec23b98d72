import type { OpContext, Report } from '../engine/context.js';
import type { ClusterState, Vm } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { PmcError } from '../../util/errors.js';

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
  /** `shared`: the disk is a file in storage.shared.directory (`sharedFile`), else a DRBD pair. */
  storage: 'drbd' | 'shared';
  sharedFile: string | undefined;
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
    storage: vm.shared ? 'shared' : 'drbd',
    sharedFile: vm.shared?.file,
    replication: vm.replication,
    flags: vm.flags,
  };
}

export async function listVms(ctx: OpContext, names: readonly string[]): Promise<Report<VmSummary[]>> {
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

export async function showVm(ctx: OpContext, name: string): Promise<Report<VmDetails>> {
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
