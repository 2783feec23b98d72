/**
 * The arguments of `pmc cluster rebalance`, checked from the command line alone, so the CLI
 * refuses a bad one before it reads pmc.yaml or connects anywhere. Kept apart from
 * rebalance.ts so that this check loads nothing heavy.
 */
import { parseParallel } from '../pm/evacuate-args.js';
import { parseSeconds, parseWholeNumber } from '../../util/validate.js';

/** A bound, not a goal: more moves than any pmc cluster has VMs is a typo. */
export const MAX_MOVES = 100_000;

/** The command line of `pmc cluster rebalance`, as yargs parsed it. */
export interface RebalanceArgs {
  maxMoves?: string | undefined;
  parallel: number | string;
  timeout: number | string;
  dryRun: boolean;
  secondaries?: boolean | undefined;
}

export interface RebalanceRequest {
  /** At most this many moves (copies and migrations); undefined: every one that lowers its score. */
  maxMoves: number | undefined;
  /** Migrations at once. */
  parallel: number;
  /** Seconds after which a migration is aborted. */
  timeoutSeconds: number;
  dryRun: boolean;
  /** Move standby copies too, before the migrations (absent: migrations only). */
  secondaries?: true;
}

export function parseRebalanceArgs(args: RebalanceArgs): RebalanceRequest {
  return {
    maxMoves: args.maxMoves === undefined ? undefined : parseWholeNumber(args.maxMoves, '--max-moves', 1, MAX_MOVES),
    parallel: parseParallel(args.parallel),
    timeoutSeconds: parseSeconds(args.timeout, '--timeout'),
    dryRun: args.dryRun,
    ...(args.secondaries ? { secondaries: true as const } : {}),
  };
}
