/**
 * `pmc cluster heal`: meant for a systemd timer or cron on the manager. It reads the cluster
 * under the lock of every node, plans (heal-plan.ts), and applies each action on its own
 * through the engine, so every step is audited and a failed one is undone: a fenced node's
 * failover, then the rejoins. It never asks anything; a failure of one action does not stop
 * the others, and the exit code says what is left (see healReport()).
 */
import type { OpContext, Report } from '../engine/context.js';
import type { ClusterState } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { isPmcError } from '../../util/errors.js';
import type { ApplyResult } from '../engine/execute.js';
import { underLock, type LockedRun } from '../engine/mutate.js';
import { fenceNode } from '../vm/failover.js';
import { planHeal, type HealAction } from './heal-plan.js';

export interface HealOutcome {
  action: HealAction;
  /** How the plan went (not set for a dry run, nor when it did not start). */
  result: ApplyResult | undefined;
  /** Why the plan did not start: the fence command failed, the run was interrupted, ... */
  error: string | undefined;
}

export interface HealResult {
  mode: 'dry-run' | 'applied';
  /** Nothing to do: every node answers and none holds a copy a failover made stale. */
  healthy: boolean;
  outcomes: HealOutcome[];
}

export interface HealOptions {
  dryRun: boolean;
}

export async function healCluster(ctx: OpContext, opts: HealOptions): Promise<Report<HealResult>> {
  if (opts.dryRun) {
    const state = await readCluster(ctx);
    const actions = planHeal(state, ctx.config);
    return healReport(state, { mode: 'dry-run', healthy: actions.length === 0, outcomes: actions.map((action) => ({ action, result: undefined, error: undefined })) });
  }
  // Every node: a dead one cannot be locked, and which nodes a plan touches is known only after reading.
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name) }, async (run) => {
    const state = await readCluster(ctx);
    run.assertNotStopped();
    const actions = planHeal(state, ctx.config);
    const outcomes: HealOutcome[] = [];
    for (const action of actions) outcomes.push(await apply(ctx, run, action));
    return healReport(state, { mode: 'applied', healthy: actions.length === 0, outcomes });
  }, (report) => auditSummary(report.data));
}

/** The audit trail's last line: what each action came to, blocked ones included (an unattended run's decisions are read there). */
function auditSummary(result: HealResult): string {
  if (result.healthy) return 'nothing to do: the cluster is healthy';
  return result.outcomes.map(({ action: a, result: r, error }) => {
    if (a.kind === 'blocked') return `${a.node} not healed: ${a.reason}`;
    if (a.kind === 'down') return a.reason;
    return `${a.plan.title}: ${error ? `not done: ${error}` : r!.status}`;
  }).join('; ');
}

async function apply(ctx: OpContext, run: LockedRun, action: HealAction): Promise<HealOutcome> {
  const outcome: HealOutcome = { action, result: undefined, error: undefined };
  if (action.kind === 'blocked' || action.kind === 'down') return outcome;
  if (ctx.stop.level !== 'none') return { ...outcome, error: `not started: ${ctx.stop.reason ?? 'interrupted'}` };
  try {
    if (action.kind === 'failover') action.plan.notes.unshift(await fenceNode(ctx, { ...ctx.config.nodes.find((n) => n.name === action.node)!, fence: action.fence }));
    return { ...outcome, result: await run.apply(action.plan) };
  } catch (err) {
    // A failed fence changed nothing; a node that came back between locking and reading is not locked: the next run handles it.
    if (!isPmcError(err)) throw err;
    return { ...outcome, error: `${err.message} [${err.code}]${err.hint ? ` (${err.hint})` : ''}` };
  }
}

/**
 * failed (exit 1): something is blocked or an action failed; partial (exit 3): all that could
 * be done was done, but a node still does not answer; ok (exit 0): healthy, or healed.
 */
export function healReport(state: ClusterState, result: HealResult): Report<HealResult> {
  const failed = result.outcomes.some((o) => o.action.kind === 'blocked' || o.error !== undefined || (o.result !== undefined && o.result.status !== 'applied'));
  const down = state.nodes.some((n) => !n.reachable);
  return { data: result, status: failed ? 'failed' : down ? 'partial' : 'ok', warnings: unreachableWarnings(state) };
}
