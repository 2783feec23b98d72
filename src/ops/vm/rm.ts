/**
 * `pmc vm rm`: the VM's domain, DRBD resource, LV and resource file, on every node that
 * holds any of them; a shared-storage VM's domain on every node and its disk file. Every name and path comes from the live state of the node it is
 * removed from (the domain's UUID, the resource's own disk and file), never from the naming
 * scheme, and nothing another VM uses is touched.
 */
import type { OpContext, Report } from '../engine/context.js';
import { isActive, type ClusterState, type Vm, type VmReplica } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan, Step } from '../engine/plan.js';
import {
  destroyStep, drbdadmCommand, managedVm, mutateVm, virshCommand, type PlannerConfig,
} from './lifecycle.js';

/**
 * Phase by phase over the nodes (power off everywhere, then undefine, DRBD down, LV, file),
 * so no disk is removed while any node still runs the VM or replicates it. Steps are only
 * emitted for what exists, which also makes a second run after a failure finish the job.
 */
export function planVmRm(state: ClusterState, name: string, config: PlannerConfig): Plan {
  const vm = managedVm(state, name, config);
  const present = vm.replicas.filter((r) => r.reachable);
  for (const r of present) assertNotShared(state, vm, r);

  const steps: Step[] = [];
  const phase = (step: (r: VmReplica) => Step | undefined): void => {
    for (const r of present) {
      const s = step(r);
      if (s) steps.push(s);
    }
  };
  phase((r) => (r.domain && isActive(r.domain) ? destroyStep(r.node, r.domain, `power off ${vm.name} on ${r.node}, where it runs`) : undefined));
  // A transient domain is gone once it is off; only a persistent one has a definition to remove.
  phase((r) => (r.domain && r.domain.persistent !== false ? {
    node: r.node,
    command: virshCommand('undefine', r.domain, ['--nvram', '--managed-save', '--snapshots-metadata']),
    why: `undefine the domain ${vm.name} on ${r.node}, with its NVRAM, saved state and snapshot metadata`,
  } : undefined));
  phase((r) => (r.resource?.up ? {
    node: r.node,
    command: drbdadmCommand('down', r.resource.name, r.resource.configured ? 'drbdadm' : 'drbdsetup'),
    why: `take the DRBD resource ${r.resource.name} down on ${r.node}${r.resource.device ? `, freeing ${r.resource.device}` : ''}`,
  } : undefined));
  phase((r) => (r.lv ? {
    node: r.node,
    command: commandLine(['lvremove', '-y', r.lv.path]),
    why: `remove the LV ${r.lv.path} (${formatBytes(r.lv.sizeBytes)}) on ${r.node}: the VM's disk and all its data`,
  } : undefined));
  phase((r) => (r.resource?.configFile ? {
    node: r.node,
    command: commandLine(['rm', '-f', '--', r.resource.configFile]),
    why: `remove the resource file ${r.resource.configFile} on ${r.node}`,
  } : undefined));

  const notes: string[] = [];
  const silent = state.nodes.filter((n) => !n.reachable).map((n) => n.name);
  if (vm.shared && silent.length > 0) {
    // The file is the one disk every node runs the VM from: a node not asked may run it still.
    notes.push(`${vm.shared.file} stays: ${silent.join(', ')} could not be asked and may run ${vm.name} from it; run "pmc vm rm -f ${quote(vm.name)}" again once every node answers`);
  } else if (vm.shared) {
    steps.push({
      node: vm.home!,
      command: commandLine(['rm', '-f', '--', vm.shared.file]),
      why: `remove the disk file ${vm.shared.file}${vm.diskBytes === undefined ? '' : ` (${formatBytes(vm.diskBytes)})`} from the shared file system: all of ${vm.name}'s data`,
    });
  }
  if (vm.runningOn.length > 0) notes.push(`${vm.name} runs on ${vm.runningOn.join(' and ')}: it is powered off first, without a shutdown`);
  for (const r of vm.replicas.filter((x) => !x.reachable)) {
    notes.push(`${r.node} could not be asked, so ${remainsOn(vm, r.node)} stay there; when it is back, run "pmc vm rm -f ${quote(vm.name)}" again ("pmc cluster verify" lists them)`);
  }
  for (const node of state.nodes.filter((n) => !n.reachable && !vm.nodes.includes(n.name))) {
    notes.push(`${node.name} could not be asked: anything of ${vm.name} there stays ("pmc cluster verify" shows it once the node is back)`);
  }
  const touched = present.map((r) => r.node).filter((node) => steps.some((s) => s.node === node));
  return { title: `remove ${vm.name}${touched.length ? ` from ${touched.join(', ')}` : ''}`, steps, notes };
}

/**
 * Refuses, before anything changes, to remove a disk, device or file another VM depends on
 * (a hand-made setup can share them; the old tool's naming scheme alone cannot tell).
 */
function assertNotShared(state: ClusterState, vm: Vm, replica: VmReplica): void {
  const facts = state.nodes.find((n) => n.name === replica.node)?.facts;
  if (!facts) return;
  const ours = new Set([replica.resource?.device, replica.lv?.path, vm.shared?.file].filter((p): p is string => Boolean(p)));
  const refuse = (what: string): never => {
    throw new PmcError('PMC_E_STATE', `${replica.node}: ${what}; pmc vm rm ${quote(vm.name)} would break it, so nothing was changed`,
      'separate the two by hand first (pmc vm info shows what each uses)');
  };
  for (const d of facts.domains) {
    const disk = d.name !== vm.name && d.disks.find((x) => x.source !== undefined && ours.has(x.source));
    if (disk) refuse(`the domain ${d.name} uses ${disk.source}, which belongs to ${vm.name}`);
  }
  for (const other of facts.drbdResources) {
    if (other.name === vm.name) continue;
    if (replica.lv && other.disk === replica.lv.path) refuse(`the DRBD resource ${other.name} also uses ${replica.lv.path}`);
    if (replica.resource?.configFile && other.configFile === replica.resource.configFile) {
      refuse(`${replica.resource.configFile} defines ${other.name} as well as ${vm.name}`);
    }
  }
}

/** What a node that could not be asked still holds, as its peer's copy of the resource describes it. */
function remainsOn(vm: Vm, node: string): string {
  const resource = vm.replicas.map((r) => r.resource).find((res) => res?.hosts.some((h) => h.name === node));
  const host = resource?.hosts.find((h) => h.name === node);
  const parts = [`the domain ${vm.name} (if defined there)`];
  if (resource) {
    parts.push(`the DRBD resource ${resource.name}${host?.device ? ` (${host.device})` : ''}`);
    if (host?.disk) parts.push(`the LV ${host.disk}`);
    if (resource.configFile) parts.push(resource.configFile);
  }
  return `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}

export async function removeVm(ctx: OpContext, name: string, opts: { force: boolean; dryRun: boolean }): Promise<Report<ApplyResult>> {
  return mutateVm(ctx, name, {
    dryRun: opts.dryRun,
    plan: (state) => planVmRm(state, name, ctx.config),
    confirm: async (state, plan) => {
      if (opts.force) return;
      const vm = managedVm(state, name, ctx.config);
      const running = vm.runningOn.length ? `; it runs on ${vm.runningOn.join(' and ')} and is powered off first` : '';
      const what = vm.shared ? `its domain and its disk file ${vm.shared.file}` : 'its domain, DRBD resource and disk';
      await ctx.confirm(vm.name, `${plan.title}: ${what} with all its data are deleted${running}`, '-f');
    },
    mattering: (state) => state.nodes.map((n) => n.name),
  });
}
