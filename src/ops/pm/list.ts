import type { OpContext, Report } from '../engine/context.js';
import type { ClusterState, NodeState } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { selectNodes } from '../../config/targets.js';

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

export async function listNodes(ctx: OpContext, names: readonly string[]): Promise<Report<PmSummary[]>> {
  selectNodes(ctx.config, names);
  const state = await readCluster(ctx);
  const nodes = state.nodes.filter((n) => names.length === 0 || names.includes(n.name));
  return {
    data: nodes.map((n) => summarizeNode(n, state)),
    status: nodes.every((n) => n.reachable) ? 'ok' : 'partial',
    warnings: unreachableWarnings({ ...state, nodes }),
  };
}

