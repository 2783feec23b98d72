/**
 * `pmc pm failover PM`: PM is dead; every VM that ran on it starts on its DRBD peer, after the
 * same checks and the same proof that PM is down as `pmc vm failover` (src/ops/vm/failover.ts).
 */
import type { OpContext, Report } from '../engine/context.js';
import type { ApplyResult } from '../engine/execute.js';
import { runFailover, selectFailovers, type FailoverOptions } from '../vm/failover.js';

export async function failoverNode(ctx: OpContext, node: string, opts: FailoverOptions): Promise<Report<ApplyResult>> {
  return runFailover(ctx, (state) => selectFailovers(state, ctx.config, node), opts);
}
