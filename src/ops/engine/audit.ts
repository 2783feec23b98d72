/**
 * The audit trail: every mutating run writes what it does into the journal (or syslog) of
 * each node it touches, through `logger -t pmc`: who ran which command line, each step's
 * command and exit code, each undo, and the outcome. `pmc log` reads it back. Step inputs
 * (files, XML) are never logged, and pmc takes no secrets on its command line.
 *
 * Every line is `run=<id> vm=<name or -> by=<user@host> <text>`, so the lines of one run can
 * be found on every node, and those about one VM.
 */
import { randomBytes } from 'node:crypto';
import type { OpContext } from './context.js';
import type { StepObserver, StepRecord } from './execute.js';

/** The syslog identifier: `journalctl -t pmc`. */
export const AUDIT_TAG = 'pmc';

/** A command longer than this is cut in the log (a clone's copy pipeline is long, but not this long). */
const MAX_COMMAND_CHARS = 2000;

export interface AuditLine {
  run: string;
  vm: string | undefined;
  by: string;
  text: string;
}

export function formatAuditLine(line: AuditLine): string {
  return `run=${line.run} vm=${line.vm ?? '-'} by=${line.by} ${line.text}`.replace(/[\r\n]+/g, ' ');
}

export function parseAuditLine(message: string): AuditLine | undefined {
  const m = /^run=(\S+) vm=(\S+) by=(\S+) (.*)$/s.exec(message);
  if (!m) return undefined;
  return { run: m[1]!, vm: m[2] === '-' ? undefined : m[2], by: m[3]!, text: m[4]! };
}

/**
 * One run's trail. Writes go out in the background, in order per node, one `logger` call per
 * batch (its stdin, a message per line); flush() waits for them. A node that cannot be
 * written to is reported once, never fails the command.
 */
export class AuditTrail implements StepObserver {
  readonly run = randomBytes(4).toString('hex');
  private readonly pending = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, string[]>();
  private readonly failedNodes = new Set<string>();

  constructor(private readonly ctx: Pick<OpContext, 'pool' | 'log' | 'invocation'>, private readonly vm: string | undefined) {}

  /** The command line and where it runs, on each node it locked. */
  begin(nodes: readonly string[]): void {
    for (const node of nodes) this.note(node, `start (pid ${this.ctx.invocation.pid}, nodes ${nodes.join(',')}): ${this.ctx.invocation.command}`);
  }

  step(record: StepRecord, total: number): void {
    this.note(record.step.node, `step ${record.index + 1}/${total} ${outcome(record)}: $ ${cut(record.step.command)}`);
  }

  undo(record: StepRecord): void {
    this.note(record.step.node, `undo ${outcome(record)}: $ ${cut(record.step.command)}`);
  }

  /** How the run ended, on each node it locked. */
  end(nodes: readonly string[], how: string): void {
    for (const node of nodes) this.note(node, `end: ${how}`);
  }

  note(node: string, text: string): void {
    const line = formatAuditLine({ run: this.run, vm: this.vm, by: this.ctx.invocation.who, text });
    const queue = this.queued.get(node);
    if (queue) {
      queue.push(line);
      return;
    }
    this.queued.set(node, [line]);
    const previous = this.pending.get(node) ?? Promise.resolve();
    this.pending.set(node, previous.then(() => this.write(node)));
  }

  async flush(): Promise<void> {
    while ([...this.queued.values()].some((q) => q.length > 0) || this.pending.size > 0) {
      const writes = [...this.pending.values()];
      this.pending.clear();
      await Promise.all(writes);
    }
  }

  private async write(node: string): Promise<void> {
    const lines = this.queued.get(node) ?? [];
    this.queued.delete(node);
    if (lines.length === 0 || this.failedNodes.has(node)) return;
    try {
      const result = await this.ctx.pool.run(node, `logger -t ${AUDIT_TAG} --size 8192`, { stdin: `${lines.join('\n')}\n`, timeoutMs: 30_000 });
      if (result.exitCode !== 0) throw new Error(`logger exited ${result.exitCode}: ${result.stderr.trim()}`);
    } catch (err) {
      this.failedNodes.add(node);
      this.ctx.log(`${node}: could not write the audit trail: ${(err as Error).message}`);
    }
  }
}

function outcome(record: StepRecord): string {
  if (record.result?.exitCode !== undefined && record.result.exitCode !== null) return `exit ${record.result.exitCode}`;
  return `failed (${record.error ?? 'no exit status'})`;
}

function cut(command: string): string {
  return command.length > MAX_COMMAND_CHARS ? `${command.slice(0, MAX_COMMAND_CHARS)}… (${command.length} characters)` : command;
}
