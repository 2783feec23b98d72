/**
 * Generated clusters for the rebalance planner's tests and its benchmark (test/bench/): nodes of
 * different sizes, most VMs running on the first nodes, each with its DRBD peer on another
 * node; a few one-node, shut off, ignored or resyncing. The same seed gives the same cluster.
 * `emptyNodes`: the last that many nodes hold nothing (just added). Every node's volume group
 * (256 GiB) has as much free as its LVs (1 GiB each) leave.
 */
import { buildCluster, type ClusterState } from '../../../src/model/cluster.js';
import { HOST_RESERVED_MEMORY } from '../../../src/ops/vm/add-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { domain, lv, pairedVm, peer, probes } from '../model/factory.js';

const GiB = 1024 ** 3;

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GeneratedCluster {
  state: ClusterState;
  /** What each VM's parts were built from, to build the cluster again with some VMs moved. */
  rebuild(moved: ReadonlyMap<string, string>): ClusterState;
}

export function generatedCluster(nodeCount: number, vmCount: number, seed = 1, emptyNodes = 0): GeneratedCluster {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const names = Array.from({ length: nodeCount }, (_, i) => `pm-${i + 1}`);
  const holding = names.slice(0, nodeCount - emptyNodes);
  const total = new Map(names.map((n) => [n, pick([128, 256, 512]) * GiB]));
  const cpus = new Map(names.map((n) => [n, pick([16, 32, 64])]));
  const running = new Map(names.map((n) => [n, 0]));
  type Spec = { name: string; home: string; peer: string; memoryBytes: number; vcpus: number; kind: 'paired' | 'one-node' | 'off' | 'resyncing' };
  const specs: Spec[] = [];
  for (let i = 0; i < vmCount; i++) {
    const memoryBytes = pick([1, 2, 2, 4, 8]) * GiB;
    // Skewed toward the first nodes; the next node that has the memory when the chosen one has not.
    let h = Math.floor(holding.length * next() ** 2);
    while (running.get(names[h]!)! + memoryBytes > total.get(names[h]!)! - HOST_RESERVED_MEMORY) h = (h + 1) % holding.length;
    const home = names[h]!;
    let other = pick(holding);
    while (other === home) other = pick(holding);
    const roll = next();
    const spec: Spec = {
      name: `${i % 50 === 0 ? 'ignore' : 'vm'}-${i}`, home, peer: other, memoryBytes, vcpus: pick([1, 2, 4, 8]),
      kind: roll < 0.05 ? 'one-node' : roll < 0.1 ? 'off' : roll < 0.12 ? 'resyncing' : 'paired',
    };
    if (spec.kind !== 'off') running.set(home, running.get(home)! + memoryBytes);
    specs.push(spec);
  }

  const build = (moved: ReadonlyMap<string, string>): ClusterState => {
    const parts = specs.map((s, i): Record<string, Partial<NodeFacts>> => {
      const minor = 10 + i;
      if (s.kind === 'one-node') return { [s.home]: { domains: [domain(s.name, 'running', { minor, memoryBytes: s.memoryBytes, vcpus: s.vcpus })], lvs: [lv(s.name)] } };
      const [home, other] = moved.get(s.name) === s.peer ? [s.peer, s.home] : [s.home, s.peer];
      const vm = pairedVm(s.name, home, other, minor, s.memoryBytes, s.vcpus);
      if (s.kind === 'off') vm[home]!.domains = [domain(s.name, 'shut off', { minor, memoryBytes: s.memoryBytes, vcpus: s.vcpus })];
      if (s.kind === 'resyncing') {
        vm[home]!.drbdResources = [{ ...vm[home]!.drbdResources![0]!, peers: [peer(other, { diskState: 'Inconsistent', replication: 'SyncSource', syncPercent: 40 })] }];
      }
      return vm;
    });
    const load = new Map(names.map((n) => [n, 0]));
    for (const s of specs) {
      if (s.kind === 'off') continue;
      const node = moved.get(s.name) ?? s.home;
      load.set(node, load.get(node)! + s.memoryBytes);
    }
    const lvs = new Map(names.map((n) => [n, 0]));
    for (const part of parts) for (const [node, f] of Object.entries(part)) lvs.set(node, lvs.get(node)! + (f.lvs?.length ?? 0));
    // What the node's kernel would say: its memory less what it keeps and what its VMs use.
    const nodes = Object.fromEntries(names.map((n) => [n, {
      memory: { totalBytes: total.get(n)!, availableBytes: Math.max(0, total.get(n)! - HOST_RESERVED_MEMORY - load.get(n)!) }, cpus: cpus.get(n)!,
      vg: { name: 'vg-pmc', sizeBytes: 256 * GiB, freeBytes: (256 - lvs.get(n)!) * GiB, extentSizeBytes: 4 * 1024 ** 2 },
    }]));
    return buildCluster({ nodes: names.map((name) => ({ name })), ignorePrefix: 'ignore' }, probes(names, ...parts, nodes));
  };
  return { state: build(new Map()), rebuild: build };
}
