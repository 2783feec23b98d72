/**
 * `pmc vm failover VM` and `pmc pm failover PM`: the node that ran a VM is dead; start the VM on
 * its DRBD peer from the peer's own disk.
 *
 * An unreachable node may be cut off rather than dead, and still run the VM: starting it on the
 * peer too makes two copies that diverge (split brain), and one side's writes are lost. So a
 * failover needs proof that the node is down (a fence command from pmc.yaml that exits 0, or the
 * operator typing the node's name), and it is refused whenever DRBD's own state on the survivor
 * says its copy may lack the dead node's last writes. The survivor then records that its copy is
 * the authoritative one (AUTHORITY_DIR), which `cluster start`, `vm ls`, `cluster verify` and
 * `pm rejoin` read, so the stale side is never picked.
 *
 * A shared-storage VM has no copy that can be stale: its one disk file is on the shared file
 * system. It starts on the node with the most free memory that defines it, once the lost node
 * is proven down and every other node said it runs it nowhere (the never-twice check).
 */
import { execa } from 'execa';
import type { OpContext, Report } from '../engine/context.js';
import type { Config, NodeConfig } from '../../config/load.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState, Vm, VmReplica } from '../../model/cluster.js';
import { mutate } from '../engine/mutate.js';
import { AUTHORITY_DIR } from '../../probe/script.js';
import type { Domain, DrbdResource } from '../../probe/types.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan, Step } from '../engine/plan.js';
import { rankNodes } from './add-plan.js';
import { drbdadmCommand, managedVm, virshCommand, type PlannerConfig } from './lifecycle.js';
import { assertNotRunningElsewhere } from './shared.js';

/** One VM that can fail over: checked, with everything the plan needs. */
export interface FailoverTarget {
  vm: string;
  /** The dead node. */
  lost: string;
  survivor: string;
  /** The DRBD resource; undefined for a shared-storage VM (nothing to promote or mark stale). */
  resource: string | undefined;
  domain: Domain;
  /** The survivor is still Secondary (a re-run after a half-done failover finds it Primary). */
  promote: boolean;
  /** What DRBD's kernel log on the survivor says about the lost connection. */
  evidence: string;
}

export interface FailoverOptions {
  dryRun: boolean;
  /** `--yes-node-is-down PM`: the operator's confirmation, for scripts. */
  yesNodeIsDown: string | undefined;
}

const START_TIMEOUT_MS = 180_000;
const FENCE_TIMEOUT_MS = 300_000;

/** Connection states a secondary reaches when its peer vanished (8.4 WFConnection is Connecting in events2). */
const LOST_ON_PURPOSE = new Set(['Disconnecting', 'TearDown']);

function refuse(message: string, hint: string): never {
  throw new PmcError('PMC_E_STATE', message, hint);
}

/**
 * Every check before a failover of one VM, as a pure function of the state. Throws a PmcError
 * naming the reason and what to do instead.
 */
export function checkFailover(state: ClusterState, config: PlannerConfig & Pick<Config, 'nodes'>, name: string): FailoverTarget {
  const vm = managedVm(state, name, config);
  if (vm.shared) return checkSharedFailover(state, config, vm);
  const resource = vm.replicas.find((r) => r.resource)?.resource;
  if (!resource) {
    refuse(`${vm.name} has no DRBD resource: its disk exists on ${vm.nodes.join(', ')} only, there is no copy to fail over to`, 'bring its node back and pmc vm start it');
  }
  const hosts = resource.hosts.map((h) => h.name);
  if (hosts.length !== 2) refuse(`${vm.name}'s DRBD resource has ${hosts.length} nodes (${hosts.join(', ')}); pmc fails over two-node pairs only`, 'fail it over by hand');
  const unknown = hosts.filter((h) => !config.nodes.some((n) => n.name === h));
  if (unknown.length > 0) {
    refuse(`${vm.name}'s DRBD resource names ${unknown.join(', ')}, which ${unknown.length > 1 ? 'are' : 'is'} not in pmc.yaml; pmc takes no action on it`, 'add the node to pmc.yaml, or fail the VM over by hand');
  }
  const side = (node: string): VmReplica => vm.replicas.find((r) => r.node === node)
    ?? { node, reachable: false, domain: undefined, resource: undefined, lv: undefined };
  const [a, b] = hosts.map(side) as [VmReplica, VmReplica];

  if (vm.authority && vm.replicas.some((r) => r.node === vm.authority!.node && r.reachable)) {
    const running = vm.runningOn.includes(vm.authority.node);
    if (running) refuse(`${vm.name} failed over to ${vm.authority.node} at ${vm.authority.at} and runs there`, `nothing to do; once ${vm.authority.lostNode} is back: pmc pm rejoin ${vm.authority.lostNode}`);
  }
  if (vm.runningOn.length > 0) {
    refuse(`${vm.name} runs on ${vm.runningOn.join(' and ')}: there is nothing to fail over`, `to move it: pmc vm mv ${vm.name}`);
  }
  if (a.reachable && b.reachable) {
    throw new PmcError('PMC_E_NODE_ALIVE', `${a.node} and ${b.node} both answer SSH: failover is only for a dead node`,
      `start ${vm.name} with pmc vm start ${vm.name}, or move it with pmc vm mv ${vm.name}`);
  }
  if (!a.reachable && !b.reachable) {
    refuse(`neither ${a.node} nor ${b.node} answers: no node to start ${vm.name} on`, `bring one of them back, then pmc cluster start --only ${vm.name}`);
  }
  const survivor = a.reachable ? a : b;
  const lost = a.reachable ? b : a;
  if (vm.authority?.node === lost.node) {
    refuse(`${survivor.node}'s copy of ${vm.name} is stale: ${vm.name} failed over to ${lost.node} at ${vm.authority.at}`, `bring ${lost.node} back; then pmc pm rejoin ${survivor.node}`);
  }
  if (!survivor.domain) {
    refuse(`${vm.name} is not defined on ${survivor.node}`, `define it there from a copy of its XML (virsh define), then run this again`);
  }
  const res: DrbdResource | undefined = survivor.resource;
  if (!res?.up) {
    refuse(`DRBD resource ${resource.name} is ${res ? 'down' : 'not configured'} on ${survivor.node}`, `pmc pm drbd-up ${survivor.node}, then run this again`);
  }
  const connection = res.peers[0]?.connection ?? 'StandAlone';
  if (connection === 'Connected') {
    throw new PmcError('PMC_E_NODE_ALIVE', `DRBD on ${survivor.node} is still connected to ${lost.node} for ${resource.name}: ${lost.node} is up, only pmc cannot reach it`,
      `check the manager's route to ${lost.node}; if ${lost.node} is really going down, DRBD on ${survivor.node} notices within seconds`);
  }
  if (res.splitBrain) {
    refuse(`${resource.name} on ${survivor.node} is in split brain: its data and ${lost.node}'s diverged`, `decide whose data to keep once ${lost.node} is back (pmc cluster verify)`);
  }
  if (res.diskState !== 'UpToDate') {
    refuse(`${survivor.node}'s disk of ${resource.name} is ${res.diskState}, not UpToDate: it did not have ${lost.node}'s last writes`,
      `bring ${lost.node} back (its copy is the current one), then pmc cluster start --only ${vm.name}`);
  }
  if (connection === 'StandAlone') {
    refuse(`DRBD on ${survivor.node} is StandAlone for ${resource.name}: it was disconnected before ${lost.node} went down, so its copy misses every write made after that`,
      `bring ${lost.node} back (its copy is the current one), then pmc cluster start --only ${vm.name}`);
  }
  const loss = res.lastConnectionLoss;
  if (loss && LOST_ON_PURPOSE.has(loss.to)) {
    refuse(`DRBD on ${survivor.node} was disconnected from ${lost.node} on purpose (${loss.to}${loss.secondsSinceBoot === undefined ? '' : ` at ${Math.round(loss.secondsSinceBoot)} s after boot`}), not by a failure: ${lost.node} may have written after that`,
      `bring ${lost.node} back (its copy may be the current one), then pmc cluster start --only ${vm.name}`);
  }
  const evidence = loss
    ? `${survivor.node}'s kernel log: the connection to ${lost.node} (then ${loss.peerRoleBefore ?? 'of unknown role'}) was lost (${loss.to})`
    : `${survivor.node}'s kernel log has no record of losing ${lost.node}`;
  return {
    vm: vm.name, lost: lost.node, survivor: survivor.node, resource: resource.name, domain: survivor.domain,
    promote: res.role !== 'Primary', evidence,
  };
}

/**
 * A shared-storage VM whose node is lost: exactly one node does not answer (the one the failover
 * proves down before anything changes), the VM runs on none of the others, and the survivor is
 * the node defining it with the most free memory.
 */
function checkSharedFailover(state: ClusterState, config: Pick<Config, 'nodes'>, vm: Vm): FailoverTarget {
  if (vm.runningOn.length > 0) {
    refuse(`${vm.name} runs on ${vm.runningOn.join(' and ')}: there is nothing to fail over`, `to move it: pmc vm mv ${vm.name} --to <node>`);
  }
  const silent = state.nodes.filter((n) => !n.reachable).map((n) => n.name);
  if (silent.length === 0) {
    throw new PmcError('PMC_E_NODE_ALIVE', `every node answers SSH: failover is only for a dead node`, `start ${vm.name} with pmc vm start ${vm.name}`);
  }
  const lost = silent[0]!;
  // Any node could run a shared VM: only the node proven down (fenced or confirmed) may stay silent.
  assertNotRunningElsewhere(state, vm.name, [lost]);
  const undefinedOn = state.nodes.filter((n) => !vm.replicas.some((r) => r.node === n.name && r.domain)).map((n) => n.name);
  const need = { sizeBytes: 0, memoryBytes: vm.memoryBytes ?? 0, vcpus: vm.vcpus ?? 1, force: false };
  const { ranked, rejected } = rankNodes(state, config, need, 'shared', [lost, ...undefinedOn]);
  const survivor = ranked[0];
  if (!survivor) {
    refuse(`no node that defines ${vm.name} can start it${rejected.length ? `: ${rejected.join('; ')}` : ''}`, `free memory on one of ${vm.nodes.join(', ')}, then run this again`);
  }
  return {
    vm: vm.name, lost, survivor: survivor.name, resource: undefined, domain: vm.replicas.find((r) => r.node === survivor.name)!.domain!, promote: false,
    evidence: `its disk ${vm.shared!.file} is on the shared file system and no node but ${lost} runs it; ${survivor.name} has the most free memory of the nodes that define it`,
  };
}

/** The survivor's record that its copy of `resource` is the current one, and `lost`'s is stale. */
export function authorityFile(resource: string): string {
  return `${AUTHORITY_DIR}/${resource}`;
}

/** Steps on the survivor: record the failover, promote it (forced: its peer is gone), start the VM; a shared VM is only started. */
export function failoverSteps(t: FailoverTarget): Step[] {
  const steps: Step[] = t.resource === undefined ? [] : drbdFailoverSteps({ ...t, resource: t.resource });
  steps.push({
    node: t.survivor,
    command: virshCommand('start', t.domain),
    why: `start ${t.vm} on ${t.survivor}`,
    undo: { command: virshCommand('destroy', t.domain), why: `power ${t.vm} off on ${t.survivor} again` },
    timeoutMs: START_TIMEOUT_MS,
  });
  return steps;
}

function drbdFailoverSteps(t: FailoverTarget & { resource: string }): Step[] {
  const file = authorityFile(t.resource);
  const steps: Step[] = [{
    node: t.survivor,
    // First, so a promoted survivor never lacks the record; written aside and renamed.
    command: `mkdir -p ${quote(AUTHORITY_DIR)} && printf '%s %s\\n' ${quote(t.lost)} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > ${quote(`${file}.tmp`)} && mv -f ${quote(`${file}.tmp`)} ${quote(file)}`,
    why: `record on ${t.survivor} that its copy of ${t.resource} is now the current one and ${t.lost}'s is stale`,
    undo: { command: commandLine(['rm', '-f', file]), why: `remove the failover record of ${t.resource} on ${t.survivor}` },
  }];
  if (t.promote) {
    steps.push({
      node: t.survivor,
      command: commandLine(['drbdadm', '--', '--force', 'primary', t.resource]),
      why: `make ${t.survivor} DRBD Primary for ${t.resource} without its peer ${t.lost}`,
      undo: { command: drbdadmCommand('secondary', t.resource), why: `make ${t.survivor} Secondary for ${t.resource} again` },
    });
  }
  return steps;
}

/** The plan for a failover of several VMs away from one dead node. */
export function planFailover(targets: readonly FailoverTarget[], skipped: readonly string[] = []): Plan {
  const lost = [...new Set(targets.map((t) => t.lost))];
  const staleOn = [...new Set(targets.filter((t) => t.resource !== undefined).map((t) => t.lost))];
  const title = targets.length === 1
    ? `fail ${targets[0]!.vm} over from ${targets[0]!.lost} to ${targets[0]!.survivor}`
    : `fail ${targets.length} VMs over from ${lost.join(', ')}: ${targets.map((t) => `${t.vm} to ${t.survivor}`).join(', ')}`;
  return {
    title,
    steps: targets.flatMap(failoverSteps),
    notes: [
      ...targets.map((t) => `${t.vm}: ${t.evidence}`),
      ...skipped,
      ...staleOn.map((n) => `${n}'s copies are stale from now on: when ${n} is back, it must not start them; pmc pm rejoin ${n} resyncs them from the survivors`),
    ],
  };
}

/** What the operator is told before confirming. */
export function atStake(lost: string, vms: readonly string[]): string {
  return `pmc cannot reach ${lost}. If ${lost} is in fact up (only cut off), it may still run ${vms.join(', ')} and write to its own disk: `
    + `starting ${vms.length > 1 ? 'them' : 'it'} elsewhere too makes two copies that diverge, and the writes on one side are lost for good. `
    + `Go on only if ${lost} is powered off (or fenced)`;
}

/**
 * Proof that `lost` is down before anything changes: its fence command (pmc.yaml) exiting 0, else
 * `--yes-node-is-down` naming it, else the operator typing its name.
 */
export async function proveNodeDown(ctx: OpContext, lost: string, vms: readonly string[], yesNodeIsDown: string | undefined): Promise<string> {
  const node = ctx.config.nodes.find((n) => n.name === lost)!;
  if (yesNodeIsDown !== undefined && yesNodeIsDown !== lost) {
    throw new PmcError('PMC_E_USAGE', `--yes-node-is-down names ${yesNodeIsDown}, but the node to fail over from is ${lost}; nothing was changed`, `--yes-node-is-down ${lost}`);
  }
  if (node.fence) return fenceNode(ctx, { ...node, fence: node.fence });
  if (yesNodeIsDown === lost) return `${lost} confirmed down by --yes-node-is-down`;
  await ctx.confirm(lost, atStake(lost, vms), `--yes-node-is-down ${lost}`);
  return `${lost} confirmed down by the operator`;
}

/** Runs `node`'s fence command (pmc.yaml); throws PMC_E_FENCE unless it exits 0. Never asks anyone. */
export async function fenceNode(ctx: OpContext, node: NodeConfig & { fence: string }): Promise<string> {
  ctx.log(`fencing ${node.name}: ${node.fence}`);
  const result = await execa(node.fence, {
    shell: true, reject: false, timeout: FENCE_TIMEOUT_MS, stdin: 'ignore',
    env: { PMC_NODE: node.name, PMC_NODE_ADDRESS: node.address ?? node.name },
  });
  if (result.exitCode !== 0) {
    const detail = `${result.stderr}`.trim().split('\n').at(-1) ?? '';
    throw new PmcError('PMC_E_FENCE', `the fence command of ${node.name} failed (${result.timedOut ? 'timed out' : `exit ${result.exitCode ?? result.signal}`}${detail ? `: ${detail}` : ''}); nothing was changed`,
      `make sure ${node.name} is off, fix its fence command in pmc.yaml (nodes[].fence), and run this again`);
  }
  return `${node.name} fenced by its fence command`;
}

export async function failoverVm(ctx: OpContext, name: string, opts: FailoverOptions): Promise<Report<ApplyResult>> {
  return runFailover(ctx, (state) => ({ targets: [checkFailover(state, ctx.config, name)], skipped: [] }), opts, name);
}

/**
 * Plans the failover of the VMs `select` picks from the state read under the lock, proves the
 * lost node is down (fence command or the operator's word) and applies it.
 */
export async function runFailover(ctx: OpContext, select: (state: ClusterState) => { targets: FailoverTarget[]; skipped: string[] }, opts: FailoverOptions, vm?: string): Promise<Report<ApplyResult>> {
  let targets: FailoverTarget[] = [];
  return mutate(ctx, {
    // Every node: the lost one cannot be locked, and its VMs' peers are known only after reading.
    lock: ctx.config.nodes.map((n) => n.name),
    vm,
    dryRun: opts.dryRun,
    plan: (state) => {
      const selected = select(state);
      targets = selected.targets;
      const plan = planFailover(selected.targets, selected.skipped);
      const lost = selected.targets[0]?.lost;
      if (opts.dryRun && lost) plan.notes.unshift(ctx.config.nodes.find((n) => n.name === lost)?.fence ? `${lost} is fenced first (its fence command in pmc.yaml)` : `${lost} must be confirmed down first (typed, or --yes-node-is-down ${lost})`);
      return plan;
    },
    confirm: async (_state, plan) => {
      const lost = targets[0]?.lost;
      if (lost) plan.notes.unshift(await proveNodeDown(ctx, lost, targets.map((t) => t.vm), opts.yesNodeIsDown));
    },
  });
}

/** The VMs `pm failover PM` takes: DRBD pairs with PM whose survivor saw PM as Primary when the link was lost. */
export function selectFailovers(state: ClusterState, config: Config, lostNode: string): { targets: FailoverTarget[]; skipped: string[] } {
  selectNodes(config, [lostNode]);
  const node = state.nodes.find((n) => n.name === lostNode);
  if (node?.reachable) {
    throw new PmcError('PMC_E_NODE_ALIVE', `${lostNode} answers SSH: failover is only for a dead node`, `move its VMs with pmc vm mv -p ${lostNode} (or pmc pm evacuate ${lostNode})`);
  }
  const targets: FailoverTarget[] = [];
  const skipped: string[] = [];
  // A shared VM that runs nowhere that answers may have run on the lost node: skipReason weighs the evidence.
  for (const vm of state.vms.filter((v) => v.nodes.includes(lostNode) || (v.shared && v.runningOn.length === 0))) {
    const reason = skipReason(vm, lostNode);
    if (reason) {
      skipped.push(`${vm.name} not failed over: ${reason}`);
      continue;
    }
    try {
      targets.push(checkFailover(state, config, vm.name));
    } catch (err) {
      if (!(err instanceof PmcError)) throw err;
      skipped.push(`${vm.name} not failed over: ${err.message} (${err.hint ?? ''})`);
    }
  }
  if (targets.length === 0) {
    throw new PmcError('PMC_E_STATE', `no VM to fail over from ${lostNode}${skipped.length ? `: ${skipped.join('; ')}` : ''}`,
      `fail a VM over by name if you know it ran on ${lostNode}: pmc vm failover VM`);
  }
  return { targets, skipped };
}

/** Why `pm failover` leaves a VM of the lost node alone (a VM named explicitly with vm failover is not asked this). */
function skipReason(vm: Vm, lostNode: string): string | undefined {
  if (vm.ignored) return 'ignored (its name has the ignore prefix)';
  if (vm.runningOn.length > 0) return `runs on ${vm.runningOn.join(' and ')}`;
  if (vm.shared) return sharedSkipReason(vm, lostNode);
  const survivor = vm.replicas.find((r) => r.node !== lostNode && r.resource);
  const loss = survivor?.resource?.lastConnectionLoss;
  if (!survivor) return 'it has no copy on another node';
  if (!loss) return `${survivor.node}'s kernel log does not say whether it ran on ${lostNode}; if it did: pmc vm failover ${vm.name}`;
  if (loss.peerRoleBefore !== 'Primary') return `${lostNode} was ${loss.peerRoleBefore ?? 'of unknown role'}, not Primary, when ${survivor.node} lost it, so it did not run there; if it should run now: pmc vm failover ${vm.name}`;
  return undefined;
}

/**
 * Whether a shared VM that runs on no node that answers ran on the lost node. libvirt's reason
 * for a shut-off domain tells: a node it migrated away from says `migrated`, one that only
 * defines it says `unknown`; a stop on a node that answers says `shutdown` or `destroyed`. So it
 * ran last on the lost node when some node says `migrated` and none says anything but these two.
 * A VM never migrated (created on the lost node) leaves no trace: the operator names it.
 */
function sharedSkipReason(vm: Vm, lostNode: string): string | undefined {
  const reasons = vm.replicas.filter((r) => r.domain).map((r) => `${r.node}: ${r.domain!.stateReason ?? 'unknown'}`);
  const traces = vm.replicas.map((r) => r.domain?.stateReason ?? 'unknown');
  if (traces.includes('migrated') && traces.every((t) => t === 'migrated' || t === 'unknown')) return undefined;
  return `nothing says it ran on ${lostNode} (shut off on ${reasons.join(', ')}); if it did: pmc vm failover ${vm.name}`;
}
