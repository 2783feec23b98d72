/**
 * `pmc cluster rebalance`: spread the running VMs over the nodes by live-migrating some of them
 * to their DRBD peers (a shared-storage VM to any node). The moves come from the pure planner (rebalance-plan.ts); each is then
 * checked and run as `pmc vm mv` checks and runs it (its planner and executor, as `pm evacuate`
 * reuses them), one after another or --parallel N at once. A VM whose migration those checks
 * refuse is held and the plan made again without it, so one VM that cannot move does not keep
 * the others where they are. The first failure stops the run; the report says what moved.
 *
 * --secondaries: the standby copies move first, one after another, each checked, planned and
 * run as `pmc vm peer-recreate NEWPM VM` does it (its checks and plan); a copy move those checks
 * refuse is left out and the plan made again. The migrations follow, checked on the cluster as
 * the copy moves leave it, so they only run once every copy move is done.
 */
import type { Config } from '../../config/load.js';
import type { ClusterState, Vm } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { isPmcError } from '../../util/errors.js';
import { inParallel } from '../../util/parallel.js';
import type { OpContext, Report } from '../engine/context.js';
import type { ApplyResult } from '../engine/execute.js';
import { underLock, type LockedRun } from '../engine/mutate.js';
import type { Plan } from '../engine/plan.js';
import { replicationAddresses } from '../vm/add.js';
import { migrationAsPlan, planMigrations, type MigrateFacts, type VmMigration } from '../vm/migrate-plan.js';
import { gatherMigrateFacts, moveRunner, type MigrationOutcome } from '../vm/mv.js';
import { checkPeerRecreate, planPeerRecreate, type PeerRecreateTarget } from '../vm/peer-recreate.js';
import type { RebalanceRequest } from './rebalance-args.js';
import type { CopyMove, DiskLoad } from './rebalance-copies.js';
import { planRebalance, type HeldVm, type NodeLoad, type RebalanceMove, type RebalancePlan } from './rebalance-plan.js';

/** A standby copy moved (kind 'move copy', scores: the disk score) or a migration (kind 'migrate', scores: the load score). */
export type RebalanceOutcome = (RebalanceMove | CopyMove) & {
  /** not started: an earlier move failed (or Ctrl-C), so this one never ran. */
  status: 'done' | 'failed' | 'not started' | 'dry-run';
  plan: Plan;
  /** A migration: what vm mv reports (timings, the failure, the recovery); undefined unless it ran. */
  migration: MigrationOutcome | undefined;
  /** A copy move: the applied plan's result; undefined unless it ran. */
  result?: ApplyResult | undefined;
};

/** --secondaries: the disk score (rebalance-copies.ts) before and after, and the volume groups it weighs. */
export interface DiskBalance {
  scoreBefore: number;
  scoreAfter: number;
  before: DiskLoad[];
  after: DiskLoad[];
}

export interface RebalanceReport {
  /** Reading the cluster, planning and checking every move (milliseconds). */
  checksMs: number;
  scoreBefore: number;
  /** Once every planned move is done. */
  scoreAfter: number;
  outcomes: RebalanceOutcome[];
  held: HeldVm[];
  before: NodeLoad[];
  after: NodeLoad[];
  /** --secondaries only. */
  disk?: DiskBalance | undefined;
}

/**
 * A plan whose every move passed the checks of vm peer-recreate (copies) and vm mv
 * (migrations), with what carries each out, in its order.
 */
export interface CheckedRebalance {
  plan: RebalancePlan;
  copies: PeerRecreateTarget[];
  migrations: VmMigration[];
}

/**
 * Plans, and checks each move as vm mv does; a VM refused is held (with vm mv's reason) and the
 * plan made again without it. Ends: every round holds at least one more VM. `gather` reads
 * what the checks need from the nodes of the VMs moved (gatherMigrateFacts).
 */
export async function checkRebalance(state: ClusterState, config: Config, req: Pick<RebalanceRequest, 'maxMoves' | 'timeoutSeconds' | 'secondaries'>,
  gather: (vms: Vm[], after: ClusterState) => Promise<MigrateFacts>): Promise<CheckedRebalance> {
  const refused = new Map<string, Omit<HeldVm, 'vm'>>();
  const refusedCopies = new Map<string, Omit<HeldVm, 'vm'>>();
  for (;;) {
    const plan = planRebalance(state, { maxMoves: req.maxMoves, refused, refusedCopies, secondaries: req.secondaries ? config : undefined });
    const copies: PeerRecreateTarget[] = [];
    for (const m of plan.copies?.moves ?? []) {
      try {
        copies.push(checkPeerRecreate(state, config, m.vm, m.to));
      } catch (err) {
        if (!isPmcError(err)) throw err;
        refusedCopies.set(m.vm, { why: `vm peer-recreate refuses moving its standby copy to ${m.to}: ${err.message}`, hint: err.hint });
      }
    }
    // Plan again before asking the nodes anything: the migrations depend on where the copies go.
    if (copies.length !== (plan.copies?.moves.length ?? 0)) continue;
    const after = plan.copies?.projected ?? state;
    const names = plan.moves.map((m) => m.vm);
    const moving = new Set(names);
    const facts = names.length === 0 ? {} : await gather(after.vms.filter((vm) => moving.has(vm.name)), after);
    const planned = planMigrations(after, names, config, { timeoutSeconds: req.timeoutSeconds, facts, targets: new Map(plan.moves.map((m) => [m.vm, m.to])) });
    for (const p of planned) {
      if (!p.refusal) continue;
      const why = p.refusal.message.replace(`${p.name} cannot migrate: `, '').replace(/; nothing was changed$/, '');
      refused.set(p.name, { why: `vm mv refuses it: ${why}`, hint: p.refusal.hint });
    }
    if (planned.every((p) => p.migration)) return { plan, copies, migrations: planned.map((p) => p.migration!) };
  }
}

export async function rebalanceCluster(ctx: OpContext, req: RebalanceRequest): Promise<Report<RebalanceReport>> {
  if (req.dryRun) return planAndRebalance(ctx, req, undefined);
  // Every node: the plan weighs the whole cluster, and nothing may change it meanwhile.
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name) }, (run) => planAndRebalance(ctx, req, run), (report) => summary(report.data));
}

/** One move and what carries it out: a copy's plan (vm peer-recreate's), or a migration (vm mv's). */
type Item =
  | { move: CopyMove; plan: Plan; migration: undefined }
  | { move: RebalanceMove; plan: Plan; migration: VmMigration };

async function planAndRebalance(ctx: OpContext, req: RebalanceRequest, run: LockedRun | undefined): Promise<Report<RebalanceReport>> {
  const started = Date.now();
  const state = await readCluster(ctx);
  const { plan, copies, migrations } = await checkRebalance(state, ctx.config, req, (vms, after) => gatherMigrateFacts(ctx, after, vms));
  const copyItems: Item[] = [];
  for (const [i, move] of (plan.copies?.moves ?? []).entries()) {
    const t = copies[i]!;
    const addresses = await replicationAddresses(ctx, state, [t.primary, t.newPeer]);
    copyItems.push({ move, plan: planPeerRecreate(state, ctx.config, t, addresses), migration: undefined });
  }
  const migrationItems = plan.moves.map((move, i): Item => ({ move, plan: migrationAsPlan(migrations[i]!), migration: migrations[i]! }));
  const disk = plan.copies && { scoreBefore: plan.copies.scoreBefore, scoreAfter: plan.copies.scoreAfter, before: plan.copies.before, after: plan.copies.after };
  const data: RebalanceReport = {
    checksMs: Date.now() - started, scoreBefore: plan.scoreBefore, scoreAfter: plan.scoreAfter,
    outcomes: [], held: plan.held, before: plan.before, after: plan.after, ...(disk ? { disk } : {}),
  };
  const outcome = (item: Item, status: RebalanceOutcome['status']): RebalanceOutcome => ({ ...item.move, status, plan: item.plan, migration: undefined });
  // The score leaves out a node that did not answer: what runs there is unknown.
  const warnings = unreachableWarnings(state);
  const partial = warnings.length > 0 ? 'partial' : 'ok';
  if (!run) {
    data.outcomes = [...copyItems, ...migrationItems].map((item) => outcome(item, 'dry-run'));
    return { data, status: partial, warnings };
  }

  const apply = moveRunner(ctx, run, outcome);
  // Copies one by one (each a full resync), all of them before any migration: a migration may go to a copy's new node.
  data.outcomes = [...await inParallel(copyItems, 1, apply), ...await inParallel(migrationItems, req.parallel, apply)];
  return { data, status: data.outcomes.every((o) => o.status === 'done') ? partial : 'failed', warnings };
}

/** The audit trail's last line. */
function summary(report: RebalanceReport): string {
  if (report.outcomes.length === 0) return 'nothing to move: the cluster is balanced';
  return report.outcomes.map((o) => `${o.vm}: ${o.kind === 'migrate' ? 'migrate' : 'move standby copy'} ${o.from} -> ${o.to} ${o.status}`).join(', ');
}
