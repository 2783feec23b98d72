/**
 * `pmc cluster rebalance`: spread the running VMs over the nodes by live-migrating some of them
 * to their DRBD peers. The moves come from the pure planner (rebalance-plan.ts); each is then
 * checked and run as `pmc vm mv` checks and runs it (its planner and executor, as `pm evacuate`
 * reuses them), one after another or --parallel N at once. A VM whose migration those checks
 * refuse is held and the plan made again without it, so one VM that cannot move does not keep
 * the others where they are. The first failure stops the run; the report says what moved.
 */
import type { Config } from '../../config/load.js';
import type { ClusterState, Vm } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { inParallel } from '../../util/parallel.js';
import type { OpContext, Report } from '../engine/context.js';
import { underLock } from '../engine/mutate.js';
import type { Plan } from '../engine/plan.js';
import { migrationAsPlan, planMigrations, type MigrateFacts, type VmMigration } from '../vm/migrate-plan.js';
import { executeMigration, gatherMigrateFacts, type MigrationOutcome } from '../vm/mv.js';
import type { RebalanceRequest } from './rebalance-args.js';
import { planRebalance, type HeldVm, type NodeLoad, type RebalanceMove, type RebalancePlan } from './rebalance-plan.js';

export interface RebalanceOutcome extends RebalanceMove {
  /** not started: an earlier migration failed (or Ctrl-C), so this one never ran. */
  status: 'done' | 'failed' | 'not started' | 'dry-run';
  plan: Plan;
  /** What vm mv reports (timings, the failure, the recovery); undefined unless it ran. */
  migration: MigrationOutcome | undefined;
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
}

/** A plan whose every move passed vm mv's checks, with the migrations that carry it out, in its order. */
export interface CheckedRebalance {
  plan: RebalancePlan;
  migrations: VmMigration[];
}

/**
 * Plans, and checks each move as vm mv does; a VM refused is held (with vm mv's reason) and the
 * plan made again without it. Ends: every round holds at least one more VM. `gather` reads
 * what the checks need from the nodes of the VMs moved (gatherMigrateFacts).
 */
export async function checkRebalance(state: ClusterState, config: Config, req: Pick<RebalanceRequest, 'maxMoves' | 'timeoutSeconds'>,
  gather: (vms: Vm[]) => Promise<MigrateFacts>): Promise<CheckedRebalance> {
  const refused = new Map<string, Omit<HeldVm, 'vm'>>();
  for (;;) {
    const plan = planRebalance(state, { maxMoves: req.maxMoves, refused });
    const names = plan.moves.map((m) => m.vm);
    const moving = new Set(names);
    const facts = names.length === 0 ? {} : await gather(state.vms.filter((vm) => moving.has(vm.name)));
    const planned = planMigrations(state, names, config, { timeoutSeconds: req.timeoutSeconds, facts });
    for (const p of planned) {
      if (!p.refusal) continue;
      const why = p.refusal.message.replace(`${p.name} cannot migrate: `, '').replace(/; nothing was changed$/, '');
      refused.set(p.name, { why: `vm mv refuses it: ${why}`, hint: p.refusal.hint });
    }
    if (planned.every((p) => p.migration)) return { plan, migrations: planned.map((p) => p.migration!) };
  }
}

export async function rebalanceCluster(ctx: OpContext, req: RebalanceRequest): Promise<Report<RebalanceReport>> {
  if (req.dryRun) return planAndRebalance(ctx, req);
  // Every node: the plan weighs the whole cluster, and nothing may change it meanwhile.
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name) }, () => planAndRebalance(ctx, req), (report) => summary(report.data));
}

async function planAndRebalance(ctx: OpContext, req: RebalanceRequest): Promise<Report<RebalanceReport>> {
  const started = Date.now();
  const state = await readCluster(ctx);
  const { plan, migrations } = await checkRebalance(state, ctx.config, req, (vms) => gatherMigrateFacts(ctx, state, vms));
  const items = plan.moves.map((move, i) => ({ move, migration: migrations[i]! }));
  const data: RebalanceReport = {
    checksMs: Date.now() - started, scoreBefore: plan.scoreBefore, scoreAfter: plan.scoreAfter,
    outcomes: [], held: plan.held, before: plan.before, after: plan.after,
  };
  const outcome = (item: (typeof items)[number], status: RebalanceOutcome['status']): RebalanceOutcome =>
    ({ ...item.move, status, plan: migrationAsPlan(item.migration), migration: undefined });
  // The score leaves out a node that did not answer: what runs there is unknown.
  const warnings = unreachableWarnings(state);
  const partial = warnings.length > 0 ? 'partial' : 'ok';
  if (req.dryRun) {
    data.outcomes = items.map((item) => outcome(item, 'dry-run'));
    return { data, status: partial, warnings };
  }

  let stopped = false;
  data.outcomes = await inParallel(items, req.parallel, async (item) => {
    if (stopped || ctx.stop.level !== 'none') return outcome(item, 'not started');
    const migrated = await executeMigration(ctx, item.migration);
    const ok = migrated.status === 'migrated';
    stopped ||= !ok;
    return { ...outcome(item, ok ? 'done' : 'failed'), migration: migrated };
  });
  return { data, status: data.outcomes.every((o) => o.status === 'done') ? partial : 'failed', warnings };
}

/** The audit trail's last line. */
function summary(report: RebalanceReport): string {
  if (report.outcomes.length === 0) return 'nothing to move: the cluster is balanced';
  return report.outcomes.map((o) => `${o.vm}: migrate ${o.from} -> ${o.to} ${o.status}`).join(', ');
}
