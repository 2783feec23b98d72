import { createReadStream } from 'node:fs';
import type { SshPool } from '../ssh/pool.js';
import type { RemoteResult } from '../ssh/types.js';
import { isPmcError, PmcError } from '../util/errors.js';
import type { Plan, Step } from './plan.js';

/** What happened to one step: its remote result, or why the node could not run it. */
export interface StepRecord {
  step: Step;
  ok: boolean;
  result: RemoteResult | undefined;
  error: string | undefined;
}

export interface ApplyResult {
  title: string;
  status: 'applied' | 'failed' | 'dry-run';
  /** Steps that ran to success, in order. */
  done: StepRecord[];
  /** The step that failed, if any. */
  failed: StepRecord | undefined;
  /** Undo steps run after the failure, newest first, and how each went. */
  undone: StepRecord[];
  /** The plan, for --dry-run and --json. */
  plan: Plan;
}

export interface ApplyOptions {
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

/**
 * Runs a plan's steps in order. When a step fails, the completed steps' undo commands run in
 * reverse order, so a half-done operation leaves nothing behind (or, if an undo fails too,
 * says exactly what remains, which `pmc cluster verify` will also show).
 */
export async function applyPlan(pool: SshPool, plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const done: StepRecord[] = [];
  for (const [i, step] of plan.steps.entries()) {
    opts.log(`[${i + 1}/${plan.steps.length}] ${step.node}: ${step.why}`);
    const record = await runStep(pool, step);
    if (!record.ok) {
      opts.log(`failed on ${step.node}: ${record.error}`);
      const undone = await undo(pool, done, opts);
      return { title: plan.title, status: 'failed', done, failed: record, undone, plan };
    }
    done.push(record);
  }
  return { title: plan.title, status: 'applied', done, failed: undefined, undone: [], plan };
}

/**
 * Runs every step of a plan whose steps stand on their own (repairs, bringing resources up one
 * by one): a failed step is recorded and the next one still runs, and nothing is undone, so
 * one broken resource does not keep the others down.
 */
export async function applyEach(pool: SshPool, plan: Plan, opts: ApplyOptions): Promise<StepRecord[]> {
  const records: StepRecord[] = [];
  for (const [i, step] of plan.steps.entries()) {
    opts.log(`[${i + 1}/${plan.steps.length}] ${step.node}: ${step.why}`);
    const record = await runStep(pool, step);
    if (!record.ok) opts.log(`failed on ${step.node}: ${record.error}`);
    records.push(record);
  }
  return records;
}

async function undo(pool: SshPool, done: readonly StepRecord[], opts: ApplyOptions): Promise<StepRecord[]> {
  const undone: StepRecord[] = [];
  for (const record of [...done].reverse()) {
    const { undo: how, node } = record.step;
    if (!how) continue;
    opts.log(`undo on ${node}: ${how.why}`);
    undone.push(await runStep(pool, { node, command: how.command, why: how.why }));
  }
  return undone;
}

async function runStep(pool: SshPool, step: Step): Promise<StepRecord> {
  try {
    const stdin = await stepInput(pool, step);
    const result = await pool.run(step.node, step.command, {
      ...(stdin === undefined ? {} : { stdin }),
      ...(step.timeoutMs === undefined ? {} : { timeoutMs: step.timeoutMs }),
    });
    const ok = result.exitCode === 0 || (result.exitCode !== null && (step.okExitCodes ?? []).includes(result.exitCode));
    return { step, ok, result, error: ok ? undefined : describeFailure(result) };
  } catch (err) {
    if (!isPmcError(err)) throw err;
    return { step, ok: false, result: undefined, error: err.message };
  }
}

async function stepInput(pool: SshPool, step: Step): Promise<Buffer | string | NodeJS.ReadableStream | undefined> {
  if (!step.input) return undefined;
  if ('localFile' in step.input) return createReadStream(step.input.localFile);
  const source = await pool.run(step.input.fromNode, step.input.command);
  if (source.exitCode !== 0) {
    throw new PmcError('PMC_E_REMOTE', `${step.input.fromNode}: ${step.input.command} failed: ${describeFailure(source)}`);
  }
  return source.stdout;
}

export function describeFailure(result: RemoteResult): string {
  const why = result.timedOut ? `timed out after ${Math.round(result.durationMs / 1000)} s`
    : result.exitCode === null ? `killed by ${result.signal ?? 'a signal'}` : `exit ${result.exitCode}`;
  const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
  return detail ? `${why}: ${detail}` : why;
}
