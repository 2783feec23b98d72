import type { OpContext, Report } from './context.js';
import type { Vm } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { applyPlan, type ApplyResult } from './execute.js';
import type { Plan } from './plan.js';

/**
 * The common end of every mutating command: with --dry-run, return the plan untouched;
 * otherwise apply it and report what ran, what failed and what was undone.
 */
export async function runPlan(ctx: OpContext, plan: Plan, dryRun: boolean): Promise<Report<ApplyResult>> {
  if (dryRun) {
    return {
      data: { title: plan.title, status: 'dry-run', done: [], failed: undefined, undone: [], plan },
      status: 'ok',
      warnings: [],
    };
  }
  const result = await applyPlan(ctx.pool, plan, { log: ctx.log });
  return { data: result, status: result.status === 'failed' ? 'failed' : 'ok', warnings: [] };
}

/** VMs named with the ignore prefix are shown but never changed (cherrypop's rule). */
export function assertNotIgnored(vm: Pick<Vm, 'name' | 'ignored'>, ignorePrefix: string): void {
  if (vm.ignored) {
    throw new PmcError('PMC_E_VM_IGNORED', `${vm.name} starts with the ignore prefix "${ignorePrefix}"; pmc does not change it`,
      'rename the domain, or change ignorePrefix in pmc.yaml if this VM should be managed');
  }
}
