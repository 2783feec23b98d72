/**
 * `pmc cluster start`: bring the whole cluster back after a power loss. DRBD comes up on every
 * reachable node; once the resources have connected, each VM starts on the one node whose data
 * is current, never on two. When the two sides diverged (split brain), or both claim current
 * data but cannot connect, pmc refuses that VM and says how to decide: it never guesses.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { ClusterState, Vm, VmReplica } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import type { DrbdConnectionState, DrbdResource } from '../../probe/types.js';
import { commandLine, quote } from '../../util/shell.js';
import type { ApplyResult } from '../engine/execute.js';
import { underLock, type LockedRun } from '../engine/mutate.js';
import { findVm } from '../vm/list.js';
import type { Plan, Step } from '../engine/plan.js';
import { drbdUpRows, planDrbdUp, unreachableNodes, type DrbdUpResult } from '../pm/drbd-up.js';
import { assertNotRunningElsewhere } from '../vm/shared.js';
import { isPmcError } from '../../util/errors.js';

export type StartDecision =
  | { vm: string; kind: 'start'; node: string; degraded: boolean; reason: string; steps: Step[] }
  /** Nothing to do: already running, or ignored. */
  | { vm: string; kind: 'skip'; reason: string }
  /** Not decidable yet: DRBD is still coming up, connecting, or noticing a lost peer; `fix` if it stays so. */
  | { vm: string; kind: 'pending'; reason: string; fix?: string }
  | { vm: string; kind: 'refuse'; reason: string; fix: string };

export interface VmStartOutcome {
  decision: StartDecision;
  /** How the start went (not set for a dry run, or when nothing was started). */
  result: ApplyResult | undefined;
}

export interface ClusterStartResult {
  mode: 'dry-run' | 'applied';
  /** Everything that would run (dry run) or was planned at first: DRBD, then the VM starts. */
  plan: Plan;
  /** drbd-up on every reachable node. */
  drbd: DrbdUpResult;
  vms: VmStartOutcome[];
  /** Seconds spent waiting for DRBD to connect. */
  waitedSeconds: number;
}

export interface ClusterStartOptions {
  /** Only these VMs (and their DRBD resources); empty: every VM. */
  only: readonly string[];
  dryRun: boolean;
  /** How long to wait for resources to connect after drbd-up. */
  waitSeconds: number;
}

/** Connection states that change by themselves within seconds, unlike Connected and StandAlone. */
const SETTLED: readonly DrbdConnectionState[] = ['Connected', 'StandAlone'];
const START_TIMEOUT_MS = 180_000;
const POLL_INTERVAL_MS = 3000;

interface Side {
  node: string;
  replica: VmReplica;
  resource: DrbdResource | undefined;
}

const up = (s: Side): boolean => s.replica.reachable && s.resource?.up === true;
const current = (s: Side): boolean => up(s) && s.resource!.diskState === 'UpToDate';
const connected = (s: Side): boolean => up(s) && s.resource!.peers.some((p) => p.connection === 'Connected');
const connection = (s: Side): DrbdConnectionState => s.resource?.peers[0]?.connection ?? 'StandAlone';

function describeSide(s: Side): string {
  if (!s.replica.reachable) return `${s.node} could not be asked`;
  if (!s.resource) return `${s.node} has no resource file for it`;
  if (!s.resource.up) return `DRBD is down on ${s.node}`;
  return `${s.node} is ${s.resource.role ?? 'Unknown'} ${s.resource.diskState ?? 'DUnknown'}, ${connection(s)}`;
}

/**
 * Where a VM should start, as a pure function of its state. `drbdUpDone`: drbd-up has run, so a
 * resource still down on a reachable node stays down (its data counts as unknown).
 */
export function decideStart(vm: Vm, drbdUpDone: boolean): StartDecision {
  const base = { vm: vm.name };
  if (vm.ignored) return { ...base, kind: 'skip', reason: 'ignored (its name has the ignore prefix)' };
  if (vm.runningOn.length > 0) {
    const where = vm.replicas.filter((r) => vm.runningOn.includes(r.node)).map((r) => `${r.domain!.state} on ${r.node}`);
    return { ...base, kind: 'skip', reason: `already ${where.join(' and ')}` };
  }

  const hosts = vm.replicas.find((r) => r.resource)?.resource?.hosts.map((h) => h.name);
  if (!hosts) return decideWithoutDrbd(vm);
  const retry = `then pmc cluster start --only ${quote(vm.name)}`;
  if (hosts.length !== 2) {
    return { ...base, kind: 'refuse', reason: `its DRBD resource has ${hosts.length} nodes (${hosts.join(', ')}); pmc starts two-node pairs only`, fix: `start it by hand: drbdadm primary ${quote(vm.name)} && virsh start ${quote(vm.name)} on the right node` };
  }
  const sides = hosts.map((node): Side => {
    const replica = vm.replicas.find((r) => r.node === node) ?? { node, reachable: false, domain: undefined, resource: undefined, lv: undefined };
    return { node, replica, resource: replica.resource };
  });
  const resourceName = sides.find((s) => s.resource)!.resource!.name;
  const [a, b] = sides as [Side, Side];
  // After a failover the record on the survivor decides: the lost node's copy is stale whatever
  // DRBD on it says (a crashed primary comes back UpToDate and StandAlone, like a split brain).
  if (vm.authority) return decideAfterFailover(vm, vm.authority, sides, resourceName, drbdUpDone);

  // Both StandAlone and UpToDate is how an 8.4 split brain looks (only the kernel log says more).
  if (sides.some((s) => s.resource?.splitBrain) || sides.every((s) => current(s) && connection(s) === 'StandAlone')) {
    return {
      ...base, kind: 'refuse',
      reason: `split brain: the data on ${a.node} and ${b.node} diverged (${describeSide(a)}; ${describeSide(b)})`,
      fix: `decide whose data to keep (the other node's changes since the split are lost); on the other node: drbdadm secondary ${quote(resourceName)} && drbdadm connect --discard-my-data ${quote(resourceName)}; on the kept node: drbdadm connect ${quote(resourceName)}; ${retry}`,
    };
  }
  const waitingForDrbd = sides.filter((s) => s.replica.reachable && s.resource && !s.resource.up);
  if (!drbdUpDone && waitingForDrbd.length > 0) {
    return { ...base, kind: 'pending', reason: `DRBD is down on ${waitingForDrbd.map((s) => s.node).join(' and ')}: decided once drbd-up has brought it up` };
  }
  if (up(a) && up(b) && !(connected(a) && connected(b)) && sides.every((s) => connected(s) || !SETTLED.includes(connection(s)))) {
    return { ...base, kind: 'pending', reason: `${a.node} and ${b.node} are not connected yet (${connection(a)}/${connection(b)})` };
  }
  // A peer pmc cannot ask but DRBD still talks to is alive, or was until seconds ago: it may run the VM.
  const unasked = sides.find((s) => !s.replica.reachable);
  const seer = sides.find(connected);
  if (unasked && seer) {
    return {
      ...base, kind: 'pending',
      reason: `${seer.node} still sees ${unasked.node} connected over DRBD (as ${seer.resource!.peers[0]?.role ?? 'Unknown'}), though pmc cannot ask ${unasked.node}: it may be up and running ${vm.name}`,
      fix: `find out whether ${unasked.node} runs ${vm.name}; if it is down, DRBD on ${seer.node} notices within seconds; ${retry}`,
    };
  }

  const currentSides = sides.filter(current);
  if (currentSides.length === 0) {
    const away = sides.filter((s) => !up(s)).map((s) => s.node);
    return {
      ...base, kind: 'refuse',
      reason: `no node has UpToDate data (${describeSide(a)}; ${describeSide(b)})`,
      fix: away.length
        ? `bring ${away.join(' and ')} back with DRBD up (pmc pm drbd-up ${away.join(' ')}): its data may be the current one; ${retry}`
        : `find out which node has the newest data; only if you are sure: drbdadm primary --force ${quote(resourceName)} there; ${retry}`,
    };
  }
  if (currentSides.length === 2 && !(connected(a) && connected(b))) {
    return {
      ...base, kind: 'refuse',
      reason: `both ${a.node} and ${b.node} claim UpToDate data but are not connected (${connection(a)}/${connection(b)}): they may have diverged`,
      fix: `check the DRBD link and run drbdadm connect ${quote(resourceName)} on both; if they stay StandAlone it is a split brain (see pmc cluster verify); ${retry}`,
    };
  }

  let chosen: Side;
  let reason: string;
  let degraded = false;
  if (currentSides.length === 2) {
    const primary = sides.find((s) => s.resource!.role === 'Primary');
    chosen = primary ?? sides.find((s) => s.replica.domain) ?? a;
    reason = `both disks UpToDate and Connected; ${chosen.node} is ${primary ? 'already Primary' : 'its first node'}`;
  } else {
    chosen = currentSides[0]!;
    const other = sides.find((s) => s !== chosen)!;
    degraded = !connected(chosen);
    reason = `${chosen.node} has the UpToDate disk; ${describeSide(other)}`;
  }

  if (!chosen.replica.domain) {
    const source = sides.find((s) => s.replica.domain)?.node;
    const unasked = sides.find((s) => !s.replica.reachable)?.node;
    if (!source && !unasked) {
      return {
        ...base, kind: 'refuse',
        reason: `no node defines the domain ${vm.name}, only its DRBD resource exists: a VM half made or half removed`,
        fix: `finish it (virsh define its XML on ${a.node} and ${b.node}) or remove it (pmc vm rm ${quote(vm.name)})`,
      };
    }
    const copy = `virsh dumpxml --inactive --security-info ${quote(vm.name)} > ${quote(`${vm.name}.xml`)}`;
    return {
      ...base, kind: 'refuse',
      reason: `the current data is on ${chosen.node}, but ${vm.name} is not defined there`,
      fix: `${source ? `on ${source}: ${copy}` : `once ${unasked} is back, on it: ${copy}`}; copy it to ${chosen.node} and virsh define it there; ${retry}`,
    };
  }
  const otherPrimary = sides.find((s) => s !== chosen && up(s) && s.resource!.role === 'Primary');
  if (otherPrimary) {
    return {
      ...base, kind: 'refuse',
      reason: `${otherPrimary.node} is DRBD Primary for ${resourceName} although ${vm.name} does not run there, and ${chosen.node} has the current data`,
      fix: `on ${otherPrimary.node}: drbdadm secondary ${quote(resourceName)}; ${retry}`,
    };
  }
  return { ...base, kind: 'start', node: chosen.node, degraded, reason, steps: startSteps(chosen, vm.name, resourceName) };
}

/** Only the node a failover made authoritative may run the VM; the other waits for `pmc pm rejoin`. */
function decideAfterFailover(vm: Vm, authority: NonNullable<Vm['authority']>, sides: readonly Side[], resourceName: string, drbdUpDone: boolean): StartDecision {
  const base = { vm: vm.name };
  const kept = sides.find((s) => s.node === authority.node);
  const stale = sides.find((s) => s.node === authority.lostNode);
  if (!kept || !stale) {
    return { ...base, kind: 'refuse', reason: `the failover record on ${authority.node} names ${authority.lostNode}, which is not a node of ${resourceName}`, fix: `check /var/lib/pmc/authoritative/${resourceName} on ${authority.node}` };
  }
  const history = `${vm.name} failed over from ${stale.node} to ${kept.node} at ${authority.at}`;
  const rejoin = `pmc pm rejoin ${stale.node}`;
  if (!drbdUpDone && kept.replica.reachable && kept.resource && !kept.resource.up) {
    return { ...base, kind: 'pending', reason: `DRBD is down on ${kept.node}, which holds the current copy: decided once drbd-up has brought it up` };
  }
  if (!current(kept)) {
    return {
      ...base, kind: 'refuse',
      reason: `${history}: only ${kept.node}'s copy is current, and ${describeSide(kept)}`,
      fix: `bring ${kept.node} back with DRBD up (pmc pm drbd-up ${kept.node}); never start ${vm.name} on ${stale.node}, whose copy is stale; then ${rejoin}`,
    };
  }
  if (up(stale) && stale.resource!.role === 'Primary') {
    return {
      ...base, kind: 'refuse',
      reason: `${history}, but ${stale.node} is DRBD Primary with the stale copy`,
      fix: `on ${stale.node}: virsh destroy ${vm.name} if it runs there, drbdadm secondary ${resourceName}; then ${rejoin}`,
    };
  }
  if (!kept.replica.domain) {
    return { ...base, kind: 'refuse', reason: `${history}, but ${vm.name} is not defined on ${kept.node}`, fix: `define it on ${kept.node} from ${stale.node}'s virsh dumpxml --inactive --security-info ${vm.name}` };
  }
  return {
    ...base, kind: 'start', node: kept.node, degraded: !connected(kept),
    reason: `${history}: ${kept.node} holds the current copy (${stale.node}'s is stale until ${rejoin})`,
    steps: startSteps(kept, vm.name, resourceName),
  };
}

/** A VM without DRBD runs from a disk only one node has: start it there, if exactly one node defines it. */
function decideWithoutDrbd(vm: Vm): StartDecision {
  const defined = vm.replicas.filter((r) => r.domain);
  if (defined.length === 1) {
    const node = defined[0]!.node;
    return { vm: vm.name, kind: 'start', node, degraded: false, reason: `no DRBD disk; defined on ${node} only`, steps: [virshStart(node, vm.name)] };
  }
  return {
    vm: vm.name, kind: 'refuse',
    reason: `defined on ${defined.map((r) => r.node).join(' and ') || 'no reachable node'} without a DRBD resource: pmc cannot tell which copy is current`,
    fix: `start it by hand on the right node: virsh start ${quote(vm.name)}`,
  };
}

function startSteps(side: Side, vm: string, resource: string): Step[] {
  const steps: Step[] = [];
  if (side.resource!.role !== 'Primary') {
    steps.push({
      node: side.node,
      command: commandLine(['drbdadm', 'primary', resource]),
      why: `make ${side.node} DRBD Primary for ${resource}`,
      undo: { command: commandLine(['drbdadm', 'secondary', resource]), why: `make ${side.node} Secondary for ${resource} again` },
    });
  }
  steps.push(virshStart(side.node, vm));
  return steps;
}

function virshStart(node: string, vm: string): Step {
  return { node, command: commandLine(['virsh', '-c', 'qemu:///system', 'start', '--domain', vm]), why: `start ${vm}`, timeoutMs: START_TIMEOUT_MS };
}

/** The VMs to act on: the named ones (each must exist), or all. */
export function selectVms(state: ClusterState, only: readonly string[]): Vm[] {
  return only.length ? only.map((name) => findVm(state, name)) : state.vms;
}

/** Decisions for the chosen VMs. Never two starts for one VM: each decision names one node. */
export function planClusterStart(state: ClusterState, only: readonly string[], drbdUpDone: boolean): StartDecision[] {
  return selectVms(state, only).map((vm) => (vm.shared && !vm.ignored && vm.runningOn.length === 0 ? decideSharedStart(state, vm) : decideStart(vm, drbdUpDone)));
}

/** A shared-storage VM has one disk, current by definition: it starts where it is defined first, once every node said it runs nowhere. */
function decideSharedStart(state: ClusterState, vm: Vm): StartDecision {
  try {
    assertNotRunningElsewhere(state, vm.name);
  } catch (err) {
    if (!isPmcError(err)) throw err;
    return { vm: vm.name, kind: 'refuse', reason: err.message, fix: err.hint ?? `then pmc cluster start --only ${quote(vm.name)}` };
  }
  const node = vm.home!;
  return { vm: vm.name, kind: 'start', node, degraded: false, reason: `its disk is ${vm.shared!.file} on the shared file system; every node answered and none runs it`, steps: [virshStart(node, vm.name)] };
}

/** The dry run's plan: DRBD first, then each VM's steps; notes say what cannot be decided yet. */
export function describeStart(drbdPlan: Plan, decisions: readonly StartDecision[]): Plan {
  const starts = decisions.filter((d): d is Extract<StartDecision, { kind: 'start' }> => d.kind === 'start');
  return {
    title: 'start the cluster',
    steps: [...drbdPlan.steps, ...starts.flatMap((d) => d.steps)],
    notes: [
      ...starts.filter((d) => d.degraded).map((d) => `${d.vm} starts degraded on ${d.node} (${d.reason}); if the other node is in fact up and runs ${d.vm} (a network split, not a power loss), stop one of them at once`),
      ...decisions.filter((d) => d.kind === 'pending').map((d) => `${d.vm}: ${d.reason}`),
    ],
  };
}

/** The resources of the chosen VMs, for drbd-up (undefined: all of them). */
function resourcesOf(state: ClusterState, only: readonly string[]): string[] | undefined {
  if (only.length === 0) return undefined;
  const names = selectVms(state, only).flatMap((vm) => vm.replicas.flatMap((r) => (r.resource ? [r.resource.name] : [])));
  return [...new Set(names)];
}

export async function clusterStart(ctx: OpContext, opts: ClusterStartOptions): Promise<Report<ClusterStartResult>> {
  if (opts.dryRun) return startCluster(ctx, opts, undefined);
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name) }, (run) => startCluster(ctx, opts, run));
}

/** Reads, decides and (given the lock, `run`) brings DRBD up, waits for it, and starts the VMs. */
async function startCluster(ctx: OpContext, opts: ClusterStartOptions, run: LockedRun | undefined): Promise<Report<ClusterStartResult>> {
  let state = await readCluster(ctx);
  const reachable = state.nodes.filter((n) => n.reachable).map((n) => n.name);
  const resources = resourcesOf(state, opts.only);
  const drbdPlan = planDrbdUp(state, reachable, ctx.config, resources);
  let decisions = planClusterStart(state, opts.only, drbdPlan.steps.length === 0);
  const plan = describeStart(drbdPlan, decisions);
  const allNodes = state.nodes.map((n) => n.name);
  if (!run) {
    const drbd: DrbdUpResult = {
      mode: 'dry-run', plan: drbdPlan, records: [], resources: drbdUpRows(state, reachable, drbdPlan, undefined, ctx.config.ignorePrefix, resources), unreachable: unreachableNodes(state, allNodes),
    };
    return report({ mode: 'dry-run', plan, drbd, vms: decisions.map((decision) => ({ decision, result: undefined })), waitedSeconds: 0 }, state);
  }

  const records = await run.applyEach(drbdPlan);
  const t0 = Date.now();
  if (records.length > 0 || decisions.some((d) => d.kind === 'pending')) {
    for (;;) {
      run.assertNotStopped();
      state = await readCluster(ctx);
      decisions = planClusterStart(state, opts.only, true);
      if (!decisions.some((d) => d.kind === 'pending') || Date.now() - t0 > opts.waitSeconds * 1000) break;
      ctx.log(`waiting for DRBD to connect: ${decisions.filter((d) => d.kind === 'pending').map((d) => d.vm).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }
  const waitedSeconds = Math.round((Date.now() - t0) / 1000);
  const final = decisions.map((d): StartDecision => (d.kind === 'pending'
    ? { vm: d.vm, kind: 'refuse', reason: `${d.reason}, still after ${waitedSeconds} s`, fix: d.fix ?? `check the DRBD link between the nodes (drbdadm cstate ${quote(d.vm)}), then pmc cluster start --only ${quote(d.vm)}` }
    : d));
  const vms = await startAll(run, final);
  const drbd: DrbdUpResult = {
    mode: 'applied', plan: drbdPlan, records, resources: drbdUpRows(state, reachable, drbdPlan, records, ctx.config.ignorePrefix, resources), unreachable: unreachableNodes(state, allNodes),
  };
  return report({ mode: 'applied', plan, drbd, vms, waitedSeconds }, state);
}

/** Starts the VMs: one node's VMs one after another, the nodes at once. */
async function startAll(run: LockedRun, decisions: readonly StartDecision[]): Promise<VmStartOutcome[]> {
  const results = new Map<string, ApplyResult>();
  const nodes = [...new Set(decisions.flatMap((d) => (d.kind === 'start' ? [d.node] : [])))];
  await Promise.all(nodes.map(async (node) => {
    for (const d of decisions) {
      if (d.kind !== 'start' || d.node !== node) continue;
      const title = `start ${d.vm} on ${d.node}${d.degraded ? ' (degraded)' : ''}`;
      results.set(d.vm, await run.apply({ title, steps: d.steps, notes: [] }));
    }
  }));
  return decisions.map((decision) => ({ decision, result: results.get(decision.vm) }));
}

function report(result: ClusterStartResult, state: ClusterState): Report<ClusterStartResult> {
  const failed = result.vms.some((v) => v.decision.kind === 'refuse' || v.result?.status === 'failed')
    || result.drbd.resources.some((r) => r.action === 'failed');
  const down = state.nodes.some((n) => !n.reachable);
  return { data: result, status: failed ? 'failed' : down ? 'partial' : 'ok', warnings: unreachableWarnings(state) };
}
