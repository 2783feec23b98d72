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
