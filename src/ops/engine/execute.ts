import { createReadStream, statSync } from 'node:fs';
import { Transform } from 'node:stream';
import type { SshPool } from '../../ssh/pool.js';
import type { RemoteResult } from '../../ssh/types.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { formatBytes } from '../../util/units.js';
import type { StopToken } from './context.js';
import { dependencies, type Plan, type Step } from './plan.js';

/** What happened to one step: its remote result, or why the node could not run it. */
export interface StepRecord {
  step: Step;
  /** Its place in the plan (0-based); -1 for an undo command. */
  index: number;
  ok: boolean;
  result: RemoteResult | undefined;
  error: string | undefined;
}

/** A change that stays on a node because its undo did not run or failed. */
export interface Remaining {
  node: string;
  /** What the step had done. */
  done: string;
  /** The command that would take it back. */
  undo: string;
  /** Why it was not taken back: the undo's failure, or the second interruption. */
  reason: string;
}

export interface ApplyResult {
  title: string;
  status: 'applied' | 'failed' | 'interrupted' | 'dry-run';
  /** Steps that ran to success, in the order they finished. */
  done: StepRecord[];
  /** The step that failed, if any (the first one to, when steps ran at the same time). */
  failed: StepRecord | undefined;
  /** The signal (or reason) that interrupted the run, if one did. */
  interrupted: string | undefined;
  /** Undo steps run after the failure or interruption, newest first, and how each went. */
  undone: StepRecord[];
  /** What stays changed on which node because its undo failed or was stopped. */
  remaining: Remaining[];
  /** The plan, for --dry-run and --json. */
  plan: Plan;
}

/** Told about every step and undo as it ends (the audit trail listens here). */
export interface StepObserver {
  step(record: StepRecord, total: number): void;
  undo(record: StepRecord): void;
}

export interface ApplyOptions {
  /** Progress lines (stderr). */
  log: (line: string) => void;
  /** The operator's wish to stop; read between steps, never kills a running one. */
  stop?: StopToken;
  observer?: StepObserver;
}

/** A result for a plan shown, not run. */
export function dryRunResult(plan: Plan): ApplyResult {
  return { title: plan.title, status: 'dry-run', done: [], failed: undefined, interrupted: undefined, undone: [], remaining: [], plan };
}

/**
 * Runs a plan: each step once the steps it is after are done, steps that are ready at the
 * same time at once. When a step fails, or the operator interrupts (the running steps finish
 * first, and a step marked uninterruptible that follows one of them runs too), no new step
 * starts and the completed steps' undo commands run in reverse order of completion, so a
 * half-done operation leaves nothing behind. If an undo fails, or a second interruption stops
 * the undo, the result lists exactly what remains on which node (`pmc cluster verify` shows it too).
 */
export async function applyPlan(pool: SshPool, plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const deps = dependencies(plan);
  const total = plan.steps.length;
  const status: Array<'waiting' | 'running' | 'ok' | 'failed'> = plan.steps.map(() => 'waiting');
  const done: StepRecord[] = [];
  let failed: StepRecord | undefined;
  const running = new Map<number, Promise<void>>();
  const stopping = (): boolean => failed !== undefined || (opts.stop !== undefined && opts.stop.level !== 'none');
  const announce = opts.stop?.onRequest(() => {
    const stop = opts.stop!;
    if (stop.level === 'undo') {
      const busy = [...running.keys()].map((i) => `${plan.steps[i]!.node}: ${plan.steps[i]!.why}`);
      opts.log(`${stop.reason}: stopping after ${busy.length ? `the running step (${busy.join('; ')})` : 'this step'}, then undoing what was done; interrupt again to stop the undo too`);
    } else {
      opts.log(`${stop.reason} again: the undo stops after its running command; what remains is listed`);
    }
  });

  const launch = (i: number): void => {
    const step = plan.steps[i]!;
    status[i] = 'running';
    opts.log(`[${i + 1}/${total}] ${step.node}: ${step.why}`);
    running.set(i, runStep(pool, step, i, opts.log).then((record) => {
      running.delete(i);
      status[i] = record.ok ? 'ok' : 'failed';
      opts.observer?.step(record, total);
      if (record.ok) done.push(record);
      else {
        opts.log(`failed on ${step.node}: ${record.error}`);
        failed ??= record;
      }
    }));
  };

  try {
    for (;;) {
      const ready = plan.steps.flatMap((_step, i) => (status[i] === 'waiting' && deps[i]!.every((d) => status[d] === 'ok') ? [i] : []));
      for (const i of ready) {
        const step = plan.steps[i]!;
        if (!stopping()) launch(i);
        else if (failed === undefined && step.uninterruptible) {
          opts.log(`not stopping before ${step.node}: ${step.why}: ${step.uninterruptible}`);
          launch(i);
        }
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
  } finally {
    announce?.();
  }

  const complete = status.every((s) => s === 'ok');
  if (complete) {
    if (opts.stop && opts.stop.level !== 'none') opts.log(`${opts.stop.reason} came after the last step: the plan is complete, nothing to undo`);
    return { title: plan.title, status: 'applied', done, failed: undefined, interrupted: undefined, undone: [], remaining: [], plan };
  }
  const { undone, remaining } = await undo(pool, done, opts);
  const interrupted = failed ? undefined : opts.stop?.reason ?? 'interrupted';
  return { title: plan.title, status: failed ? 'failed' : 'interrupted', done, failed, interrupted, undone, remaining, plan };
}

/**
 * Runs every step of a plan whose steps stand on their own (repairs, bringing resources up one
 * by one): a failed step is recorded and the next one still runs, and nothing is undone, so
 * one broken resource does not keep the others down. An interruption stops it between steps.
 */
export async function applyEach(pool: SshPool, plan: Plan, opts: ApplyOptions): Promise<StepRecord[]> {
  const records: StepRecord[] = [];
  for (const [i, step] of plan.steps.entries()) {
    if (opts.stop && opts.stop.level !== 'none') {
      opts.log(`${opts.stop.reason}: stopped before step ${i + 1} of ${plan.steps.length}; the steps before it stay done (each stands on its own)`);
      break;
    }
    opts.log(`[${i + 1}/${plan.steps.length}] ${step.node}: ${step.why}`);
    const record = await runStep(pool, step, i);
    opts.observer?.step(record, plan.steps.length);
    if (!record.ok) opts.log(`failed on ${step.node}: ${record.error}`);
    records.push(record);
  }
  return records;
}

async function undo(pool: SshPool, done: readonly StepRecord[], opts: ApplyOptions): Promise<{ undone: StepRecord[]; remaining: Remaining[] }> {
  const undone: StepRecord[] = [];
  const remaining: Remaining[] = [];
  for (const record of [...done].reverse()) {
    const { undo: how, node, why } = record.step;
    if (!how) continue;
    if (opts.stop?.level === 'halt') {
      remaining.push({ node, done: why, undo: how.command, reason: `not undone: stopped by ${opts.stop.reason} again` });
      continue;
    }
    opts.log(`undo on ${node}: ${how.why}`);
    const result = await runStep(pool, { node, command: how.command, why: how.why }, -1);
    opts.observer?.undo(result);
    undone.push(result);
    if (!result.ok) remaining.push({ node, done: why, undo: how.command, reason: `the undo failed: ${result.error}` });
  }
  return { undone, remaining };
}

async function runStep(pool: SshPool, step: Step, index: number, log?: (line: string) => void): Promise<StepRecord> {
  const progress = step.progress && log
    ? progressReporter(step.node, log, typeof step.progress === 'object' ? step.progress.totalBytes : undefined)
    : undefined;
  try {
    const stdin = await stepInput(pool, step, progress);
    const result = await pool.run(step.node, step.command, {
      ...(stdin === undefined ? {} : { stdin }),
      ...(step.timeoutMs === undefined ? {} : { timeoutMs: step.timeoutMs }),
      ...(progress ? { onStdout: progress.onOutput, onStderr: progress.onOutput } : {}),
    });
    const ok = result.exitCode === 0 || (result.exitCode !== null && (step.okExitCodes ?? []).includes(result.exitCode));
    return { step, index, ok, result, error: ok ? undefined : describeFailure(result) };
  } catch (err) {
    if (!isPmcError(err)) throw err;
    return { step, index, ok: false, result: undefined, error: err.message };
  }
}

async function stepInput(pool: SshPool, step: Step, progress: ProgressReporter | undefined): Promise<Buffer | string | NodeJS.ReadableStream | undefined> {
  if (!step.input) return undefined;
  if ('localFile' in step.input) {
    const file = createReadStream(step.input.localFile);
    return progress ? progress.countSent(file, fileSize(step.input.localFile)) : file;
  }
  if ('text' in step.input) return step.input.text;
  const source = await pool.run(step.input.fromNode, step.input.command);
  if (source.exitCode !== 0) {
    throw new PmcError('PMC_E_REMOTE', `${step.input.fromNode}: ${step.input.command} failed: ${describeFailure(source)}`);
  }
  return source.stdout;
}

/** Progress lines of a long step, at most one per PROGRESS_INTERVAL_MS so a log stays readable. */
const PROGRESS_INTERVAL_MS = 5000;

type ProgressReporter = ReturnType<typeof progressReporter>;

/** `done` of `total` bytes as a share, what happened to them, then the time left at the average rate since `startedAt`. */
export function describeShare(done: number, total: number, verb: string, startedAt: number, now = Date.now()): string {
  const percent = Math.min(100, Math.floor((done * 100) / total));
  const seconds = (now - startedAt) / 1000;
  const left = done > 0 && seconds > 0 && done < total ? `, about ${Math.ceil(((total - done) * seconds) / done)} s left` : '';
  return `${formatBytes(done)} of ${formatBytes(total)} (${percent}%) ${verb}${left}`;
}

/** dd's status=progress line: `134217728 bytes (134 MB, 128 MiB) copied, 5 s, 26.8 MB/s`. */
const DD_PROGRESS = /^(\d+) bytes .*copied, [\d.]+ s, (.+)$/;

/** A dd progress line as a share of `totalBytes` with its rate and the time left; undefined for any other line. */
export function describeDdProgress(line: string, totalBytes: number, startedAt: number, now = Date.now()): string | undefined {
  const dd = DD_PROGRESS.exec(line);
  return dd ? describeShare(Number(dd[1]), totalBytes, `copied at ${dd[2]}`, startedAt, now) : undefined;
}

function progressReporter(node: string, log: (line: string) => void, totalBytes: number | undefined) {
  const startedAt = Date.now();
  let lastReport = startedAt;
  const report = (text: string): void => {
    if (Date.now() - lastReport < PROGRESS_INTERVAL_MS) return;
    lastReport = Date.now();
    log(`  ${node}: ${text}`);
  };
  return {
    /** dd's status=progress rewrites its line with \r: the newest line of a chunk is the news. */
    onOutput: (chunk: Buffer): void => {
      const newest = chunk.toString('utf8').split(/[\r\n]+/).map((line) => line.trim()).filter(Boolean).at(-1);
      if (!newest) return;
      report((totalBytes === undefined ? undefined : describeDdProgress(newest, totalBytes, startedAt)) ?? newest);
    },
    /** Passes a local file through, counting what has been read from it (and so sent). */
    countSent: (source: NodeJS.ReadableStream, fileBytes: number | undefined): NodeJS.ReadableStream => {
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          sent += chunk.length;
          report(fileBytes ? describeShare(sent, fileBytes, 'sent', startedAt) : `${formatBytes(sent)} sent`);
          done(null, chunk);
        },
      });
      source.on('error', (err: Error) => counter.destroy(err));
      return source.pipe(counter);
    },
  };
}

/** Undefined when the file cannot be read: the read stream then reports why, as the step's failure. */
function fileSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

/** dd's statistics and progress: what a tool copied, never why it failed. */
const COPY_STATISTICS = /^\d+\+\d+ records (in|out)$|^\d+ bytes .* copied|^\d+ bytes \(.*\) copied/;
/** A line that says why: kept even when later lines (statistics, a script's own summary) follow it. */
const ERROR_LINE = /error|fail|cannot|can't|no space|denied|not found|no such|invalid|refused|unable|read-only/i;

/**
 * Why a command failed, in one line: its exit, then the lines of its output that say why (a
 * tool's error before its statistics, e.g. dd's "No space left on device" before "records
 * out") and its last lines, at most five in all.
 */
export function describeFailure(result: RemoteResult): string {
  const why = result.timedOut ? `timed out after ${Math.round(result.durationMs / 1000)} s`
    : result.exitCode === null ? `killed by ${result.signal ?? 'a signal'}` : `exit ${result.exitCode}`;
  const lines = (result.stderr.trim() || result.stdout.trim()).split(/[\r\n]+/).map((l) => l.trim())
    .filter((l) => l !== '' && !COPY_STATISTICS.test(l));
  const last = lines.slice(-3);
  const errors = lines.slice(0, -3).filter((l) => ERROR_LINE.test(l)).slice(-2);
  const detail = [...new Set([...errors, ...last])].join(' / ');
  return detail ? `${why}: ${detail}` : why;
}
