/**
 * What the VM lifecycle commands (rm, start, stop, destroy, reboot, console) share: how a
 * VM is looked up for a change, and the exact virsh and drbdadm command lines they send.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { Config } from '../../config/load.js';
import type { ClusterState, Vm } from '../../model/cluster.js';
import { unreachableWarnings } from '../../model/read.js';
import type { Domain } from '../../probe/types.js';
import { PmcError } from '../../util/errors.js';
import { commandLine } from '../../util/shell.js';
import type { ApplyResult } from '../engine/execute.js';
import { findVm } from './list.js';
import type { Plan, Step } from '../engine/plan.js';
import { assertNotIgnored, runPlan } from '../engine/run-plan.js';

/** The part of the configuration the planners depend on. */
export type PlannerConfig = Pick<Config, 'ignorePrefix'>;

/** The VM a mutating command is about: it must exist and must not carry the ignore prefix. */
export function managedVm(state: ClusterState, name: string, config: PlannerConfig): Vm {
  const vm = findVm(state, name);
  assertNotIgnored(vm, config.ignorePrefix);
  return vm;
}

/**
 * A virsh command on one domain. The domain is named by its UUID from the live state:
 * virsh tries a name as a domain ID first, so a VM called "7" would otherwise select
 * whichever domain runs with ID 7.
 */
export function virshCommand(verb: string, domain: Domain, flags: readonly string[] = []): string {
  return commandLine(['virsh', verb, ...flags, domain.uuid]);
}

/**
 * A drbdadm command on one resource ("all" would mean every resource on the node). drbdsetup
 * reaches a resource the kernel runs but no file describes any more.
 */
export function drbdadmCommand(verb: 'primary' | 'secondary' | 'down' | 'net-options' | 'connect' | 'disconnect', resource: string, tool: 'drbdadm' | 'drbdsetup' = 'drbdadm', options: readonly string[] = []): string {
  if (resource === 'all') {
    throw new PmcError('PMC_E_STATE', 'a DRBD resource named "all" cannot be addressed: drbdadm reads it as every resource',
      'rename the resource (its .res file on both nodes) before pmc manages it');
  }
  return commandLine([tool, verb, ...options, resource]);
}

export function demoteStep(node: string, resource: string, why: string): Step {
  return { node, command: drbdadmCommand('secondary', resource), why };
}

/** Pulls the power: the guest gets no chance to shut down. */
export function destroyStep(node: string, domain: Domain, why: string): Step {
  return { node, command: virshCommand('destroy', domain), why };
}

/** Nodes of the VM that could not be asked. */
export function nodesNotAsked(vm: Vm): string[] {
  return vm.replicas.filter((r) => !r.reachable).map((r) => r.node);
}

/**
 * Applies (or with --dry-run shows) a VM plan. When one of the nodes that matter could not be
 * asked the command still did what it could; the exit status then says "partial", a warning
 * says why the node could not be asked, and the plan's notes say what was left there.
 */
export async function runVmPlan(ctx: OpContext, plan: Plan, dryRun: boolean, state: ClusterState, nodes: readonly string[]): Promise<Report<ApplyResult>> {
  const report = await runPlan(ctx, plan, dryRun);
  const down = state.nodes.filter((n) => !n.reachable && nodes.includes(n.name));
  return {
    ...report,
    status: report.status === 'ok' && down.length > 0 ? 'partial' : report.status,
    warnings: [...report.warnings, ...unreachableWarnings({ ...state, nodes: down })],
  };
}
