import type { OpContext } from '../ops/engine/context.js';
import { selectNodes, sshTargets } from '../config/targets.js';
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

/**
 * Reads pmc.yaml, checks that the nodes named on the command line are in it, and prepares the
 * SSH pool (which connects on first use). The config loader and SSH are loaded only here, so
 * --help and usage errors never load them, and a config error never loads SSH.
 */
export async function openContext(opts: GlobalOptions, style: Style, streams: Streams, nodeNames: readonly string[] = []): Promise<Context> {
  const { loadConfig } = await import('../config/load.js');
  const config = loadConfig(opts.config);
  if (nodeNames.length > 0) selectNodes(config, nodeNames);
  const { SshPool } = await import('../ssh/pool.js');
  const log = (line: string) => streams.err(`${style.dim(line)}\n`);
  const pool = new SshPool(sshTargets(config), {
    concurrency: config.ssh.concurrency,
    ...(opts.verbose ? { log } : {}),
  });
  return { config, pool, style, streams, verbose: opts.verbose, log, confirm: confirmByTyping };
}
