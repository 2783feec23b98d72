/**
 * The first half of `pmc cluster rebalance --secondaries`, a pure function of the live state:
 * the standby copies to move (as `pmc vm peer-recreate NEWPM VM` moves one) so that every node
 * holds its share of the replicated disks, and the cluster as it will be once they are moved.
 *
 * Why copies first: a running VM can only live-migrate to the node of its standby copy, so a
 * node that holds no copies (just added) can never receive one by migration, however idle it
 * is. Copies also cost their node disk. So the copies are spread first, by the disk score:
 *
 *   disk score = sd(used[n] / size[n])   over the nodes with a volume group that answered
 *   used[n]    = what the LVs of n's volume group take (size - free: a VG is full whatever fills it)
 *
 * and the migrations are then planned (rebalance-plan.ts) on the pairs as they will be, so a
 * VM whose copy went to the new node may then run there.
 *
 * A move takes a VM's standby copy from its peer to a node that is neither of its pair, that
 * answered, has the VG room for the LV and the memory for the VM to start there after a
 * failover (every VM defined there fits, as vm add places copies), holds nothing of the VM and
 * uses neither its DRBD minor nor its port. Only VMs with one DRBD Primary, both copies
 * Connected and UpToDate, not ignored, not marked by a failover or a split brain, move; each at
 * most once; greedy, the best gain first, as the migrations.
 */
import { buildCluster, healthy, type ClusterState, type ModelConfig, type NodeProbe } from '../../model/cluster.js';
import type { DrbdResource, NodeFacts } from '../../probe/types.js';
import { freeMemory } from '../vm/add-plan.js';
import type { HeldVm } from './rebalance-plan.js';

/**
 * A copy move must lower the spread of the disk shares, the sum of their squared deviations
 * from the mean (n times the variance: the same for a move between two nodes however many nodes
 * there are, where the score, a standard deviation, shrinks with their number), by more than
 * this. It costs a full resync of the LV and leaves the VM without a second copy until the
 * resync ends, so nodes must differ by more than the copy itself: moving a copy of share b from
 * a node of share s1 to one of share s2 (same VG sizes) gains 2b(s1 - s2 - b), so a copy moves
 * when the gap exceeds b + MIN/(2b): a 64 MiB copy in 8 GiB VGs (b = 0.008) from a node
 * holding two to an empty one gains 1.2e-4; a 1 GiB copy in 1 TiB VGs moves when the nodes
 * differ by 0.6% of their VGs.
 */
const DISK_MIN_GAIN = 1e-5;

/** What one node's volume group holds, against its size. */
export interface DiskLoad {
  node: string;
  vgBytes: number;
  usedBytes: number;
  /** VM copies (LVs of replicated VMs) there. */
  copies: number;
}

export interface CopyMove {
  kind: 'move copy';
  vm: string;
  /** The DRBD Primary: keeps its copy, and the new one is resynced from it. */
  primary: string;
  /** The node whose standby copy goes. */
  from: string;
  to: string;
  lvBytes: number;
  /** The disks of both nodes before the move. */
  reason: string;
  /** The disk score. */
  scoreBefore: number;
  scoreAfter: number;
}

export interface CopyPlan {
  scoreBefore: number;
  scoreAfter: number;
  moves: CopyMove[];
  held: HeldVm[];
  before: DiskLoad[];
  after: DiskLoad[];
  /** The cluster once every copy is moved (the same object when none moves). */
  projected: ClusterState;
}

export interface CopyOptions {
  maxMoves: number;
  /** VMs whose copy move pmc vm peer-recreate's checks refused, with why: their copies stay. */
  refused: ReadonlyMap<string, Omit<HeldVm, 'vm'>>;
}

interface Candidate {
  vm: string;
  primary: number;
  from: number;
  /** Nodes holding any part of the VM: never a target. */
  own: ReadonlySet<number>;
  lvBytes: number;
  /** The old copy's LV: what its node gets back. */
  oldLvBytes: number;
  memoryBytes: number;
  minor: number | undefined;
  port: number | undefined;
  moved: boolean;
  /** Candidates of one group take the same bytes from the same node: their best target is the same unless they may not go there. */
  group: number;
}

export function planCopyMoves(state: ClusterState, config: ModelConfig, opts: CopyOptions): CopyPlan {
  const scored = state.nodes.filter((n) => n.reachable && n.facts?.vg && n.facts.vg.sizeBytes > 0);
  const index = new Map(scored.map((n, i) => [n.name, i]));
  const copies = new Map<string, number>();
  for (const vm of state.vms) {
    if (!vm.replicas.some((r) => r.resource)) continue;
    for (const r of vm.replicas) if (r.lv) copies.set(r.node, (copies.get(r.node) ?? 0) + 1);
  }
  const loads = scored.map((n): DiskLoad => ({
    node: n.name, vgBytes: n.facts!.vg!.sizeBytes, usedBytes: n.facts!.vg!.sizeBytes - n.facts!.vg!.freeBytes, copies: copies.get(n.name) ?? 0,
  }));
  const before = loads.map((l) => ({ ...l }));
  const free = Float64Array.from(scored, (n) => n.facts!.vg!.freeBytes);
  const memory = Float64Array.from(scored, (n) => freeMemory(n));
  const minors = scored.map((n) => new Set(n.facts!.drbdResources.map((r) => r.minor)));
  const ports = scored.map((n) => new Set(n.facts!.drbdResources.map((r) => r.port)));
  const held: HeldVm[] = [];
  const candidates: Candidate[] = [];
  for (const vm of state.vms) {
    const why = opts.refused.get(vm.name);
    if (why) held.push({ vm: vm.name, ...why });
    if (why || vm.ignored || vm.primaryOn.length !== 1 || vm.authority || vm.flags.includes('split-brain')) continue;
    const primary = vm.primaryOn[0]!;
    const replica = (node: string) => vm.replicas.find((r) => r.node === node);
    const res = replica(primary)?.resource;
    const hosts = res?.configured ? res.hosts.map((h) => h.name) : [];
    const peer = hosts.find((h) => h !== primary);
    const peerReplica = peer === undefined ? undefined : replica(peer);
    const lvBytes = replica(primary)?.lv?.sizeBytes;
    if (!res || hosts.length !== 2 || !peerReplica?.resource || !healthy(res) || !healthy(peerReplica.resource) || lvBytes === undefined) continue;
    if (vm.runningOn.some((n) => n !== primary) || !index.has(primary) || !index.has(peer!)) continue;
    candidates.push({
      vm: vm.name, primary: index.get(primary)!, from: index.get(peer!)!,
      own: new Set(vm.nodes.flatMap((n) => (index.has(n) ? [index.get(n)!] : []))),
      lvBytes, oldLvBytes: peerReplica.lv?.sizeBytes ?? 0, memoryBytes: vm.memoryBytes ?? 0, minor: res.minor, port: res.port, moved: false, group: 0,
    });
  }
  const groups = new Map<string, number>();
  for (const c of candidates) {
    const key = `${c.from} ${c.lvBytes} ${c.oldLvBytes} ${c.memoryBytes}`;
    c.group = groups.get(key) ?? groups.size;
    groups.set(key, c.group);
  }

  const share = Float64Array.from(loads, (l) => l.usedBytes / l.vgBytes);
  const perByte = Float64Array.from(loads, (l) => 1 / l.vgBytes);
  let sum = share.reduce((a, b) => a + b, 0);
  let squares = share.reduce((a, b) => a + b * b, 0);
  const n = loads.length;
  const score = () => (n === 0 ? 0 : deviation(sum, squares, n));
  const spread = (total: number, sumOfSquares: number) => sumOfSquares - (total * total) / n;
  const scoreBefore = score();
  const moves: CopyMove[] = [];
  /** May `c` go to t, beside room: nothing of it there, neither its minor nor its port in use. */
  const allowed = (c: Candidate, t: number) => !c.own.has(t) && !minors[t]!.has(c.minor) && !ports[t]!.has(c.port);
  /** The best target of `c` (-1: none below `bound`) and the spread after moving it there; `check`: only where it is allowed (checked for the best so far alone). */
  const bestTarget = (c: Candidate, bound: number, check: boolean): [number, number] => {
    const f = c.from;
    const sf = share[f]!;
    const sf2 = sf - c.oldLvBytes * perByte[f]!;
    const partSum = sum - sf + sf2;
    const partSquares = squares - sf * sf + sf2 * sf2;
    let to = -1;
    let lowest = bound;
    for (let t = 0; t < n; t++) {
      if (free[t]! < c.lvBytes || memory[t]! < c.memoryBytes) continue;
      const st = share[t]!;
      const st2 = st + c.lvBytes * perByte[t]!;
      const after = spread(partSum - st + st2, partSquares - st * st + st2 * st2);
      if (after < lowest && (!check || allowed(c, t))) {
        to = t;
        lowest = after;
      }
    }
    return [to, lowest];
  };
  const groupTarget = new Int32Array(groups.size);
  const groupSpread = new Float64Array(groups.size);
  while (moves.length < opts.maxMoves) {
    let best: { c: Candidate; to: number } | undefined;
    let bestSpread = spread(sum, squares) - DISK_MIN_GAIN;
    // Each group's best target once per move, ignoring what its members may not do; a member
    // that may not go there is weighed on its own: 2000 VMs times 100 nodes per move otherwise.
    groupTarget.fill(-2);
    for (const c of candidates) {
      if (c.moved) continue;
      if (groupTarget[c.group] === -2) [groupTarget[c.group], groupSpread[c.group]] = bestTarget(c, Infinity, false);
      const t = groupTarget[c.group]!;
      if (t < 0 || groupSpread[c.group]! >= bestSpread) continue;
      const [to, after] = allowed(c, t) ? [t, groupSpread[c.group]!] : bestTarget(c, bestSpread, true);
      if (to >= 0 && after < bestSpread) {
        best = { c, to };
        bestSpread = after;
      }
    }
    if (!best) break;
    const { c, to } = best;
    const [from, target] = [loads[c.from]!, loads[to]!];
    const previous = score();
    const reason = `${describeDisk(from)}; ${describeDisk(target)}`;
    from.usedBytes -= c.oldLvBytes;
    from.copies--;
    target.usedBytes += c.lvBytes;
    target.copies++;
    free[c.from]! += c.oldLvBytes;
    free[to]! -= c.lvBytes;
    memory[c.from]! += c.memoryBytes;
    memory[to]! -= c.memoryBytes;
    minors[to]!.add(c.minor);
    ports[to]!.add(c.port);
    c.moved = true;
    // From scratch, so rounding errors do not add up over a long plan.
    loads.forEach((l, i) => { share[i] = l.usedBytes / l.vgBytes; });
    sum = share.reduce((a, b) => a + b, 0);
    squares = share.reduce((a, b) => a + b * b, 0);
    moves.push({
      kind: 'move copy', vm: c.vm, primary: loads[c.primary]!.node, from: from.node, to: target.node, lvBytes: c.lvBytes,
      reason, scoreBefore: previous, scoreAfter: score(),
    });
  }
  return { scoreBefore, scoreAfter: score(), moves, held, before, after: loads, projected: moves.length === 0 ? state : afterCopyMoves(state, config, moves) };
}

/** "pm-2 holds 2 copies: 25% of its volume group" */
function describeDisk(l: DiskLoad): string {
  return `${l.node} holds ${l.copies} cop${l.copies === 1 ? 'y' : 'ies'}: ${Math.round((l.usedBytes / l.vgBytes) * 100)}% of its volume group`;
}

/** The standard deviation of n values from their sum and the sum of their squares. */
export function deviation(sum: number, squares: number, n: number): number {
  return Math.sqrt(Math.max(0, squares / n - (sum / n) ** 2));
}

/**
 * The cluster as it will be once the copies are moved: on each new node the old peer's domain
 * (shut off), LV, resource and resource file, the resource naming the new node instead of the
 * old; on the primary its resource pointing at the new node; the old peer without them.
 */
export function afterCopyMoves(state: ClusterState, config: ModelConfig, moves: readonly CopyMove[]): ClusterState {
  const facts = new Map(state.nodes.flatMap((n): [string, NodeFacts][] => (n.reachable && n.facts ? [[n.name, { ...n.facts }]] : [])));
  const renamed = (r: DrbdResource, from: string, to: string): DrbdResource => ({
    ...r,
    hosts: r.hosts.map((h) => (h.name === from ? { ...h, name: to, address: undefined } : h)),
    peers: r.peers.map((p) => (p.node === from ? { ...p, node: to } : p)),
  });
  for (const m of moves) {
    const [old, primary, next] = [facts.get(m.from)!, facts.get(m.primary)!, facts.get(m.to)!];
    const vm = state.vms.find((v) => v.name === m.vm)!;
    const oldPart = vm.replicas.find((r) => r.node === m.from)!;
    const primaryPart = vm.replicas.find((r) => r.node === m.primary)!;
    const res = oldPart.resource!;
    const lv = { ...(oldPart.lv ?? primaryPart.lv!), sizeBytes: m.lvBytes };
    const domain = oldPart.domain ?? (primaryPart.domain && { ...primaryPart.domain, state: 'shut off' as const });
    next.domains = [...next.domains, ...(domain ? [domain] : [])];
    next.lvs = [...next.lvs, lv];
    next.drbdResources = [...next.drbdResources, renamed(res, m.from, m.to)];
    next.drbdResourceFiles = [...next.drbdResourceFiles, ...(res.configFile ? [res.configFile] : [])];
    next.vg = next.vg && { ...next.vg, freeBytes: next.vg.freeBytes - m.lvBytes };
    primary.drbdResources = primary.drbdResources.map((r) => (r.name === res.name ? renamed(r, m.from, m.to) : r));
    old.domains = old.domains.filter((d) => d !== oldPart.domain);
    old.lvs = old.lvs.filter((l) => l !== oldPart.lv);
    old.drbdResources = old.drbdResources.filter((r) => r !== res);
    old.drbdResourceFiles = old.drbdResourceFiles.filter((f) => f !== res.configFile);
    old.vg = old.vg && { ...old.vg, freeBytes: old.vg.freeBytes + (oldPart.lv?.sizeBytes ?? 0) };
  }
  const probes = state.nodes.map((n): NodeProbe => {
    const f = facts.get(n.name);
    return f ? { node: n.name, ok: true, value: f } : { node: n.name, ok: false, error: n.error ?? { code: 'PMC_E_NODE_UNREACHABLE', message: `${n.name}: not reachable` } };
  });
  return buildCluster(config, probes);
}
