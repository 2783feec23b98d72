/**
 * `pmc vm mv`: live migration of VMs to their DRBD peers (a shared-storage VM to any node,
 * `--to`), and `--cleanup` after an
 * interrupted one. Every VM is checked before anything changes; then each migration runs
 * phase by phase (prepare, migrate, verify, finish, see migrate-plan.ts). Any failure is
 * followed by reading the cluster again and applying the cleanup plan: the VM keeps running
 * where it runs, that node is the only Primary, and two primaries are off.
 */
import type { OpContext, Report } from '../engine/context.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState, Vm } from '../../model/cluster.js';
import { readCluster } from '../../model/read.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import { applyPlan, describeFailure, type ApplyResult, type StepRecord } from '../engine/execute.js';
import type { Plan } from '../engine/plan.js';
import { assertNotIgnored } from '../engine/run-plan.js';
import { mutateVm } from './lifecycle.js';
import { underLock, type LockedRun } from '../engine/mutate.js';
import { planVmCleanup } from './migrate-cleanup.js';
import {
  assertTimeout, attachedFiles, migrationAsPlan, planMigrations, PROGRESS_PREFIX, type MigrateFacts, type VmMigration,
} from './migrate-plan.js';
import { inParallel } from '../../util/parallel.js';

export interface MoveRequest {
  vms: string[];
  /** -p: every VM running on this node. */
  pm: string | undefined;
  /** --to: the node to migrate to (a shared VM: any node; a DRBD VM: its peer only). */
  to: string | undefined;
  parallel: number;
  keepGoing: boolean;
  timeoutSeconds: number;
  dryRun: boolean;
}

/** What became of one VM's migration. */
export interface MigrationOutcome {
  vm: string;
  source: string | undefined;
  target: string | undefined;
  /** refused: a check failed, nothing changed; not started: an earlier VM failed (no --keep-going). */
  status: 'migrated' | 'failed' | 'refused' | 'not started' | 'dry-run';
  /** Why it was refused or failed. */
  error: string | undefined;
  hint: string | undefined;
  plan: Plan | undefined;
  done: StepRecord[];
  failed: StepRecord | undefined;
  recovery: Recovery | undefined;
  timings: MigrationTimings | undefined;
}

/** Where the time went (milliseconds). */
export interface MigrationTimings {
  /** Role changes and checks on the nodes before and after virsh migrate (pmc's own work). */
  roleChangesMs: number;
  /** virsh migrate itself. */
  migrateMs: number;
  totalMs: number;
}

/** The cleanup after a failure: the plan it applied, or why it refused. */
export interface Recovery {
  result: ApplyResult | undefined;
  refused: string | undefined;
  hint: string | undefined;
}

export interface MoveReport {
  /** Reading the cluster, gathering facts and planning every VM (pmc's own work, shared by all). */
  checksMs: number;
  outcomes: MigrationOutcome[];
  /** Ignored VMs that -p skipped. */
  skipped: string[];
}

export async function moveVms(ctx: OpContext, req: MoveRequest): Promise<Report<MoveReport>> {
  assertTimeout(req.timeoutSeconds);
  if (!Number.isInteger(req.parallel) || req.parallel < 1) {
    throw new PmcError('PMC_E_USAGE', `--parallel must be a whole number from 1 (got ${req.parallel})`, 'e.g. --parallel 2');
  }
  if ((req.pm === undefined) === (req.vms.length === 0)) {
    throw new PmcError('PMC_E_USAGE', req.pm === undefined ? 'name the VMs to migrate, or a node with -p' : 'give either VMs or -p PM, not both',
      'pmc vm mv web-1 db-1, or pmc vm mv -p pm-1 (every VM running on pm-1)');
  }
  if (req.pm !== undefined) selectNodes(ctx.config, [req.pm]);
  if (req.to !== undefined) selectNodes(ctx.config, [req.to]);
  if (req.dryRun) return planAndMove(ctx, req);
  // Every node: a migration's checks read the whole cluster, and nothing may change it meanwhile.
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name), vm: req.vms.length === 1 ? req.vms[0] : undefined },
    () => planAndMove(ctx, req),
    (report) => report.data.outcomes.map((o) => `${o.vm}: ${o.status}`).join(', ') || 'nothing to migrate');
}

async function planAndMove(ctx: OpContext, req: MoveRequest): Promise<Report<MoveReport>> {
  const started = Date.now();
  const state = await readCluster(ctx);
  const { names, skipped } = vmsToMove(state, req, ctx.config.ignorePrefix);
  const facts = await gatherMigrateFacts(ctx, state, names.map((n) => state.vms.find((vm) => vm.name === n)).filter((vm): vm is Vm => vm !== undefined));

  const planned = planMigrations(state, names, ctx.config, { timeoutSeconds: req.timeoutSeconds, facts, to: req.to });
  // One VM alone, or several without --keep-going: refuse the whole command before anything changes.
  const refused = planned.find((p) => p.refusal);
  if (refused && !req.keepGoing) throw refused.refusal;
  const checksMs = Date.now() - started;

  let stop = false;
  const outcomes = await inParallel(planned, req.parallel, async (p): Promise<MigrationOutcome> => {
    if (p.refusal) return refusedOutcome(p.name, p.refusal);
    if (req.dryRun) return { ...emptyOutcome(p.migration!), status: 'dry-run' };
    if (stop) return { ...emptyOutcome(p.migration!), status: 'not started' };
    const outcome = await executeMigration(ctx, p.migration!);
    if (outcome.status !== 'migrated' && !req.keepGoing) stop = true;
    return outcome;
  });
  const bad = outcomes.some((o) => o.status === 'failed' || o.status === 'refused' || o.status === 'not started');
  return { data: { checksMs, outcomes, skipped }, status: bad ? 'failed' : 'ok', warnings: [] };
}

function vmsToMove(state: ClusterState, req: MoveRequest, ignorePrefix: string): { names: string[]; skipped: string[] } {
  if (req.pm === undefined) return { names: [...new Set(req.vms)], skipped: [] };
  const running = state.vms.filter((vm) => vm.runningOn.includes(req.pm!));
  const skipped = running.filter((vm) => vm.ignored).map((vm) => vm.name);
  for (const vm of running) if (!vm.ignored) assertNotIgnored(vm, ignorePrefix);
  return { names: running.filter((vm) => !vm.ignored).map((vm) => vm.name), skipped };
}

/**
 * Reads, on each node of the VMs (every node for a shared VM, which may go to any), whether the
 * bridges their NICs use exist and the sha256 of every file (ISO) attached to them: the checks
 * the planner cannot make from the probe.
 */
export async function gatherMigrateFacts(ctx: OpContext, state: ClusterState, vms: readonly Vm[]): Promise<MigrateFacts> {
  const wanted = new Map<string, { bridges: Set<string>; files: Set<string> }>();
  for (const vm of vms) {
    const domains = vm.replicas.map((r) => r.domain).filter((d) => d !== undefined);
    const nodes = vm.shared ? state.nodes.filter((n) => n.reachable).map((n) => n.name)
      : vm.replicas.filter((r) => r.reachable && state.nodes.some((n) => n.name === r.node)).map((r) => r.node);
    for (const node of nodes) {
      const w = wanted.get(node) ?? { bridges: new Set(), files: new Set() };
      wanted.set(node, w);
      for (const d of domains) {
        for (const nic of d.interfaces) if (nic.bridge) w.bridges.add(nic.bridge);
        for (const file of attachedFiles(d, vm)) w.files.add(file);
      }
    }
  }
  const facts: MigrateFacts = {};
  const outcomes = await ctx.pool.forEachNode([...wanted.keys()], async (node) => {
    const w = wanted.get(node)!;
    const command = [
      ...[...w.bridges].map((b) => `if [ -d /sys/class/net/${quote(b)}/bridge ]; then echo "bridge yes "${quote(b)}; else echo "bridge no "${quote(b)}; fi`),
      ...[...w.files].map((f) => `if [ -f ${quote(f)} ]; then echo "file $(sha256sum < ${quote(f)} | cut -d ' ' -f 1) "${quote(f)}; else echo "file - "${quote(f)}; fi`),
      'true',
    ].join('\n');
    const result = await ctx.pool.run(node, command, { timeoutMs: 300_000 });
    if (result.exitCode !== 0) {
      throw new PmcError('PMC_E_REMOTE', `${node}: checking bridges and ISO images failed: ${describeFailure(result)}; nothing was changed`, `run pmc pm init ${node}`);
    }
    return result.stdout;
  });
  for (const o of outcomes) {
    if (!o.ok) throw o.error;
    const nodeFacts = { bridges: {} as Record<string, boolean>, files: {} as Record<string, string | null> };
    for (const line of o.value.split('\n')) {
      const m = /^(bridge|file) (\S+) (.*)$/.exec(line);
      if (m?.[1] === 'bridge') nodeFacts.bridges[m[3]!] = m[2] === 'yes';
      if (m?.[1] === 'file') nodeFacts.files[m[3]!] = m[2] === '-' ? null : m[2]!;
    }
    facts[o.node] = nodeFacts;
  }
  return facts;
}

/** A move of pm evacuate or cluster rebalance: a live migration, or another plan (a demotion, a copy moved). */
export interface MoveItem {
  plan: Plan;
  migration: VmMigration | undefined;
}

/** What running a move gave: vm mv's report of a migration, or the applied plan's result. */
export interface MoveRun {
  migration?: MigrationOutcome | undefined;
  result?: ApplyResult | undefined;
}

/**
 * Runs moves, one call per move: a migration through vm mv's executor, any other plan through
 * the locked run. The first failure, or Ctrl-C, leaves every move not yet begun 'not started',
 * so a run stops where something went wrong instead of moving more VMs around it.
 */
export function moveRunner<I extends MoveItem, O extends MoveRun>(ctx: OpContext, run: LockedRun, outcome: (item: I, status: 'done' | 'failed' | 'not started') => O): (item: I) => Promise<O> {
  let stopped = false;
  return async (item) => {
    if (stopped || ctx.stop.level !== 'none') return outcome(item, 'not started');
    if (item.migration) {
      const migration = await executeMigration(ctx, item.migration);
      const ok = migration.status === 'migrated';
      stopped ||= !ok;
      return { ...outcome(item, ok ? 'done' : 'failed'), migration };
    }
    const result = await run.apply(item.plan);
    const ok = result.status === 'applied';
    stopped ||= !ok;
    return { ...outcome(item, ok ? 'done' : 'failed'), result };
  };
}

/**
 * Runs one planned migration (the executor `pmc pm evacuate` reuses per VM). The role-change
 * phases (prepare, finish) are separate calls from the migration itself, so they can be made
 * uninterruptible without touching the rest.
 */
export async function executeMigration(ctx: OpContext, m: VmMigration): Promise<MigrationOutcome> {
  const outcome = emptyOutcome(m);
  const started = Date.now();
  let migrateMs = 0;
  const finishTimings = () => {
    const totalMs = Date.now() - started;
    outcome.timings = { roleChangesMs: totalMs - migrateMs, migrateMs, totalMs };
  };
  const fail = async (record: StepRecord): Promise<MigrationOutcome> => {
    outcome.status = 'failed';
    outcome.failed = record;
    outcome.error = `${record.step.node}: ${record.step.why}: ${record.error}`;
    ctx.log(`${m.vm}: failed; reading where it runs to recover`);
    outcome.recovery = await recover(ctx, m.vm);
    finishTimings();
    return outcome;
  };

  const runPhase = async (phase: Plan): Promise<StepRecord | undefined> => {
    const result = await applyPlan(ctx.pool, phase, { log: ctx.log });
    outcome.done.push(...result.done);
    return result.failed;
  };

  const prepareFailed = await runPhase(m.prepare);
  if (prepareFailed) return fail(prepareFailed);

  ctx.log(`${m.source}: ${m.migrate.why}`);
  const migrated = await runMigrateStep(ctx, m);
  migrateMs = migrated.result?.durationMs ?? 0;
  if (!migrated.ok) return fail(migrated);
  outcome.done.push(migrated);

  const afterFailed = await runPhase(m.verify) ?? await runPhase(m.finish);
  if (afterFailed) return fail(afterFailed);
  outcome.status = 'migrated';
  finishTimings();
  return outcome;
}

/** virsh migrate on the source, its `PMC-MIGRATE` lines turned into progress every few seconds. */
async function runMigrateStep(ctx: OpContext, m: VmMigration): Promise<StepRecord> {
  const step = m.migrate;
  let lastReport = 0;
  let pending = '';
  const onStdout = (chunk: Buffer): void => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    const sample = lines.reverse().map((l) => l.split(' ')).find((w) => w[0] === PROGRESS_PREFIX);
    if (!sample || Date.now() - lastReport < PROGRESS_INTERVAL_MS) return;
    const remaining = Number(sample[1]);
    const total = Number(sample[2]);
    if (!(total > 0)) return;
    lastReport = Date.now();
    const percent = Math.max(0, Math.floor(((total - remaining) * 100) / total));
    ctx.log(`  ${m.vm}: ${percent}% of memory sent, ${formatBytes(remaining)} of ${formatBytes(total)} remaining`);
  };
  try {
    const result = await ctx.pool.run(step.node, step.command, { onStdout, ...(step.timeoutMs ? { timeoutMs: step.timeoutMs } : {}) });
    const ok = result.exitCode === 0;
    return { step, index: 0, ok, result, error: ok ? undefined : describeFailure(result) };
  } catch (err) {
    if (!isPmcError(err)) throw err;
    return { step, index: 0, ok: false, result: undefined, error: err.message };
  }
}

const PROGRESS_INTERVAL_MS = 3000;

/** Reads the cluster again and applies the cleanup plan; a refusal is reported, not thrown. */
async function recover(ctx: OpContext, vm: string): Promise<Recovery> {
  try {
    const state = await readCluster(ctx);
    const plan = planVmCleanup(state, vm, ctx.config);
    const result = await applyPlan(ctx.pool, plan, { log: ctx.log });
    return { result, refused: undefined, hint: undefined };
  } catch (err) {
    if (!isPmcError(err)) throw err;
    return { result: undefined, refused: err.message, hint: err.hint };
  }
}

function emptyOutcome(m: VmMigration): MigrationOutcome {
  return {
    vm: m.vm, source: m.source, target: m.target, status: 'dry-run', error: undefined, hint: undefined,
    plan: migrationAsPlan(m), done: [], failed: undefined, recovery: undefined, timings: undefined,
  };
}

function refusedOutcome(name: string, err: PmcError): MigrationOutcome {
  return {
    vm: name, source: undefined, target: undefined, status: 'refused', error: err.message, hint: err.hint,
    plan: undefined, done: [], failed: undefined, recovery: undefined, timings: undefined,
  };
}

/** `pmc vm mv --cleanup VM`. */
export async function cleanupVm(ctx: OpContext, name: string, opts: { dryRun: boolean }): Promise<Report<ApplyResult>> {
  return mutateVm(ctx, name, { dryRun: opts.dryRun, plan: (state) => planVmCleanup(state, name, ctx.config) });
}
