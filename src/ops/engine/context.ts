import type { Config } from '../../config/load.js';
import type { SshPool } from '../../ssh/pool.js';

/**
 * What an operation needs from whoever runs it: the configuration, one SSH pool for the whole
 * run (each node is connected to once), a progress channel and a way to ask the operator.
 * The CLI supplies it; tests and other front ends can too.
 */
export interface OpContext {
  config: Config;
  pool: SshPool;
  verbose: boolean;
  /** Progress and --verbose lines (the CLI prints them on stderr so --json output stays clean). */
  log(line: string): void;
  /**
   * Asks the operator to type `expected` before something destructive; rejects with
   * PMC_E_CONFIRM when they do not (or when there is nobody to ask). `forceFlag` names the
   * option that skips the question, for the refusal's hint.
   */
  confirm(expected: string, what: string, forceFlag: string): Promise<void>;
  /** The operator's wish to stop (Ctrl-C); the engine reads it between steps. */
  stop: StopToken;
  /** Who runs which command: named in the cluster lock and the audit trail. */
  invocation: Invocation;
  /** How long a mutating command waits for another run's lock on a node (--wait-lock). */
  waitLockSeconds: number;
}

export interface Invocation {
  /** user@host of the manager. */
  who: string;
  pid: number;
  /** The command line as typed (pmc never takes secrets as arguments). */
  command: string;
}

/**
 * How far the operator wants a run stopped: 'none'; 'undo' (first Ctrl-C or SIGTERM: finish
 * the running step, then undo what was done); 'halt' (second Ctrl-C: stop undoing too, and say
 * what remains). The front end raises it; operations only read it, like an AbortSignal.
 */
export type StopLevel = 'none' | 'undo' | 'halt';

export class StopToken {
  private current: StopLevel = 'none';
  private why: string | undefined;
  private readonly listeners = new Set<() => void>();

  get level(): StopLevel {
    return this.current;
  }

  /** The signal or reason named in messages ("SIGINT"). */
  get reason(): string | undefined {
    return this.why;
  }

  /** Raises the level one notch (none → undo → halt) and tells the listeners. */
  request(reason: string): StopLevel {
    this.current = this.current === 'none' ? 'undo' : 'halt';
    this.why ??= reason;
    for (const listener of [...this.listeners]) listener();
    return this.current;
  }

  /** Calls `listener` on every request until the returned function is called. */
  onRequest(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * What every operation returns: data, never printed text. The CLI turns it into JSON or a
 * human view and picks the exit code, so every command behaves alike.
 */
export interface Report<T> {
  data: T;
  /** ok: all done; partial: shown, but some node could not be asked; failed: the command's purpose failed. */
  status: 'ok' | 'partial' | 'failed';
  /** Lines for stderr (for example "pm-3: unreachable: ..."). */
  warnings: string[];
}
