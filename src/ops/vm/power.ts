/**
 * `pmc vm start|stop|destroy|reboot`. The rules are the ones that keep a replicated VM's
 * data safe: it never runs twice, it only runs on a disk that holds its current data, and
 * only the node that runs it is DRBD Primary (so it can start on either node later).
 */
import type { OpContext, Report } from '../engine/context.js';
import { isActive, type ClusterState, type Vm, type VmReplica } from '../../model/cluster.js';
import type { Domain } from '../../probe/types.js';
import { PmcError } from '../../util/errors.js';
import { quote } from '../../util/shell.js';
import { parseSeconds } from '../../util/validate.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan, Step } from '../engine/plan.js';
import {
  demoteStep, destroyStep, drbdadmCommand, managedVm, mutateVm, nodesNotAsked, virshCommand, type PlannerConfig,
} from './lifecycle.js';
import { DEFAULT_STOP_TIMEOUT_S } from './defaults.js';
import { assertNotRunningElsewhere } from './shared.js';

export interface StartOptions {
  /** Start there instead of on the primary / preferred node. */
  node?: string | undefined;
}

/**
 * Starts a VM on its DRBD primary; when both sides are Secondary, on its preferred node
 * (the first `on` host of its resource). Refuses whatever could run it twice or on stale
 * data: running anywhere, a node of it that cannot be asked, split brain, a disk that is not
 * UpToDate, a node that is not connected to its peer (it cannot know whether it is current).
 * A shared-storage VM starts where it was last (or on -p) once every node said it runs nowhere.
 */
export function planVmStart(state: ClusterState, name: string, config: PlannerConfig, opts: StartOptions = {}): Plan {
  const vm = managedVm(state, name, config);
  if (vm.shared) assertNotRunningElsewhere(state, vm.name);
  const running = vm.replicas.filter((r) => r.domain && isActive(r.domain));
  if (running.length > 0) {
    throw new PmcError('PMC_E_STATE', `${vm.name} is already ${running.map((r) => `${r.domain!.state} on ${r.node}`).join(' and ')}`,
      running.length > 1 ? 'it runs twice: keep the copy with the newer data and destroy the other by hand' : `pmc vm reboot ${quote(vm.name)} restarts it where it runs`);
  }
  const down = nodesNotAsked(vm);
  if (down.length > 0) {
    throw new PmcError('PMC_E_STATE', `${down.join(' and ')} could not be asked: ${vm.name} may be running there`,
      'pmc never starts a second copy; bring the node back and run the command again');
  }
  if (!vm.shared && vm.flags.includes('split-brain')) {
    throw new PmcError('PMC_E_STATE', `the DRBD resource of ${vm.name} is in split brain: its two sides hold different data`,
      `pick the side to keep; on the other run "drbdadm connect --discard-my-data ${quote(vm.name)}", then "drbdadm connect ${quote(vm.name)}" on the kept one`);
  }
  if (!vm.shared && !vm.replicas.some((r) => r.resource?.configured)) {
    throw new PmcError('PMC_E_STATE', `${vm.name} has no DRBD resource; pmc starts only VMs whose disk DRBD replicates`,
      `start it with virsh on the node that holds its disk`);
  }
  const target = opts.node ?? (vm.shared ? vm.home! : defaultStartNode(vm));
  const replica = vm.replicas.find((r) => r.node === target);
  const domain = replica?.domain;
  if (!replica || !domain) {
    const defined = vm.replicas.filter((r) => r.domain).map((r) => r.node);
    throw new PmcError('PMC_E_STATE', `${vm.name} is not defined on ${target}`,
      defined.length ? `it is defined on ${defined.join(', ')}; choose one with -p` : `define it first (virsh define)`);
  }
  if (vm.shared) {
    const why = `start ${vm.name} on ${target}; its disk is ${vm.shared.file} on the shared file system`;
    return { title: `start ${vm.name} on ${target}`, steps: [{ node: target, command: virshCommand('start', domain), why }], notes: [] };
  }
  const resource = assertCurrentData(vm, replica);

  const steps: Step[] = [];
  for (const other of vm.primaryOn.filter((n) => n !== target)) {
    steps.push({
      ...demoteStep(other, resource, `demote ${resource} on ${other}: it is Primary but runs nothing, and only the node running ${vm.name} may write to it`),
      undo: { command: drbdadmCommand('primary', resource), why: `make ${resource} Primary on ${other} again` },
    });
  }
  if (replica.resource!.role !== 'Primary') {
    steps.push({
      node: target,
      command: drbdadmCommand('primary', resource),
      why: `promote ${resource} to Primary on ${target}, so that ${vm.name} can open its disk`,
      undo: { command: drbdadmCommand('secondary', resource), why: `demote ${resource} on ${target} again` },
    });
  }
  steps.push({ node: target, command: virshCommand('start', domain), why: `start ${vm.name} on ${target}` });
  return { title: `start ${vm.name} on ${target}`, steps, notes: [] };
}

/** Its one DRBD primary; otherwise (both Secondary, or both Primary after an interrupted migration) its preferred node. */
function defaultStartNode(vm: Vm): string {
  if (vm.primaryOn.length === 1) return vm.primaryOn[0]!;
  const preferred = vm.replicas.find((r) => r.resource?.hosts.length)?.resource?.hosts[0]?.name;
  return preferred ?? vm.nodes[0]!;
}

/** The resource name, once it is clear that the replica's disk holds the VM's current data. */
function assertCurrentData(vm: Vm, replica: VmReplica): string {
  const { node, resource } = replica;
  if (!resource?.configured) {
    throw new PmcError('PMC_E_STATE', `${vm.name} has no DRBD resource on ${node}`, `start it on a node of its resource: ${vm.nodes.join(', ')}`);
  }
  if (!resource.up) {
    throw new PmcError('PMC_E_STATE', `the DRBD resource ${resource.name} is down on ${node}`,
      `bring it up first: pmc pm drbd-up ${node} (or drbdadm up ${quote(resource.name)} there)`);
  }
  if (resource.diskState !== 'UpToDate') {
    const syncing = resource.peers.some((p) => p.replication.startsWith('Sync') || p.replication.startsWith('PausedSync'));
    throw new PmcError('PMC_E_STATE', `the disk of ${vm.name} on ${node} is ${resource.diskState ?? 'unknown'}, not UpToDate: it does not hold the current data`,
      syncing ? `wait until the resync is done (pmc vm ls shows its progress)` : `start it on the node whose disk is UpToDate with -p`);
  }
  const unconnected = resource.peers.find((p) => p.connection !== 'Connected');
  if (unconnected) {
    const peer = unconnected.node ?? 'its peer';
    throw new PmcError('PMC_E_STATE', `${resource.name} on ${node} is ${unconnected.connection}, not connected to ${peer}: nobody can tell which side holds the newest data`,
      `bring DRBD up on ${peer} (pmc pm drbd-up ${peer}) and let it connect; if it will not, look for "Split-Brain detected" in the kernel log`);
  }
  return resource.name;
}

export interface StopOptions {
  /** Seconds to wait for the guest to shut down. */
  timeoutSeconds: number;
  /** Destroy (power off) instead of asking the guest to shut down. */
  force: boolean;
}

/**
 * Shuts the VM down (or powers it off) wherever it runs, then demotes its DRBD resource to
 * Secondary wherever it is Primary, so that it can start on either node next time.
 */
export function planVmStop(state: ClusterState, name: string, config: PlannerConfig, opts: StopOptions): Plan {
  if (!opts.force) parseSeconds(opts.timeoutSeconds, '--timeout');
  const vm = managedVm(state, name, config);
  const steps: Step[] = [];
  for (const r of vm.replicas) {
    if (!r.reachable || !r.domain || !isActive(r.domain)) continue;
    steps.push(opts.force
      ? destroyStep(r.node, r.domain, `power off ${vm.name} on ${r.node} (the guest is not asked to shut down)`)
      : shutdownStep(vm.name, r.node, r.domain, opts.timeoutSeconds));
  }
  for (const r of vm.replicas) {
    if (!r.reachable || r.resource?.role !== 'Primary') continue;
    steps.push(demoteStep(r.node, r.resource.name, `demote ${r.resource.name} to Secondary on ${r.node}, so that ${vm.name} can start on either node`));
  }
  const notes = nodesNotAsked(vm).map((node) => `${node} could not be asked: if ${vm.name} runs there, it goes on running`);
  if (steps.length === 0) notes.push(`${vm.name} is already shut off${vm.replicas.some((r) => r.resource) ? ' and Secondary' : ''} on every node that answered`);
  return { title: opts.force ? `power off ${vm.name}` : `shut down ${vm.name}`, steps, notes };
}

/**
 * Asks the guest to shut down (ACPI, or the guest agent) and waits on the node until it
 * is off, in one remote command, so the wait needs no round trip per poll.
 */
function shutdownStep(vmName: string, node: string, domain: Domain, timeoutSeconds: number): Step {
  const late = quote(`${vmName} did not shut down within ${timeoutSeconds} s; "pmc vm stop --force ${quote(vmName)}" powers it off`);
  const command = `${virshCommand('shutdown', domain)} >/dev/null && end=$(( $(date +%s) + ${timeoutSeconds} ))`
    + ` && while state=$(${virshCommand('domstate', domain)}) && [ "$state" != 'shut off' ];`
    + ` do if [ "$(date +%s)" -ge "$end" ]; then echo ${late} "(still $state)" >&2; exit 1; fi; sleep 1; done`
    + ` && [ "$state" = 'shut off' ]`;
  return {
    node,
    command,
    why: `shut down ${vmName} on ${node} and wait up to ${timeoutSeconds} s until it is off`,
    timeoutMs: (timeoutSeconds + 60) * 1000,
  };
}

/**
 * Restarts the guest where it runs (it stays on that node and keeps its DRBD role). By default
 * the guest is asked (ACPI or its agent) and decides itself, as a guest that ignores ACPI never
 * reboots; `hard` resets it like the reset button, at once.
 */
export function planVmReboot(state: ClusterState, name: string, config: PlannerConfig, hard = false): Plan {
  const vm = managedVm(state, name, config);
  const running = vm.replicas.filter((r) => r.domain && isActive(r.domain));
  if (running.length === 0) {
    throw new PmcError('PMC_E_STATE', `${vm.name} is not running${nodesNotAsked(vm).length ? ' on any node that answered' : ''}`, `pmc vm start ${quote(vm.name)}`);
  }
  if (running.length > 1) {
    throw new PmcError('PMC_E_STATE', `${vm.name} runs on ${running.map((r) => r.node).join(' and ')} at once`,
      'keep the copy with the newer data and destroy the other by hand before anything else');
  }
  const { node, domain } = running[0]!;
  if (hard) {
    return {
      title: `reset ${vm.name} on ${node}`,
      steps: [{ node, command: virshCommand('reset', domain!), why: `reset ${vm.name} on ${node}: it restarts at once, without a shutdown` }],
      notes: [],
    };
  }
  return {
    title: `ask ${vm.name} to reboot on ${node}`,
    steps: [{ node, command: virshCommand('reboot', domain!), why: `ask ${vm.name} to reboot on ${node} (ACPI or its guest agent)` }],
    notes: [`the guest decides whether and when it reboots; one that ignores ACPI does not: pmc vm reboot --hard ${quote(vm.name)} resets it`],
  };
}

export async function startVm(ctx: OpContext, name: string, opts: StartOptions & { dryRun: boolean }): Promise<Report<ApplyResult>> {
  return mutateVm(ctx, name, { dryRun: opts.dryRun, plan: (state) => planVmStart(state, name, ctx.config, opts) });
}

export async function stopVm(ctx: OpContext, name: string, opts: StopOptions & { dryRun: boolean }): Promise<Report<ApplyResult>> {
  return mutateVm(ctx, name, {
    dryRun: opts.dryRun,
    plan: (state) => planVmStop(state, name, ctx.config, opts),
    mattering: (state) => managedVm(state, name, ctx.config).nodes,
  });
}

/** `pmc vm destroy`: the power-off of `stop --force`; asks first unless -f. */
export async function destroyVm(ctx: OpContext, name: string, opts: { force: boolean; dryRun: boolean }): Promise<Report<ApplyResult>> {
  return mutateVm(ctx, name, {
    dryRun: opts.dryRun,
    plan: (state) => planVmStop(state, name, ctx.config, { force: true, timeoutSeconds: DEFAULT_STOP_TIMEOUT_S }),
    confirm: async (state) => {
      const vm = managedVm(state, name, ctx.config);
      if (opts.force || vm.runningOn.length === 0) return;
      await ctx.confirm(vm.name, `${vm.name} will be powered off on ${vm.runningOn.join(' and ')} without a shutdown; unsaved data in the guest is lost`, '-f');
    },
    mattering: (state) => managedVm(state, name, ctx.config).nodes,
  });
}

/** `pmc vm reboot [--hard]`: a reset loses what the guest has not written, so it asks first unless -f. */
export async function rebootVm(ctx: OpContext, name: string, opts: { hard: boolean; force: boolean; dryRun: boolean }): Promise<Report<ApplyResult>> {
  return mutateVm(ctx, name, {
    dryRun: opts.dryRun,
    plan: (state) => planVmReboot(state, name, ctx.config, opts.hard),
    confirm: async (state) => {
      if (!opts.hard || opts.force) return;
      const vm = managedVm(state, name, ctx.config);
      await ctx.confirm(vm.name, `${vm.name} will be reset on ${vm.runningOn.join(' and ')} without a shutdown; unsaved data in the guest is lost`, '-f');
    },
  });
}
