/**
 * What the VM lifecycle commands (rm, start, stop, destroy, reboot, console) share: how a
 * VM is looked up for a change, and the exact virsh and drbdadm command lines they send.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { Config } from '../../config/load.js';
import type { ClusterState, Vm } from '../../model/cluster.js';
import type { Domain } from '../../probe/types.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import type { ApplyResult } from '../engine/execute.js';
import { findVm } from './list.js';
import type { Plan, Step } from '../engine/plan.js';
import { assertNotIgnored } from '../engine/run-plan.js';
import { mutate } from '../engine/mutate.js';

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
 * The nodes that hold anything of a VM, found without the full read, to lock before it: where
 * its resource file, disk, or (persistent or running) domain definition exists, and the peers
 * its resource file names. A guess only: `mutate` checks the plan against it and locks more if
 * needed. A name that is no file name cannot be looked for; then every node is locked.
 */
export async function vmNodesGuess(ctx: OpContext, name: string): Promise<string[]> {
  const all = ctx.config.nodes.map((n) => n.name);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) return all;
  const res = quote(`/etc/drbd.d/${name}.res`);
  const files = [res, `/dev/${ctx.config.storage.volumeGroup}/${name}`, `/etc/libvirt/qemu/${name}.xml`, `/run/libvirt/qemu/${name}.xml`].map((f) => (f === res ? f : quote(f)));
  const command = `for f in ${files.join(' ')}; do if [ -e "$f" ]; then echo here; break; fi; done; `
    + `[ ! -f ${res} ] || sed -n 's/^[[:space:]]*on[[:space:]]\\{1,\\}\\([^[:space:]{]\\{1,\\}\\).*/\\1/p' ${res}`;
  const outcomes = await ctx.pool.forEachNode(all, async (node) => (await ctx.pool.run(node, command, { timeoutMs: 60_000 })).stdout);
  const found = new Set<string>();
  for (const o of outcomes) {
    if (!o.ok) continue;
    const lines = o.value.split('\n').map((l) => l.trim()).filter(Boolean);
    if (lines[0] === 'here') found.add(o.node);
    for (const peer of lines) if (all.includes(peer)) found.add(peer);
  }
  return [...found];
}

export interface VmMutation {
  dryRun: boolean;
  plan(state: ClusterState): Plan | Promise<Plan>;
  confirm?(state: ClusterState, plan: Plan): Promise<void>;
  /** Nodes whose being unreachable makes the result partial. */
  mattering?(state: ClusterState): readonly string[];
}

/**
 * A VM command through the engine (lock, read, plan, apply, audit). When one of the nodes that
 * matter could not be asked the command still did what it could; the exit status then says
 * "partial", a warning says why the node could not be asked, and the plan's notes say what was
 * left there.
 */
export async function mutateVm(ctx: OpContext, name: string, spec: VmMutation): Promise<Report<ApplyResult>> {
  return mutate(ctx, { ...spec, vm: name, lock: spec.dryRun ? [] : await vmNodesGuess(ctx, name) });
}
