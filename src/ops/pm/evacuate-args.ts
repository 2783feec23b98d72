/**
 * The arguments of `pmc pm evacuate`, checked from the command line alone, so the CLI refuses a
 * bad one before it reads pmc.yaml or connects anywhere. Kept apart from evacuate.ts so that
 * this check loads nothing heavy.
 */
import { PmcError } from '../../util/errors.js';
import { parseSeconds, parseWholeNumber } from '../../util/validate.js';

/** More migrations or resyncs at once than this only make each slower. */
export const MAX_PARALLEL = 64;

/** The command line of `pmc pm evacuate`, as yargs parsed it. */
export interface EvacuateArgs {
  node: string;
  secondaries: boolean;
  to?: string | undefined;
  parallel: number | string;
  timeout: number | string;
  dryRun: boolean;
}

export interface EvacuateRequest {
  /** The node to empty. */
  node: string;
  /** Also move the standby copies the node holds. */
  secondaries: boolean;
  /** Where the standby copies go; undefined: placed by free memory, then disk. */
  to: string | undefined;
  /** Migrations (and copy moves) at once. */
  parallel: number;
  /** Seconds after which a migration is aborted. */
  timeoutSeconds: number;
  dryRun: boolean;
}

export function parseEvacuateArgs(args: EvacuateArgs): EvacuateRequest {
  assertEvacuateOptions(args);
  return {
    node: args.node,
    secondaries: args.secondaries,
    to: args.to,
    parallel: parseParallel(args.parallel),
    timeoutSeconds: parseSeconds(args.timeout, '--timeout'),
    dryRun: args.dryRun,
  };
}

/** --to only with --secondaries, and never the node being emptied. */
export function assertEvacuateOptions(req: Pick<EvacuateArgs, 'node' | 'secondaries' | 'to'>): void {
  if (req.to !== undefined && !req.secondaries) {
    throw new PmcError('PMC_E_USAGE', '--to names where the standby copies go, and only --secondaries moves them',
      `pmc pm evacuate ${req.node} --secondaries --to ${req.to}`);
  }
  if (req.to === req.node) {
    throw new PmcError('PMC_E_USAGE', `--to ${req.to} is the node being evacuated: its standby copies must go to another node`,
      'name another node with --to, or leave --to out and pmc places each copy by free memory, then disk');
  }
}

/** --parallel, as pm evacuate and cluster rebalance take it. */
export function parseParallel(input: number | string): number {
  try {
    return parseWholeNumber(input, '--parallel', 1, MAX_PARALLEL);
  } catch (err) {
    if (!(err instanceof PmcError)) throw err;
    throw new PmcError(err.code, err.message, 'e.g. --parallel 2 (the default, 1, moves one VM at a time)');
  }
}
