import type { Argv } from 'yargs';
import type { Report } from '../ops/engine/context.js';
import type { View } from '../render/output.js';
import type { Context, GlobalOptions } from './context.js';

/**
 * A pmc command: its yargs shape, a handler that returns data, and the view that renders it.
 * The CLI wraps every command the same way (checks, context, errors, JSON, exit code).
 *
 * A command module stays light: `run` and `view` import the operation and its view when the
 * command runs, so `pmc --help` or a usage error never loads SSH, the schema or the planners.
 */
export interface PmcCommand<Args = Record<string, unknown>, Data = unknown> {
  command: string;
  describe: string;
  aliases?: string[];
  builder?: (y: Argv<GlobalOptions>) => Argv<GlobalOptions>;
  examples?: Array<[string, string]>;
  /**
   * Checks the arguments alone, before pmc.yaml is read or any node is contacted: throws a
   * PmcError, or returns the arguments it parsed (a `--timeout` typed as text becomes a number).
   */
  check?: (args: Args & GlobalOptions) => Partial<Args> | void;
  /** The node names among the arguments: each must be listed in pmc.yaml, checked before any node is contacted. */
  nodes?: (args: Args & GlobalOptions) => ReadonlyArray<string | undefined>;
  run: (ctx: Context, args: Args & GlobalOptions) => Promise<Report<Data>>;
  view: () => Promise<View<Data>>;
}

/** Helps TypeScript keep each command's own argument and data types. */
export function defineCommand<Args, Data>(cmd: PmcCommand<Args, Data>): PmcCommand<Args, Data> {
  return cmd;
}

/** Long enough for a vm add or a migration of another run to finish; --wait-lock changes it. */
export const DEFAULT_WAIT_LOCK_S = 300;

/** The list options shared by `pm ls` and `vm ls`. */
export function listOptions(y: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return y
    .option('output', { alias: 'o', type: 'string', requiresArg: true, describe: 'comma-separated fields to show (see the list below)' })
    .option('headers', { type: 'boolean', default: true, describe: 'print the header line (--no-headers to omit it)' });
}

/** `--dry-run`, which every mutating command has. */
export function dryRunOption(y: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return y.option('dry-run', { type: 'boolean', default: false, describe: 'print exactly what would run on which node, and change nothing' });
}
