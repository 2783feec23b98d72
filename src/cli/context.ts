import { loadConfig } from '../config/load.js';
import type { OpContext } from '../ops/engine/context.js';
import { sshTargets } from '../config/targets.js';
import { SshPool } from '../ssh/pool.js';
import { confirmByTyping } from './confirm.js';
import type { Streams } from '../render/output.js';
import type { Style } from '../render/style.js';

/** Options every command understands. */
export interface GlobalOptions {
  config?: string;
  json: boolean;
  verbose: boolean;
  color?: boolean;
}

/** What a command handler gets: what operations need, plus the terminal's style and streams. */
export interface Context extends OpContext {
  style: Style;
  streams: Streams;
}

export function openContext(opts: GlobalOptions, style: Style, streams: Streams): Context {
  const config = loadConfig(opts.config);
  const log = (line: string) => streams.err(`${style.dim(line)}\n`);
  const pool = new SshPool(sshTargets(config), {
    concurrency: config.ssh.concurrency,
    ...(opts.verbose ? { log } : {}),
  });
  return { config, pool, style, streams, verbose: opts.verbose, log, confirm: confirmByTyping };
}
