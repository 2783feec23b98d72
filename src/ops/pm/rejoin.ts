/**
 * `pmc pm rejoin PM`: PM is back after its VMs failed over (or after a split brain it lost).
 * For every resource where PM holds the stale copy: PM's domain is not running (destroyed if the
 * node booted it), PM is Secondary, and it connects discarding its data so it resyncs from the
 * survivor (`drbdadm connect --discard-my-data` on PM, `connect` on the survivor); never the
 * other way round. The survivor's failover record goes only once PM is a resync target, which
 * DRBD itself never lets become Primary. Resources that are fine are only brought up.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { Config } from '../../config/load.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState, Vm, VmReplica } from '../../model/cluster.js';
import { mutate } from '../engine/mutate.js';
import { PmcError } from '../../util/errors.js';
import { commandLine } from '../../util/shell.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan, Step } from '../engine/plan.js';
import { resyncWaitStep } from '../vm/add-plan.js';
import { authorityFile } from '../vm/failover.js';
import { destroyStep, drbdadmCommand } from '../vm/lifecycle.js';
import { drbdPrelude, isIgnored, upStep } from './drbd-up.js';

export interface RejoinOptions {
  dryRun: boolean;
}

/** Why `node`'s copy of this VM is the stale one, or undefined when it is not. */
export function staleReason(vm: Vm, node: string): string | undefined {
  if (vm.authority?.lostNode === node) return `${vm.name} failed over to ${vm.authority.node} at ${vm.authority.at}`;
  const mine = vm.replicas.find((r) => r.node === node);
  const other = vm.replicas.find((r) => r.node !== node && r.resource);
  if (!mine?.resource?.up || !other?.reachable || !vm.flags.includes('split-brain')) return undefined;
  // In a split brain the side that runs the VM (or is its Primary) keeps its data, if only one does.
  const keeps = (r: VmReplica) => vm.runningOn.includes(r.node) || r.resource?.role === 'Primary';
  if (keeps(other) && !keeps(mine)) return `split brain, and ${vm.name} ${vm.runningOn.includes(other.node) ? 'runs' : 'is Primary'} on ${other.node}`;
  return undefined;
}

/** The plan, as a pure function of the state. Throws when PM cannot be asked. */
export function planRejoin(state: ClusterState, config: Config, node: string): Plan {
  selectNodes(config, [node]);
  const facts = state.nodes.find((n) => n.name === node)?.facts;
  if (!facts) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${node} could not be asked, so it cannot rejoin`, `check that ${node} is up and answers SSH, then run this again`);
  }
  const steps: Step[] = [];
  const notes: string[] = [];
  const later: Step[] = [];
  const mine = facts.drbdResources.filter((r) => r.configured && r.hosts.some((h) => h.name === facts.hostname));
  const needsPrelude = mine.some((r) => !r.up && !isIgnored(r, config.ignorePrefix));
  if (needsPrelude) steps.push(...drbdPrelude(facts, node, config.storage.volumeGroup));

  for (const res of mine) {
    const vm = state.vms.find((v) => v.replicas.some((r) => r.node === node && r.resource?.name === res.name));
    if (isIgnored(res, config.ignorePrefix) || vm?.ignored) {
      notes.push(`${res.name}: ignored (its name has the ignore prefix), left as it is`);
      continue;
    }
    const reason = vm && staleReason(vm, node);
    if (!vm || !reason) {
      if (vm?.authority?.node === node) notes.push(`${res.name}: ${node} holds the current copy (failed over from ${vm.authority.lostNode}); ${vm.authority.lostNode} rejoins with pmc pm rejoin ${vm.authority.lostNode}`);
      else if (vm?.flags.includes('split-brain')) notes.push(`${res.name}: split brain, and pmc cannot tell which side keeps its data; see pmc cluster verify`);
      if (!res.up) later.push(upStep(node, res.name));
      continue;
    }
    const survivorReplica = vm.replicas.find((r) => r.node !== node && r.resource);
    const survivorRes = survivorReplica?.resource;
    if (!survivorReplica?.reachable || !survivorRes?.up || survivorRes.diskState !== 'UpToDate') {
      notes.push(`${res.name}: NOT rejoined: ${node}'s copy is stale (${reason}), but ${survivorReplica?.node ?? 'its peer'} ${!survivorReplica?.reachable ? 'cannot be asked' : !survivorRes?.up ? 'has DRBD down' : `is ${survivorRes.diskState}`}; run this again once it is UpToDate`);
      continue;
    }
    const survivor = survivorReplica.node;
    notes.push(`${res.name}: ${node}'s copy is stale (${reason}); it is discarded and resynced from ${survivor}`);
    steps.push(...staleSteps(vm, node, survivor, res.name, survivorRes.peers[0]?.connection === 'StandAlone'));
  }
  steps.push(...later);
  const stale = notes.filter((n) => n.includes('is discarded')).length;
  return {
    title: steps.length === 0 ? `${node}: nothing to rejoin` : `rejoin ${node}: ${stale} stale cop${stale === 1 ? 'y' : 'ies'} resynced from the survivors, ${later.length} resource${later.length === 1 ? '' : 's'} brought up`,
    steps,
    notes,
  };
}

function staleSteps(vm: Vm, node: string, survivor: string, resource: string, survivorStandAlone: boolean): Step[] {
  const replica = vm.replicas.find((r) => r.node === node)!;
  const res = replica.resource!;
  const steps: Step[] = [];
  if (replica.domain && vm.runningOn.includes(node)) {
    steps.push(destroyStep(node, replica.domain, `power off ${vm.name} on ${node}: it runs on the stale copy`));
  }
  const connected = res.up && res.peers[0]?.connection === 'Connected';
  if (!connected) {
    if (!res.up) {
      // Attached without connecting: `drbdadm up` would connect at once, before --discard-my-data.
      steps.push({
        node,
        command: [commandLine(['drbdadm', 'new-resource', resource]), commandLine(['drbdadm', 'new-minor', resource]), commandLine(['drbdadm', 'attach', resource])].join(' && '),
        why: `attach ${node}'s disk of ${resource} without connecting yet`,
      });
    } else if (res.peers[0]?.connection !== 'StandAlone') {
      steps.push({ node, command: commandLine(['drbdadm', 'disconnect', resource]), why: `disconnect ${resource} on ${node}, to reconnect as the side that discards its data` });
    }
    if (!res.up || res.role === 'Primary') {
      steps.push({ node, command: drbdadmCommand('secondary', resource), why: `make ${node} Secondary for ${resource}` });
    }
    steps.push({
      node,
      command: commandLine(['drbdadm', '--', '--discard-my-data', 'connect', resource]),
      why: `connect ${resource} on ${node}, discarding its stale data: it resyncs from ${survivor}`,
    });
    if (survivorStandAlone) {
      steps.push({ node: survivor, command: commandLine(['drbdadm', 'connect', resource]), why: `connect ${resource} on ${survivor}, the side whose data is kept` });
    }
  }
  steps.push(
    { ...resyncWaitStep(survivor, resource, res.sizeBytes ?? vm.diskBytes ?? 0), why: `wait until ${node}'s copy of ${resource} has resynced from ${survivor}` },
    { node: survivor, command: commandLine(['rm', '-f', authorityFile(resource)]), why: `remove the failover record of ${resource} on ${survivor}: both copies are current again` },
  );
  return steps;
}

export async function rejoinNode(ctx: OpContext, node: string, opts: RejoinOptions): Promise<Report<ApplyResult>> {
  return mutate(ctx, {
    lock: ctx.config.nodes.map((n) => n.name),
    dryRun: opts.dryRun,
    plan: (state) => planRejoin(state, ctx.config, node),
    mattering: (state) => state.nodes.map((n) => n.name),
  });
}
