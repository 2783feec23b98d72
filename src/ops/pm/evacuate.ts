/**
 * `pmc pm evacuate PM [--secondaries [--to PM2]]`: empty a node so it can be switched off with
 * every VM still mirrored (Ganeti's node-evacuate). In this order: every VM running on PM
 * live-migrates to its DRBD peer (vm mv's planner and executor); PM is demoted for every
 * shut-off VM it holds as Primary; with --secondaries every copy PM holds moves to another node
 * (PM2, or placed as vm add places a VM: free memory, then disk) the way vm peer-recreate moves
 * it, and PM's copy goes once the new one is UpToDate.
 *
 * Every check, for every VM, runs before anything changes. The copies are planned on the state
 * the migrations and demotions leave behind (projected from the live one), so --dry-run prints
 * the whole run. The first failure stops it; the report says what moved and what did not.
 */
import type { Config } from '../../config/load.js';
import { selectNodes } from '../../config/targets.js';
import { buildCluster, isActive, type ClusterState, type NodeProbe, type Vm } from '../../model/cluster.js';
import { readCluster } from '../../model/read.js';
import type { DrbdResource, NodeFacts } from '../../probe/types.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { inParallel } from '../../util/parallel.js';
import { formatBytes } from '../../util/units.js';
import type { OpContext, Report } from '../engine/context.js';
import type { ApplyResult } from '../engine/execute.js';
import { underLock, type LockedRun } from '../engine/mutate.js';
import type { Plan } from '../engine/plan.js';
import { describePlacement, freeMemory, rankNodes } from '../vm/add-plan.js';
import { replicationAddresses } from '../vm/add.js';
import { demoteStep } from '../vm/lifecycle.js';
import { findVm } from '../vm/list.js';
import { migrationAsPlan, planMigrations, type MigrateFacts, type VmMigration } from '../vm/migrate-plan.js';
import { gatherMigrateFacts, moveRunner, type MigrationOutcome } from '../vm/mv.js';
import {
  checkRecreateSource, checkRecreateTarget, planPeerRecreate, type PeerRecreateTarget, type RecreateSource,
} from '../vm/peer-recreate.js';
import { assertEvacuateOptions, type EvacuateRequest } from './evacuate-args.js';

/** A shut-off VM whose DRBD Primary is the node being emptied. */
export interface Demotion {
  vm: string;
  node: string;
  resource: string;
  /** The node with the other copy, UpToDate and connected. */
  peer: string;
}

/** Everything checked, before anything changes. */
export interface EvacuationCheck {
  node: string;
  migrations: VmMigration[];
  demotions: Demotion[];
  /** Standby copies to move (--secondaries), each with its new node. */
  copies: PeerRecreateTarget[];
  /** VMs named with the ignore prefix: left as they are. */
  skipped: string[];
  notes: string[];
  /** The cluster once the migrations and demotions are done: the copies' plans are made on it. */
  after: ClusterState;
}

export type EvacuationAction = 'migrate' | 'demote' | 'move copy';

/** One thing the evacuation does to one VM, and its plan. */
export interface EvacuationItem {
  vm: string;
  action: EvacuationAction;
  /** The node emptied. */
  from: string;
  /** Where the VM runs afterwards (migrate), its other copy (demote), the copy's new node (move copy). */
  to: string;
  plan: Plan;
  /** migrate: the phases executeMigration runs. */
  migration: VmMigration | undefined;
}

export interface EvacuationOutcome {
  vm: string;
  action: EvacuationAction;
  from: string;
  to: string;
  /** not started: an earlier step failed (or Ctrl-C), so this one never ran. */
  status: 'done' | 'failed' | 'not started' | 'dry-run';
  plan: Plan;
  /** migrate: what vm mv reports (timings, the failure, the recovery). */
  migration: MigrationOutcome | undefined;
  /** demote, move copy: the applied plan's result. */
  result: ApplyResult | undefined;
}

export interface EvacuateReport {
  node: string;
  /** Reading the cluster and checking every VM (milliseconds). */
  checksMs: number;
  outcomes: EvacuationOutcome[];
  skipped: string[];
  notes: string[];
}

interface Blocker {
  vm: string;
  why: string;
  hint: string | undefined;
}

/**
 * Every check of an evacuation, as a pure function of the state: throws one PmcError naming
 * every VM that blocks it (and how to proceed), or returns what moves where.
 */
export function checkEvacuation(state: ClusterState, config: Config, req: Pick<EvacuateRequest, 'node' | 'secondaries' | 'to' | 'timeoutSeconds'>, facts: MigrateFacts): EvacuationCheck {
  const { node } = req;
  assertEvacuateOptions(req);
  selectNodes(config, [node, ...(req.to === undefined ? [] : [req.to])]);
  const pm = state.nodes.find((n) => n.name === node)!;
  if (!pm.reachable || !pm.facts) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${node} could not be asked, so what runs there is unknown; nothing was changed`,
      `${pm.error?.message ?? `check that ${pm.host} is up`}; if ${node} is dead, pmc pm failover ${node} starts its VMs on their peers`);
  }

  const blockers: Blocker[] = [];
  const block = (vm: string, err: unknown): void => {
    if (!isPmcError(err)) throw err;
    const why = err.message.replace(/; nothing was changed$/, '');
    blockers.push({ vm, why: why.startsWith(`${vm} `) ? why.slice(vm.length + 1) : why, hint: err.hint });
  };
  const skipped: string[] = [];
  const notes: string[] = [];
  const toMigrate: string[] = [];
  const demotions: Demotion[] = [];
  /** VM -> the node whose copy stays when PM's copy moves. */
  const toCopy = new Map<string, string>();
  const standby: string[] = [];

  for (const vm of state.vms.filter((v) => v.nodes.includes(node))) {
    if (vm.ignored) {
      skipped.push(vm.name);
      continue;
    }
    // A shared-storage VM keeps no disk on the node, only a definition: it moves off if it runs there.
    if (vm.shared) {
      if (vm.runningOn.includes(node)) toMigrate.push(vm.name);
      continue;
    }
    try {
      const res = pairResource(vm);
      if (!res) {
        refuse(`it has no DRBD peer: its only copy is on ${node}${vm.runningOn.includes(node) ? ', where it runs' : ''}`,
          `copy it off first (pmc vm backup -b ${vm.name}, then pmc vm restore ${vm.name} --at latest --to NEW-NAME creates it on two nodes) and remove it (pmc vm rm ${vm.name}), or keep ${node} on`);
      }
      const hosts = res.hosts.map((h) => h.name);
      if (!hosts.includes(node)) {
        if (vm.runningOn.includes(node)) refuse(`it runs on ${node}, outside its DRBD pair ${hosts.join('/')}`, 'pmc cluster verify says how to repair it');
        notes.push(`${vm.name}: ${node} holds leftovers of it outside its DRBD pair ${hosts.join('/')}; left as they are (pmc cluster verify lists them)`);
        continue;
      }
      const peer = hosts.find((h) => h !== node)!;
      const mine = vm.replicas.find((r) => r.node === node)?.resource;
      if (vm.runningOn.includes(node)) {
        toMigrate.push(vm.name);
        continue;
      }
      if (vm.runningOn.length > 0) {
        if (mine?.role === 'Primary') {
          refuse(`it runs on ${vm.runningOn.join(' and ')}, yet ${node} is DRBD Primary for it too`, `pmc vm mv --cleanup ${vm.name}`);
        }
      } else {
        assertCopyCurrent(vm, node, peer, config);
        if (mine?.role === 'Primary') demotions.push({ vm: vm.name, node, resource: mine.name, peer });
      }
      if (req.secondaries) toCopy.set(vm.name, peer);
      else standby.push(vm.name);
    } catch (err) {
      block(vm.name, err);
    }
  }

  const migrations: VmMigration[] = [];
  for (const p of planMigrations(state, toMigrate, config, { timeoutSeconds: req.timeoutSeconds, facts })) {
    if (p.refusal) block(p.name, p.refusal);
    else {
      migrations.push(p.migration!);
      if (p.migration!.resource === undefined) continue;
      if (req.secondaries) toCopy.set(p.name, p.migration!.target);
      else standby.push(p.name);
    }
  }

  const after = afterRoleChanges(state, config, [
    ...migrations.map((m) => ({ vm: m.vm, resource: m.resource, runsOn: m.target, primary: m.target })),
    ...demotions.map((d) => ({ vm: d.vm, resource: d.resource, runsOn: undefined, primary: undefined })),
  ]);
  const copies: PeerRecreateTarget[] = [];
  let room = after;
  for (const [name, keep] of [...toCopy].sort(([a], [b]) => a.localeCompare(b))) {
    try {
      const source = checkRecreateSource(after, config, name, { keep });
      let target: PeerRecreateTarget;
      if (req.to !== undefined) {
        target = checkRecreateTarget(room, config, source, req.to);
        const short = memoryShortfall(room, req.to, findVm(after, name).memoryBytes ?? 0);
        if (short) notes.push(`${name}: ${short}; it could not start there after a failover`);
      } else {
        const placed = placeCopy(room, config, source, node);
        target = placed.target;
        notes.push(`${name}'s copy ${placed.why}`);
      }
      copies.push(target);
      room = promised(room, target.newPeer, findVm(after, name).memoryBytes ?? 0, target.lvBytes);
    } catch (err) {
      block(name, err);
    }
  }

  if (blockers.length > 0) {
    const lines = blockers.map((b) => `${b.vm}: ${b.why}${b.hint ? ` (fix: ${b.hint})` : ''}`);
    throw new PmcError('PMC_E_STATE', `${node} cannot be evacuated; nothing was changed:\n${lines.join('\n')}`,
      `nothing moves until every VM on ${node} can: fix what each line says, then run pmc pm evacuate ${node} again`);
  }
  if (standby.length > 0) {
    notes.push(`${node} keeps the standby cop${standby.length === 1 ? 'y' : 'ies'} of ${standby.join(', ')}: while it is off, ${standby.length === 1 ? 'that VM runs' : 'they run'} without a mirror; --secondaries moves ${standby.length === 1 ? 'it' : 'them'} to other nodes`);
  }
  if (skipped.length > 0) notes.push(`${skipped.join(', ')}: ignored (the ignore prefix); whatever ${node} holds of ${skipped.length === 1 ? 'it' : 'them'} stays there`);
  return { node, migrations, demotions, copies, skipped, notes, after };
}

/** The plans, in the order they run: migrations, demotions, copies. `addresses`: per VM moved, the replication address of each node of its new pair. */
export function planEvacuation(check: EvacuationCheck, config: Config, addresses: Record<string, Record<string, string>>): EvacuationItem[] {
  return [
    ...check.migrations.map((m): EvacuationItem => ({ vm: m.vm, action: 'migrate', from: m.source, to: m.target, plan: migrationAsPlan(m), migration: m })),
    ...check.demotions.map((d): EvacuationItem => ({
      vm: d.vm, action: 'demote', from: d.node, to: d.peer, migration: undefined,
      plan: {
        title: `demote ${d.vm} on ${d.node}`,
        steps: [demoteStep(d.node, d.resource, `demote ${d.resource} to Secondary on ${d.node}: ${d.vm} is shut off, and ${d.peer} holds its other copy, UpToDate`)],
        notes: [],
      },
    })),
    ...check.copies.map((t): EvacuationItem => ({
      vm: t.vm, action: 'move copy', from: t.oldPeer, to: t.newPeer, migration: undefined,
      plan: planPeerRecreate(check.after, config, t, addresses[t.vm] ?? {}),
    })),
  ];
}

export async function evacuateNode(ctx: OpContext, req: EvacuateRequest): Promise<Report<EvacuateReport>> {
  selectNodes(ctx.config, [req.node, ...(req.to === undefined ? [] : [req.to])]);
  if (req.dryRun) return planAndEvacuate(ctx, req, undefined);
  // Every node: migrations, placement and the copies read the whole cluster, and nothing may change it meanwhile.
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name) }, (run) => planAndEvacuate(ctx, req, run), (report) => summary(report.data));
}

async function planAndEvacuate(ctx: OpContext, req: EvacuateRequest, run: LockedRun | undefined): Promise<Report<EvacuateReport>> {
  const started = Date.now();
  const state = await readCluster(ctx);
  const running = state.vms.filter((vm) => vm.runningOn.includes(req.node) && !vm.ignored);
  const facts = await gatherMigrateFacts(ctx, state, running);
  const check = checkEvacuation(state, ctx.config, req, facts);
  const addresses: Record<string, Record<string, string>> = {};
  for (const t of check.copies) addresses[t.vm] = await replicationAddresses(ctx, state, [t.primary, t.newPeer]);
  const items = planEvacuation(check, ctx.config, addresses);
  const data: EvacuateReport = { node: req.node, checksMs: Date.now() - started, outcomes: [], skipped: check.skipped, notes: check.notes };
  if (!run) {
    data.outcomes = items.map((item) => outcome(item, 'dry-run'));
    return { data, status: 'ok', warnings: [] };
  }

  const apply = moveRunner(ctx, run, outcome);
  const phase = (action: EvacuationAction) => items.filter((i) => i.action === action);
  data.outcomes = [
    ...await inParallel(phase('migrate'), req.parallel, apply),
    ...await inParallel(phase('demote'), 1, apply),
    ...await inParallel(phase('move copy'), req.parallel, apply),
  ];
  return { data, status: data.outcomes.every((o) => o.status === 'done') ? 'ok' : 'failed', warnings: [] };
}

function outcome(item: EvacuationItem, status: EvacuationOutcome['status']): EvacuationOutcome {
  return { vm: item.vm, action: item.action, from: item.from, to: item.to, status, plan: item.plan, migration: undefined, result: undefined };
}

/** The audit trail's last line. */
function summary(report: EvacuateReport): string {
  if (report.outcomes.length === 0) return `${report.node}: nothing to evacuate`;
  return report.outcomes.map((o) => `${o.vm}: ${o.action} ${o.status}`).join(', ');
}

function refuse(why: string, hint: string): never {
  throw new PmcError('PMC_E_STATE', why, hint);
}

/** The VM's DRBD resource as pmc makes them: two nodes. Undefined for a one-node VM. */
function pairResource(vm: Vm): DrbdResource | undefined {
  const res = vm.replicas.find((r) => r.resource?.configured)?.resource;
  return res && res.hosts.length >= 2 ? res : undefined;
}

/**
 * A shut-off VM leaves `node` only if `peer` holds its current data: UpToDate and connected to
 * `node` (disconnected, nobody can tell whether `node`'s copy is newer).
 */
function assertCopyCurrent(vm: Vm, node: string, peer: string, config: Config): void {
  if (!config.nodes.some((n) => n.name === peer)) refuse(`its peer ${peer} is not in pmc.yaml; pmc takes no action on it`, `add ${peer} to nodes: in pmc.yaml, or move it by hand`);
  if (vm.primaryOn.length > 1) refuse(`it runs nowhere and is DRBD Primary on ${vm.primaryOn.join(' and ')}`, `pmc vm mv --cleanup ${vm.name} explains what to decide`);
  const replica = vm.replicas.find((r) => r.node === peer);
  const res = replica?.resource;
  if (!replica?.reachable) refuse(`${peer}, which holds its other copy, could not be asked`, `bring ${peer} back first (pmc pm ls shows why it does not answer)`);
  if (!res?.up) refuse(`its DRBD resource is down on ${peer}, which holds its other copy`, `pmc pm drbd-up ${peer}`);
  const link = res.peers.find((p) => p.node === node) ?? res.peers[0];
  if (res.diskState !== 'UpToDate' || link?.connection !== 'Connected') {
    const syncing = res.peers.some((p) => /Sync/.test(p.replication));
    refuse(`its copy on ${peer} is ${res.diskState ?? 'DUnknown'} and ${link?.connection ?? 'not connected'} to ${node}: with ${node} off it would have no copy known to be current`,
      syncing ? 'wait for the resync to finish (pmc vm ls shows its progress)' : 'pmc cluster verify says how to repair it');
  }
}

/** The first node, best first as vm add ranks them, that can take the copy; never the node emptied nor a node of the VM. */
function placeCopy(state: ClusterState, config: Config, source: RecreateSource, node: string): { target: PeerRecreateTarget; why: string } {
  const vm = findVm(state, source.vm);
  const need = { sizeBytes: source.lvBytes, memoryBytes: vm.memoryBytes ?? 0, vcpus: vm.vcpus ?? 1, force: false };
  const { ranked, rejected } = rankNodes(state, config, need, 'pair', [node, ...vm.nodes]);
  const refused = [...rejected];
  for (const candidate of ranked) {
    try {
      return { target: checkRecreateTarget(state, config, source, candidate.name), why: describePlacement([candidate]) };
    } catch (err) {
      if (!isPmcError(err)) throw err;
      refused.push(err.message);
    }
  }
  throw new PmcError('PMC_E_CAPACITY', `no node can take its copy from ${node}${refused.length ? `: ${refused.join('; ')}` : ': the cluster has no node besides its own two'}`,
    'free memory or disk space on another node, add a node, or name one with --to');
}

/** The state with memory and disk promised to copies placed earlier in the same run. */
function promised(state: ClusterState, node: string, memoryBytes: number, diskBytes: number): ClusterState {
  return {
    ...state,
    nodes: state.nodes.map((n) => (n.name !== node || !n.facts ? n : {
      ...n,
      usage: { ...n.usage, definedMemoryBytes: n.usage.definedMemoryBytes + memoryBytes },
      facts: { ...n.facts, vg: n.facts.vg && { ...n.facts.vg, freeBytes: n.facts.vg.freeBytes - diskBytes } },
    })),
  };
}

/** Why `node` could not hold one more VM of this memory, or undefined. */
function memoryShortfall(state: ClusterState, node: string, memoryBytes: number): string | undefined {
  const n = state.nodes.find((x) => x.name === node);
  if (!n?.facts?.memory) return undefined;
  const left = freeMemory(n);
  return memoryBytes > left ? `${node} has ${formatBytes(Math.max(0, left))} of memory left for VMs, ${formatBytes(memoryBytes)} needed` : undefined;
}

interface RoleChange {
  vm: string;
  /** undefined: a shared-storage VM, which has no DRBD role to change. */
  resource: string | undefined;
  /** Where the domain runs afterwards (undefined: nowhere). */
  runsOn: string | undefined;
  /** The DRBD Primary afterwards (undefined: none). */
  primary: string | undefined;
}

/** The cluster as it will be once these migrations and demotions are done: the same facts, other roles. */
function afterRoleChanges(state: ClusterState, config: Config, changes: readonly RoleChange[]): ClusterState {
  const probes = state.nodes.map((n): NodeProbe => (n.reachable && n.facts
    ? { node: n.name, ok: true, value: withRoles(n.name, n.facts, changes) }
    : { node: n.name, ok: false, error: n.error ?? { code: 'PMC_E_NODE_UNREACHABLE', message: `${n.name}: not reachable`, hint: undefined } }));
  return buildCluster(config, probes);
}

function withRoles(node: string, facts: NodeFacts, changes: readonly RoleChange[]): NodeFacts {
  const role = (c: RoleChange, n: string | undefined) => (c.primary === n ? 'Primary' : 'Secondary');
  return {
    ...facts,
    domains: facts.domains.map((d) => {
      const c = changes.find((x) => x.vm === d.name);
      if (!c) return d;
      if (c.runsOn === node) return { ...d, state: 'running' };
      return isActive(d) ? { ...d, state: 'shut off' } : d;
    }),
    drbdResources: facts.drbdResources.map((r) => {
      const c = changes.find((x) => x.resource === r.name);
      return c ? { ...r, role: role(c, node), peers: r.peers.map((p) => ({ ...p, role: role(c, p.node) })) } : r;
    }),
  };
}
