/**
 * `pmc vm mv --cleanup`: after an interrupted migration (manager killed, link lost, target
 * crashed), look where the domain really runs or is paused, make that node the only Primary,
 * allow one primary again, and resume a domain the migration left paused there (Ganeti's
 * `migrate --cleanup`). Every step is emitted only when needed, so a second run plans nothing.
 * The same plan is how a failed `pmc vm mv` recovers. A shared-storage VM has no DRBD part:
 * only the paused copies and the resume apply to it.
 */
import { isActive, type ClusterState, type VmReplica } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import type { Plan, Step } from '../engine/plan.js';
import { demoteStep, drbdadmCommand, managedVm, nodesNotAsked, virshCommand, type PlannerConfig } from './lifecycle.js';
import { netOptionsCommand } from './migrate-plan.js';

export function planVmCleanup(state: ClusterState, name: string, config: PlannerConfig): Plan {
  const vm = managedVm(state, name, config);
  const refuse = (why: string, hint: string): never => {
    throw new PmcError('PMC_E_STATE', `${vm.name}: ${why}; nothing was changed`, hint);
  };
  const unknown = vm.nodes.filter((n) => !state.nodes.some((s) => s.name === n));
  if (unknown.length > 0) refuse(`its node ${unknown.join(' and ')} is not in pmc.yaml`, `add it to nodes: in pmc.yaml`);
  const down = nodesNotAsked(vm);
  if (down.length > 0) {
    refuse(`${down.join(' and ')} could not be asked, so where it runs is unknown`, 'bring the node back and run the command again');
  }
  const mirrored = vm.replicas.filter((r) => r.resource?.configured && r.resource.up);
  if (mirrored.length === 0 && !vm.shared) refuse('it has no DRBD resource that is up', `pmc vm info ${vm.name} shows what its nodes hold`);
  // A shared VM has no resource: no step or refusal below that names one applies to it.
  const resource = mirrored[0]?.resource!.name ?? vm.name;

  const allActive = vm.replicas.filter((r) => r.domain && isActive(r.domain));
  const stale = staleIncoming(allActive);
  const active = allActive.filter((r) => !stale.includes(r));
  if (active.length > 1) {
    const where = active.map((r) => `${describeState(r)} on ${r.node}`).join(' and ');
    const incoming = active.find((r) => r.domain!.state === 'paused' && /migrat|incoming/i.test(r.domain!.stateReason ?? ''));
    refuse(`it is ${where}: pmc cannot tell which copy to keep`,
      (incoming ? `if a migration is still running, wait until it ends and run this again; otherwise ` : '')
      + `decide which copy holds the data to keep, power off the other (virsh destroy ${vm.uuid ?? vm.name} on that node), then run pmc vm mv --cleanup ${vm.name} again`);
  }
  if (active.length === 0 && vm.primaryOn.length > 1) {
    refuse(`it runs nowhere and ${resource} is Primary on both ${vm.primaryOn.join(' and ')}`,
      `pmc cannot tell where it should run: on the node it should not run on, demote it (drbdadm secondary ${resource}), then run pmc vm mv --cleanup ${vm.name} again (or pmc vm start ${vm.name})`);
  }
  const keeper: VmReplica | undefined = active[0];
  const splitBrain = vm.flags.includes('split-brain');
  if (splitBrain && !keeper) {
    refuse(`${resource} is in split brain and the VM runs nowhere`,
      `pick the side whose data to keep; on the other run "drbdadm secondary ${resource}; drbdadm connect --discard-my-data ${resource}", then "drbdadm connect ${resource}" on the kept one`);
  }
  if (keeper && !vm.shared && keeper.resource?.role !== 'Primary') {
    refuse(`it is ${describeState(keeper)} on ${keeper.node}, but ${resource} is ${keeper.resource?.role ?? 'not up'} there`,
      `pmc vm info ${vm.name} shows each node's view; repair DRBD on ${keeper.node} by hand`);
  }

  const steps: Step[] = stale.map((r) => ({
    node: r.node,
    // Checked again on the node: no migration job may be running (it would be aborted) and the copy must still be paused.
    command: `${virshCommand('domjobinfo', r.domain!)} | grep -q '^Job type: *None' && state=$(${virshCommand('domstate', r.domain!)}) && [ "$state" = paused ]`
      + ` && ${virshCommand('destroy', r.domain!)} || { echo "a migration job is running or the copy is no longer paused: run pmc vm mv --cleanup again once it ends" >&2; exit 1; }`,
    why: `power off the copy of ${vm.name} an interrupted migration left paused on ${r.node} (${r.domain!.stateReason ?? 'paused'}): it never ran there; ${keeper!.node} runs ${vm.name}`,
  }));
  if (keeper?.domain?.state === 'paused' && keeper.domain.stateReason !== 'user') {
    steps.push({
      node: keeper.node,
      command: virshCommand('resume', keeper.domain),
      why: `resume ${vm.name} on ${keeper.node}, left paused (${keeper.domain.stateReason ?? 'reason unknown'})`,
    });
  }
  for (const r of mirrored) {
    if (r !== keeper && r.resource!.role === 'Primary') {
      steps.push(demoteStep(r.node, resource, `demote ${resource} on ${r.node}: ${vm.name} ${keeper ? `runs on ${keeper.node}` : 'runs nowhere'}`));
    }
  }
  if (splitBrain && keeper) steps.push(...splitBrainSteps(vm.name, resource, keeper, mirrored.filter((r) => r !== keeper)));
  for (const r of mirrored) {
    if (r.resource!.allowTwoPrimariesLive !== false) {
      steps.push({ node: r.node, command: netOptionsCommand(resource, false), why: `allow only one primary for ${resource} on ${r.node} again` });
    }
  }
  const notes: string[] = [];
  if (keeper?.domain?.state === 'paused' && keeper.domain.stateReason === 'user') notes.push(`${vm.name} was paused by an operator on ${keeper.node}: left paused`);
  if (steps.length === 0) {
    const drbd = vm.shared ? '' : keeper ? ', the only Primary, and two primaries are not allowed' : ', at most one node is Primary, and two primaries are not allowed';
    notes.push(`nothing to clean up: ${vm.name} runs ${keeper ? `on ${keeper.node}` : 'nowhere'}${drbd}`);
  }
  return { title: keeper ? `clean up ${vm.name}: it runs on ${keeper.node}` : `clean up ${vm.name}: it runs nowhere`, steps, notes };
}

/**
 * Both sides were Primary when the link broke mid-migration, so DRBD saw a split brain when it
 * came back. The VM ran on the keeper alone since (the other side held the paused incoming
 * domain at most, which writes nothing): the other side's data is dropped and resynced from
 * the keeper, as the DRBD guide resolves a split brain (only the differing blocks move).
 */
function splitBrainSteps(vm: string, resource: string, keeper: VmReplica, others: readonly VmReplica[]): Step[] {
  const steps: Step[] = [];
  for (const r of others) {
    if (r.resource!.peers.some((p) => p.connection !== 'StandAlone')) {
      steps.push({ node: r.node, command: drbdadmCommand('disconnect', resource), why: `disconnect ${resource} on ${r.node}, which lost the split brain` });
    }
    steps.push({
      node: r.node,
      command: drbdadmCommand('connect', resource, 'drbdadm', ['--discard-my-data']),
      why: `reconnect ${resource} on ${r.node}, dropping its changes since the split: ${vm} ran on ${keeper.node}, not here`,
    });
  }
  if (keeper.resource!.peers.every((p) => p.connection === 'StandAlone')) {
    steps.push({ node: keeper.node, command: drbdadmCommand('connect', resource), why: `reconnect ${resource} on ${keeper.node}, which keeps its data; the peer resyncs from it` });
  }
  return steps;
}

/**
 * Copies paused by a migration (not by an operator, not post-copy) next to exactly one copy
 * that runs: the incoming side of a migration that was cut off, or the source after a handover.
 * They never ran since and hold nothing the running copy lacks.
 */
function staleIncoming(active: readonly VmReplica[]): VmReplica[] {
  const running = active.filter((r) => r.domain!.state !== 'paused');
  const paused = active.filter((r) => r.domain!.state === 'paused');
  if (running.length !== 1 || paused.length === 0) return [];
  return paused.every((r) => /^(migration|starting up)$/.test(r.domain!.stateReason ?? '')) ? paused : [];
}

function describeState(r: VmReplica): string {
  const d = r.domain!;
  return d.stateReason ? `${d.state} (${d.stateReason})` : d.state;
}
