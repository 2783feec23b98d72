import { createReadStream, statSync } from 'node:fs';
import { Transform } from 'node:stream';
import type { SshPool } from '../../ssh/pool.js';
import type { RemoteResult } from '../../ssh/types.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { formatBytes } from '../../util/units.js';
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
    const record = await runStep(pool, step, opts.log);
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

async function runStep(pool: SshPool, step: Step, log?: (line: string) => void): Promise<StepRecord> {
  const progress = step.progress && log ? progressReporter(step.node, log) : undefined;
  try {
    const stdin = await stepInput(pool, step, progress);
    const result = await pool.run(step.node, step.command, {
      ...(stdin === undefined ? {} : { stdin }),
      ...(step.timeoutMs === undefined ? {} : { timeoutMs: step.timeoutMs }),
      ...(progress ? { onStdout: progress.onOutput, onStderr: progress.onOutput } : {}),
    });
    const ok = result.exitCode === 0 || (result.exitCode !== null && (step.okExitCodes ?? []).includes(result.exitCode));
    return { step, ok, result, error: ok ? undefined : describeFailure(result) };
  } catch (err) {
    if (!isPmcError(err)) throw err;
    return { step, ok: false, result: undefined, error: err.message };
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

function progressReporter(node: string, log: (line: string) => void) {
  let lastReport = Date.now();
  const report = (text: string): void => {
    if (Date.now() - lastReport < PROGRESS_INTERVAL_MS) return;
    lastReport = Date.now();
    log(`  ${node}: ${text}`);
  };
  return {
    /** dd's status=progress rewrites its line with \r: the newest line of a chunk is the news. */
    onOutput: (chunk: Buffer): void => {
      const newest = chunk.toString('utf8').split(/[\r\n]+/).map((line) => line.trim()).filter(Boolean).at(-1);
      if (newest) report(newest);
    },
    /** Passes a local file through, counting what has been read from it (and so sent). */
    countSent: (source: NodeJS.ReadableStream, totalBytes: number | undefined): NodeJS.ReadableStream => {
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          sent += chunk.length;
          const share = totalBytes ? ` of ${formatBytes(totalBytes)} (${Math.floor((sent * 100) / totalBytes)}%)` : '';
          report(`${formatBytes(sent)}${share} sent`);
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

export function describeFailure(result: RemoteResult): string {
  const why = result.timedOut ? `timed out after ${Math.round(result.durationMs / 1000)} s`
    : result.exitCode === null ? `killed by ${result.signal ?? 'a signal'}` : `exit ${result.exitCode}`;
  const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
  return detail ? `${why}: ${detail}` : why;
}
