/**
 * The plan of `pmc cluster rebalance`, a pure function of the live cluster state: how unevenly
 * the running VMs load the nodes (the score), and the live migrations, each of a running VM to
 * its DRBD peer (a shared-storage VM: to any node in the score), that lower it, chosen
 * greedily, the best move first, as Ganeti's hbal does.
 *
 * The score, lower is better, 0 when every node carries the same share:
 *
 *   score  = sd(mem) + CPU_WEIGHT * sd(cpu)
 *   mem[n] = memory of the domains running on n / total memory of n
 *   cpu[n] = vCPUs of the domains running on n / CPUs of n
 *   sd     = the standard deviation over the nodes that answered (population: divided by their number)
 *
 * Like hbal's cluster score, a sum of weighted standard deviations of per-node shares: shares
 * rather than bytes, so a big node is meant to carry more than a small one. Memory weighs most
 * because a node cannot overcommit it; vCPUs can be overcommitted, so they weigh a quarter as
 * much (CPU_WEIGHT). Every domain running on a node counts, pmc's or not, ignored or not: all of them
 * use the node. Only running, replicated, not ignored VMs move, each at most once, so the plan
 * stays short; a later run plans again from where the VMs run then.
 *
 * With --secondaries, standby copies move first (rebalance-copies.ts says why and how) and the
 * migrations are planned on the cluster as those moves leave it; --max-moves bounds both
 * together. Without it the plan is the migrations alone, as if copies could not move.
 */
import { healthy, isActive, type ClusterState, type ModelConfig, type NodeState, type Vm } from '../../model/cluster.js';
import { freeMemory } from '../vm/add-plan.js';
import { deviation, planCopyMoves, type CopyPlan } from './rebalance-copies.js';

/** How much the vCPU term weighs beside the memory term. */
export const CPU_WEIGHT = 0.25;

/**
 * A move must lower the score by more than this (hbal's --min-gain, scaled to this score): a
 * live migration costs the guest a pause and the network a copy of its memory, which a VM
 * moving between two nodes that differ by a few pages of memory does not earn back. A 64 MiB
 * VM moved off a 4 GiB node that runs three of them gains about 0.01.
 */
const MIN_GAIN = 1e-3;

/** What one node carries, against what it has. */
export interface NodeLoad {
  node: string;
  totalMemoryBytes: number;
  cpus: number;
  /** Domains running there. */
  vms: number;
  runningMemoryBytes: number;
  vcpus: number;
}

export interface RebalanceMove {
  kind: 'migrate';
  vm: string;
  from: string;
  /** The VM's DRBD peer; for a shared-storage VM, any node. */
  to: string;
  memoryBytes: number;
  vcpus: number;
  /** The loads of both nodes before the move. */
  reason: string;
  scoreBefore: number;
  scoreAfter: number;
}

/** A running VM that does not move whatever the score says, and why. */
export interface HeldVm {
  vm: string;
  why: string;
  hint: string | undefined;
}

export interface RebalancePlan {
  scoreBefore: number;
  /** Once every move is done. */
  scoreAfter: number;
  moves: RebalanceMove[];
  held: HeldVm[];
  /** The nodes in the score, before and after the moves. */
  before: NodeLoad[];
  after: NodeLoad[];
  /** --secondaries: the standby copies moved first, with the disk score (its held VMs are in `held` too). */
  copies: CopyPlan | undefined;
}

export interface RebalanceOptions {
  /** At most this many moves; undefined: as many as lower the score. */
  maxMoves?: number | undefined;
  /** VMs whose migration vm mv's checks refused, with why: held, never moved. */
  refused?: ReadonlyMap<string, Omit<HeldVm, 'vm'>>;
  /** Move standby copies too (--secondaries), on the nodes of this configuration. */
  secondaries?: ModelConfig | undefined;
  /** VMs whose copy move vm peer-recreate's checks refused, with why: their copies stay. */
  refusedCopies?: ReadonlyMap<string, Omit<HeldVm, 'vm'>>;
}

/**
 * A VM that may move: indexes into the loads, and the shares it takes from one node and adds to
 * the other. A shared VM has one per node it may go to; once one of them is chosen, all are moved.
 */
interface Candidate {
  vm: string;
  from: number;
  to: number;
  memoryBytes: number;
  vcpus: number;
  moved: boolean;
  /** The candidates of the same VM, this one included. */
  siblings: Candidate[];
  memFrom: number;
  memTo: number;
  cpuFrom: number;
  cpuTo: number;
}

export function planRebalance(live: ClusterState, opts: RebalanceOptions = {}): RebalancePlan {
  const maxMoves = opts.maxMoves ?? Infinity;
  const copies = opts.secondaries ? planCopyMoves(live, opts.secondaries, { maxMoves, refused: opts.refusedCopies ?? new Map() }) : undefined;
  const state = copies?.projected ?? live;
  const scored = state.nodes.filter((n) => n.reachable && n.facts?.memory && n.facts.cpus);
  const loads = scored.map(loadOf);
  const before = loads.map((l) => ({ ...l }));
  const index = new Map(loads.map((l, i) => [l.node, i]));
  const { candidates, held } = candidatesOf(state, loads, index, opts.refused ?? new Map());
  // The peer has the memory for the VM counting every VM that would run there, as vm mv checks
  // it (assertMemory in migrate-plan.ts): every VM defined there fits on it (every VM that
  // could run there, so every one that would), and the memory available now covers this VM and
  // every VM moved there before it in this plan (moves away free memory only once they are
  // done, and --parallel may run them in any order, so they do not count).
  const room = scored.map((n) => (freeMemory(n) < 0 ? -Infinity : n.facts!.memory!.availableBytes));

  const score = new Score(loads);
  const scoreBefore = score.value;
  const moves: RebalanceMove[] = [];
  const runningVms = loads.reduce((sum, l) => sum + l.vms, 0);
  while (moves.length + (copies?.moves.length ?? 0) < maxMoves) {
    let best: Candidate | undefined;
    let bestScore = score.value - MIN_GAIN;
    for (const c of candidates) {
      if (c.moved || c.memoryBytes > room[c.to]!) continue;
      const after = score.after(c);
      if (after < bestScore) {
        best = c;
        bestScore = after;
      }
    }
    if (!best) break;
    const previous = score.value;
    const reason = describeLoads(loads[best.from]!, loads[best.to]!, runningVms);
    move(loads[best.from]!, loads[best.to]!, best);
    room[best.to]! -= best.memoryBytes;
    score.recompute();
    for (const c of best.siblings) c.moved = true;
    moves.push({
      kind: 'migrate', vm: best.vm, from: loads[best.from]!.node, to: loads[best.to]!.node, memoryBytes: best.memoryBytes, vcpus: best.vcpus,
      reason, scoreBefore: previous, scoreAfter: score.value,
    });
  }
  return { scoreBefore, scoreAfter: score.value, moves, held: [...(copies?.held ?? []), ...held], before, after: loads, copies };
}

/** The score of the nodes' loads as they are (scoreOf(plan.after) is plan.scoreAfter). */
export function scoreOf(loads: readonly NodeLoad[]): number {
  return new Score(loads).value;
}

function loadOf(n: NodeState): NodeLoad {
  const running = n.facts!.domains.filter(isActive);
  return {
    node: n.name,
    totalMemoryBytes: n.facts!.memory!.totalBytes,
    cpus: n.facts!.cpus!,
    vms: running.length,
    runningMemoryBytes: running.reduce((sum, d) => sum + d.memoryBytes, 0),
    vcpus: running.reduce((sum, d) => sum + d.vcpus, 0),
  };
}

function move(from: NodeLoad, to: NodeLoad, c: Candidate): void {
  from.vms--;
  from.runningMemoryBytes -= c.memoryBytes;
  from.vcpus -= c.vcpus;
  to.vms++;
  to.runningMemoryBytes += c.memoryBytes;
  to.vcpus += c.vcpus;
}

/**
 * The running VMs that may move (not ignored, on a node in the score, with a DRBD peer in the
 * score, both copies Connected and UpToDate; a shared VM to every other node in the score), and
 * why the others may not.
 */
function candidatesOf(state: ClusterState, loads: readonly NodeLoad[], index: ReadonlyMap<string, number>, refused: ReadonlyMap<string, Omit<HeldVm, 'vm'>>): { candidates: Candidate[]; held: HeldVm[] } {
  const candidates: Candidate[] = [];
  const held: HeldVm[] = [];
  const hold = (vm: Vm, why: string, hint?: string) => held.push({ vm: vm.name, why, hint });
  for (const vm of state.vms) {
    if (vm.runningOn.length !== 1) continue;
    const source = vm.runningOn[0]!;
    const replica = vm.replicas.find((r) => r.node === source)!;
    const resource = replica.resource?.configured ? replica.resource : undefined;
    const peer = resource?.hosts.map((h) => h.name).find((h) => h !== source);
    const peerReplica = vm.replicas.find((r) => r.node === peer);
    const unscored = [source, peer].find((n) => n !== undefined && !index.has(n));
    const why = refused.get(vm.name);
    if (vm.ignored) hold(vm, 'ignored (the ignore prefix)');
    else if (why) hold(vm, why.why, why.hint);
    else if (vm.shared && !index.has(source)) hold(vm, `${source} is not in the score: pmc could not read its memory and CPUs`, 'pmc pm ls shows why');
    else if (vm.shared) {
      const siblings: Candidate[] = [];
      loads.forEach((_, to) => {
        if (to !== index.get(source)) siblings.push(candidate(vm.name, replica.domain!, loads, index.get(source)!, to, siblings));
      });
      candidates.push(...siblings);
    } else if (!resource || !peer) hold(vm, 'no DRBD peer: a one-node VM cannot migrate');
    else if (unscored) hold(vm, `${unscored} is not in the score: pmc could not read its memory and CPUs`, 'pmc pm ls shows why');
    else if (!peerReplica?.resource || !healthy(resource) || !healthy(peerReplica.resource) || vm.flags.includes('split-brain')) {
      hold(vm, 'its DRBD resource is not Connected and UpToDate on both nodes of its pair', 'pmc vm ls shows its replication; pmc cluster verify says how to repair it');
    } else {
      const siblings: Candidate[] = [];
      siblings.push(candidate(vm.name, replica.domain!, loads, index.get(source)!, index.get(peer)!, siblings));
      candidates.push(...siblings);
    }
  }
  return { candidates, held };
}

function candidate(vm: string, domain: { memoryBytes: number; vcpus: number }, loads: readonly NodeLoad[], from: number, to: number, siblings: Candidate[]): Candidate {
  const { memoryBytes, vcpus } = domain;
  const [a, b] = [loads[from]!, loads[to]!];
  return {
    vm, from, to, memoryBytes, vcpus, moved: false, siblings,
    memFrom: memoryBytes / a.totalMemoryBytes, memTo: memoryBytes / b.totalMemoryBytes, cpuFrom: vcpus / a.cpus, cpuTo: vcpus / b.cpus,
  };
}

/** "pm-1 runs 3 of 3 VMs: 75% of its memory, 3 vCPUs on 2 CPUs; pm-2 runs 0: 0%, 0 vCPUs on 2 CPUs" */
function describeLoads(from: NodeLoad, to: NodeLoad, totalVms: number): string {
  const percent = (l: NodeLoad) => `${Math.round((l.runningMemoryBytes / l.totalMemoryBytes) * 100)}%`;
  return `${from.node} runs ${from.vms} of ${totalVms} VMs: ${percent(from)} of its memory, ${from.vcpus} vCPUs on ${from.cpus} CPUs; `
    + `${to.node} runs ${to.vms}: ${percent(to)}, ${to.vcpus} vCPUs on ${to.cpus} CPUs`;
}

/**
 * The score kept as the nodes' shares with their sums and sums of squares, so the score after
 * one move is found from the two nodes it changes alone, without allocating: a plan for 100
 * nodes and 2000 VMs weighs every VM at every step.
 */
class Score {
  private readonly mem: Float64Array;
  private readonly cpu: Float64Array;
  private memSum = 0;
  private memSquares = 0;
  private cpuSum = 0;
  private cpuSquares = 0;
  value = 0;

  constructor(private readonly loads: readonly NodeLoad[]) {
    this.mem = new Float64Array(loads.length);
    this.cpu = new Float64Array(loads.length);
    this.recompute();
  }

  /** From scratch after each move, so rounding errors do not add up over a long plan. */
  recompute(): void {
    this.memSum = this.memSquares = this.cpuSum = this.cpuSquares = 0;
    this.loads.forEach((l, i) => {
      const m = (this.mem[i] = l.runningMemoryBytes / l.totalMemoryBytes);
      const c = (this.cpu[i] = l.vcpus / l.cpus);
      this.memSum += m;
      this.memSquares += m * m;
      this.cpuSum += c;
      this.cpuSquares += c * c;
    });
    this.value = this.of(this.memSum, this.memSquares, this.cpuSum, this.cpuSquares);
  }

  /** The score if `c` moved. */
  after(c: Candidate): number {
    const [ma, mb, ca, cb] = [this.mem[c.from]!, this.mem[c.to]!, this.cpu[c.from]!, this.cpu[c.to]!];
    const [ma2, mb2, ca2, cb2] = [ma - c.memFrom, mb + c.memTo, ca - c.cpuFrom, cb + c.cpuTo];
    return this.of(
      this.memSum - c.memFrom + c.memTo, this.memSquares - ma * ma - mb * mb + ma2 * ma2 + mb2 * mb2,
      this.cpuSum - c.cpuFrom + c.cpuTo, this.cpuSquares - ca * ca - cb * cb + ca2 * ca2 + cb2 * cb2,
    );
  }

  private of(memSum: number, memSquares: number, cpuSum: number, cpuSquares: number): number {
    const n = this.loads.length;
    return n === 0 ? 0 : deviation(memSum, memSquares, n) + CPU_WEIGHT * deviation(cpuSum, cpuSquares, n);
  }
}
