import { loadConfig, type Config } from '../config/load.js';
import { sshTargets } from '../config/targets.js';
import { SshPool } from '../ssh/pool.js';
import type { Streams } from '../render/output.js';
import type { Style } from '../render/style.js';

/** Options every command understands. */
export interface GlobalOptions {
  config?: string;
  json: boolean;
  verbose: boolean;
  color?: boolean;
}

/**
 * What a command handler gets: the configuration and one SSH pool for the whole run, so each
 * node is connected to once, however many commands the run sends it.
 */
export interface Context {
  config: Config;
  pool: SshPool;
  style: Style;
  streams: Streams;
  verbose: boolean;
  /** Progress and --verbose lines, on stderr so --json output stays clean. */
  log(line: string): void;
}

export function openContext(opts: GlobalOptions, style: Style, streams: Streams): Context {
  const config = loadConfig(opts.config);
  const log = (line: string) => streams.err(`${style.dim(line)}\n`);
  const pool = new SshPool(sshTargets(config), {
    concurrency: config.ssh.concurrency,
    ...(opts.verbose ? { log } : {}),
  });
  return { config, pool, style, streams, verbose: opts.verbose, log };
}
