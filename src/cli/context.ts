import { hostname, userInfo } from 'node:os';
import { StopToken, type Invocation, type OpContext } from '../ops/engine/context.js';
import { selectNodes, sshTargets } from '../config/targets.js';
import { PmcError } from '../util/errors.js';
import { commandLine } from '../util/shell.js';
import { confirmByTyping } from './confirm.js';
import { DEFAULT_WAIT_LOCK_S } from './command.js';
import type { Streams } from '../render/output.js';
import type { Style } from '../render/style.js';

/** Options every command understands. */
export interface GlobalOptions {
  config?: string;
  json: boolean;
  verbose: boolean;
  color?: boolean;
  /** --wait-lock (yargs fills it in with DEFAULT_WAIT_LOCK_S). */
  waitLock?: number;
}

/** A day: longer than any operation pmc runs, short enough for the timers. */
export const MAX_WAIT_LOCK_S = 86_400;

/** What a command handler gets: what operations need, plus the terminal's style and streams. */
export interface Context extends OpContext {
  style: Style;
  streams: Streams;
}

/**
 * Reads pmc.yaml, checks that the nodes named on the command line are in it, and prepares the
 * SSH pool (which connects on first use). The config loader and SSH are loaded only here, so
 * --help and usage errors never load them, and a config error never loads SSH (a missing
 * pmc.yaml not even the YAML parser and zod).
 */
export async function openContext(opts: GlobalOptions, style: Style, streams: Streams, argv: readonly string[], stop: StopToken, nodeNames: readonly string[] = []): Promise<Context> {
  const waitLock = opts.waitLock ?? DEFAULT_WAIT_LOCK_S;
  if (!Number.isInteger(waitLock) || waitLock < 0 || waitLock > MAX_WAIT_LOCK_S) {
    throw new PmcError('PMC_E_USAGE', `--wait-lock ${String(waitLock)}: give whole seconds from 0 to ${MAX_WAIT_LOCK_S}`, 'e.g. --wait-lock 600');
  }
  const { findConfig } = await import('../config/find.js');
  const file = findConfig(opts.config);
  const { loadConfig } = await import('../config/load.js');
  const config = loadConfig(file);
  if (nodeNames.length > 0) selectNodes(config, nodeNames);
  const { SshPool } = await import('../ssh/pool.js');
  const log = (line: string) => streams.err(`${style.dim(line)}\n`);
  const pool = new SshPool(sshTargets(config), {
    concurrency: config.ssh.concurrency,
    ...(opts.verbose ? { log } : {}),
  });
  return {
    config, pool, style, streams, verbose: opts.verbose, log, confirm: confirmByTyping,
    stop, invocation: invocation(argv), waitLockSeconds: waitLock,
  };
}

function invocation(argv: readonly string[]): Invocation {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? `uid${process.getuid?.() ?? '?'}`;
  }
  return { who: `${user}@${hostname()}`, pid: process.pid, command: commandLine(['pmc', ...argv]) };
}
