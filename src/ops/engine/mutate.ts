/**
 * The one path of every command that changes something: lock the nodes, read the state,
 * plan, (confirm,) apply, and leave an audit trail on the nodes.
 *
 * A new mutating command calls `mutate`:
 *
 *     return mutate(ctx, {
 *       lock: vmNodesGuess,                 // nodes the plan may touch, as well as known before reading
 *       vm: name,                           // for the audit trail and `pmc log <vm>`
 *       dryRun: opts.dryRun,
 *       plan: (state) => planVmFoo(state, name, ctx.config),
 *       confirm: (state, plan) => ctx.confirm(name, plan.title, '-f'),   // optional
 *     });
 *
 * `--dry-run` reads and plans without any lock. Otherwise the state is read only once every
 * node in `lock` is locked (minors, ports and free space are chosen from it, so two runs never
 * pick the same); if the plan then touches a node that was not locked, the run locks that one
 * too, in order, and reads and plans again. A command with its own flow (several plans, waits
 * in between) uses `underLock` and applies through the LockedRun it gets.
 */
import type { ClusterState } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { AuditTrail } from './audit.js';
import type { OpContext, Report } from './context.js';
import { applyEach, applyPlan, dryRunResult, type ApplyResult, type StepRecord } from './execute.js';
import { lockNodes, type NodeLocks } from './lock.js';
import { planNodes, type Plan } from './plan.js';

export interface Mutation {
  /** Nodes to lock before reading: those the plan will touch, as far as known before reading. */
  lock: readonly string[];
  /** The VM the command is about, if any (audit trail). */
  vm?: string | undefined;
  dryRun: boolean;
  /** Reads what the plan depends on, under the lock; default: the whole cluster (readCluster). */
  read?: (ctx: OpContext) => Promise<ClusterState>;
  plan(state: ClusterState): Plan | Promise<Plan>;
  /** Asks the operator, after planning and before anything changes; skipped for a dry run. */
  confirm?(state: ClusterState, plan: Plan): Promise<void>;
  /** Nodes whose being unreachable makes the result partial (the command did what it could). */
  mattering?(state: ClusterState): readonly string[];
}

type Round = { missing: string[] } | { report: Report<ApplyResult> };

/** How many times a run may find its plan touches a node it did not lock before it gives up. */
const MAX_LOCK_ROUNDS = 3;

export async function mutate(ctx: OpContext, spec: Mutation): Promise<Report<ApplyResult>> {
  const read = spec.read ?? readCluster;
  if (spec.dryRun) {
    const state = await read(ctx);
    return finish(spec, state, dryRunResult(await spec.plan(state)));
  }
  let lock = [...spec.lock];
  for (let round = 1; ; round++) {
    const outcome = await underLock(ctx, { lock, vm: spec.vm }, async (run): Promise<Round> => {
      const state = await read(ctx);
      run.assertNotStopped();
      const plan = await spec.plan(state);
      const missing = planNodes(plan).filter((n) => !run.locks.nodes.includes(n));
      if (missing.length > 0) return { missing };
      await spec.confirm?.(state, plan);
      run.assertNotStopped();
      return { report: finish(spec, state, await run.apply(plan)) };
    }, (o) => ('missing' in o ? `not applied: the plan also touches ${o.missing.join(', ')}; locking ${o.missing.length > 1 ? 'them' : 'it'} too and reading again` : undefined));
    if ('report' in outcome) return outcome.report;
    const unreachable = outcome.missing.filter((n) => lock.includes(n));
    if (unreachable.length > 0 || round >= MAX_LOCK_ROUNDS) {
      throw new PmcError('PMC_E_LOCKED', `the plan touches ${outcome.missing.join(', ')}, which this run could not lock; nothing was changed`,
        'the cluster changed while pmc read it, or the node just came back: run the command again');
    }
    ctx.log(`the plan also touches ${outcome.missing.join(', ')}: locking ${outcome.missing.length > 1 ? 'them' : 'it'} too, then reading again`);
    lock = [...lock, ...outcome.missing];
  }
}

function finish(spec: Mutation, state: ClusterState, result: ApplyResult): Report<ApplyResult> {
  const mattering = spec.mattering?.(state) ?? [];
  const down = state.nodes.filter((n) => !n.reachable && mattering.includes(n.name));
  const status = result.status === 'failed' || result.status === 'interrupted' ? 'failed' : down.length > 0 ? 'partial' : 'ok';
  return { data: result, status, warnings: unreachableWarnings({ ...state, nodes: down }) };
}

/** What a command's body gets while it holds the lock: apply through it, so steps are audited and interruptible. */
export interface LockedRun {
  locks: NodeLocks;
  audit: AuditTrail;
  /** All or nothing: undone on failure or Ctrl-C. */
  apply(plan: Plan): Promise<ApplyResult>;
  /** Each step on its own: a failure does not stop the others, nothing is undone. */
  applyEach(plan: Plan): Promise<StepRecord[]>;
  /** Throws PMC_E_INTERRUPTED if the operator asked to stop (between reads, before changing). */
  assertNotStopped(): void;
}

/**
 * Locks `lock`, runs `body`, and writes the audit trail's start and end on every locked node;
 * the lock is released however `body` ends. `outcome` describes the body's value for the
 * trail's last line (default: how its applies went).
 */
export async function underLock<T>(ctx: OpContext, spec: { lock: readonly string[]; vm?: string | undefined }, body: (run: LockedRun) => Promise<T>, outcome?: (value: T) => string | undefined): Promise<T> {
  const assertNotStopped = (): void => {
    if (ctx.stop.level !== 'none') {
      throw new PmcError('PMC_E_INTERRUPTED', `${ctx.stop.reason ?? 'interrupted'} before anything was changed`);
    }
  };
  assertNotStopped();
  const locks = await lockNodes(ctx, spec.lock);
  const audit = new AuditTrail(ctx, spec.vm);
  audit.begin(locks.nodes);
  const applied: string[] = [];
  const assertLocked = (plan: Plan): void => {
    const unlocked = planNodes(plan).filter((n) => !locks.nodes.includes(n));
    if (unlocked.length > 0) {
      throw new PmcError('PMC_E_LOCKED', `${plan.title}: ${unlocked.join(', ')} not locked by this run; nothing of it was changed`, 'run the command again');
    }
  };
  const run: LockedRun = {
    locks,
    audit,
    assertNotStopped,
    async apply(plan) {
      assertLocked(plan);
      const result = await applyPlan(ctx.pool, plan, { log: ctx.log, stop: ctx.stop, observer: audit });
      applied.push(describeOutcome(result));
      return result;
    },
    async applyEach(plan) {
      assertLocked(plan);
      const records = await applyEach(ctx.pool, plan, { log: ctx.log, stop: ctx.stop, observer: audit });
      const failed = records.filter((r) => !r.ok).length;
      applied.push(`${plan.title}: ${records.length - failed} of ${plan.steps.length} steps done${failed ? `, ${failed} failed` : ''}`);
      return records;
    },
  };
  let end = 'nothing to do';
  try {
    const value = await body(run);
    end = outcome?.(value) ?? (applied.length ? applied.join('; ') : 'nothing to do');
    return value;
  } catch (err) {
    end = `${applied.length ? `${applied.join('; ')}; then ` : ''}stopped: ${isPmcError(err) ? `${err.message} [${err.code}]` : 'internal error'}`;
    throw err;
  } finally {
    const lost = locks.lost();
    audit.end(locks.nodes, lost.length ? `${end} (lock lost on ${lost.join('; ')})` : end);
    await audit.flush();
    await locks.release();
  }
}

function describeOutcome(result: ApplyResult): string {
  const remains = result.remaining.length ? `; ${result.remaining.length} change(s) remain: ${result.remaining.map((r) => `${r.node}: ${r.done}`).join('; ')}` : '';
  if (result.status === 'applied') return `applied: ${result.title} (${result.done.length} steps)`;
  const undone = `${result.undone.filter((u) => u.ok).length} undone`;
  if (result.status === 'interrupted') return `interrupted by ${result.interrupted} after ${result.done.length} steps: ${result.title}; ${undone}${remains}`;
  return `failed: ${result.title}: step ${result.failed!.index + 1} on ${result.failed!.step.node}: ${result.failed!.error}; ${undone}${remains}`;
}
