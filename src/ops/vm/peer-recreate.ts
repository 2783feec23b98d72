/**
 * `pmc vm peer-recreate [NEWPM] VM` (the old tool's pmc-vm-peer-recreate): replace a VM's standby
 * copy while the VM keeps running. With NEWPM: a new LV and DRBD metadata there, the resource
 * file rewritten on the primary and NEWPM (`drbdadm adjust` on the primary), a full resync with
 * progress, the domain defined on NEWPM from the primary's XML (same UUID), and only then the old
 * secondary's LV, resource file and domain removed. A failure before the new copy is UpToDate
 * undoes the new side and puts the primary's old resource file back, so the old secondary
 * reconnects as it was. Without NEWPM: the copy is rebuilt from scratch on the same node (its
 * disk was replaced).
 */
import type { OpContext, Report } from '../engine/context.js';
import type { Config } from '../../config/load.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState, VmReplica } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan, Step } from '../engine/plan.js';
import { definePeerStep, drbdNodeSteps, lvCreateStep, resourceFile, resourceFileStep, resyncWaitStep } from './add-plan.js';
import { replicationAddresses } from './add.js';
import { drbdadmCommand, managedVm, mutateVm, virshCommand } from './lifecycle.js';

export interface PeerRecreateTarget {
  vm: string;
  primary: string;
  oldPeer: string;
  newPeer: string;
  oldPeerReachable: boolean;
  resource: string;
  minor: number;
  port: number;
  lvBytes: number;
  uuid: string;
  /** The VM runs on the primary (a shut-off VM's copy can be moved too, from a kept copy named by the caller). */
  running: boolean;
}

function refuse(message: string, hint: string): never {
  throw new PmcError('PMC_E_STATE', message, hint);
}

/** The copy that stays, checked: what a new copy is made from, wherever it goes. */
export type RecreateSource = Omit<PeerRecreateTarget, 'newPeer'>;

/**
 * Every check before anything changes, as a pure function of the state: the copy kept
 * (checkRecreateSource), then the node the new copy goes to (checkRecreateTarget).
 */
export function checkPeerRecreate(state: ClusterState, config: Config, name: string, newPeer: string | undefined, opts: { keep?: string } = {}): PeerRecreateTarget {
  const source = checkRecreateSource(state, config, name, opts);
  return checkRecreateTarget(state, config, source, newPeer ?? source.oldPeer);
}

/**
 * The checks of the copy that is kept, wherever the new one goes. It is the one on the DRBD
 * Primary; `keep` names it instead (pm evacuate: a shut-off VM, Secondary on both nodes, keeps
 * the copy that is not on the node being emptied).
 */
export function checkRecreateSource(state: ClusterState, config: Config, name: string, opts: { keep?: string } = {}): RecreateSource {
  const vm = managedVm(state, name, config);
  const resource = vm.replicas.find((r) => r.resource)?.resource;
  if (!resource) refuse(`${vm.name} has no DRBD resource, so it has no standby copy to recreate`, 'pmc vm peer-recreate is for replicated VMs');
  const hosts = resource.hosts.map((h) => h.name);
  const unknown = hosts.filter((h) => !config.nodes.some((n) => n.name === h));
  if (hosts.length !== 2 || unknown.length > 0) {
    refuse(`${vm.name}'s DRBD resource names ${hosts.join(', ')}${unknown.length ? `; ${unknown.join(', ')} not in pmc.yaml` : ''}: pmc recreates the peer of two-node pairs of pmc.yaml only`, 'fix the resource by hand');
  }
  const replica = (node: string): VmReplica | undefined => vm.replicas.find((r) => r.node === node);
  const primaries = hosts.filter((h) => replica(h)?.resource?.role === 'Primary');
  const elsewhere = primaries.filter((h) => h !== opts.keep);
  if (opts.keep !== undefined && !hosts.includes(opts.keep)) refuse(`${opts.keep} is not a node of ${vm.name}'s DRBD resource`, `pmc vm info ${vm.name}`);
  if (opts.keep !== undefined && elsewhere.length > 0) {
    refuse(`${vm.name} is DRBD Primary on ${elsewhere.join(' and ')}, whose copy would be replaced`, `pmc vm info ${vm.name}; pmc vm mv --cleanup ${vm.name} sorts out an interrupted migration`);
  }
  if (opts.keep === undefined && primaries.length !== 1) {
    refuse(`${vm.name} has ${primaries.length === 0 ? 'no DRBD Primary' : 'two DRBD Primaries'}: the copy to keep must be the one Primary`, `start it (pmc vm start ${vm.name}) so its node is Primary, then run this again`);
  }
  const primary = opts.keep ?? primaries[0]!;
  const oldPeer = hosts.find((h) => h !== primary)!;
  const primaryReplica = replica(primary)!;
  const primaryRes = primaryReplica.resource!;
  if (!primaryReplica.reachable || primaryRes.diskState !== 'UpToDate') {
    refuse(`${primary}'s copy of ${vm.name} is ${primaryRes.diskState ?? 'unknown'}, not UpToDate: it cannot be the source of a new copy`, `pmc vm info ${vm.name}`);
  }
  const lvBytes = primaryReplica.lv?.sizeBytes;
  if (lvBytes === undefined) refuse(`the size of ${vm.name}'s LV on ${primary} is unknown`, `check lvs on ${primary}`);
  if (vm.runningOn.includes(oldPeer)) refuse(`${vm.name} runs on ${oldPeer}, the copy to be replaced`, `pmc vm stop ${vm.name} there first`);
  const uuid = primaryReplica.domain?.uuid;
  if (!uuid) refuse(`${vm.name} is not defined on ${primary}`, `define it on ${primary} first`);
  return {
    vm: vm.name, primary, oldPeer, oldPeerReachable: replica(oldPeer)?.reachable === true,
    resource: resource.name, minor: primaryRes.minor!, port: primaryRes.port!, lvBytes, uuid, running: vm.runningOn.includes(primary),
  };
}

/** The checks of the node the new copy goes to (the old peer itself: rebuilt in place). */
export function checkRecreateTarget(state: ClusterState, config: Config, source: RecreateSource, target: string): PeerRecreateTarget {
  selectNodes(config, [target]);
  const { vm, primary } = source;
  if (target === primary) refuse(`${primary} ${source.running ? 'runs' : 'holds the kept copy of'} ${vm} already: the new copy must go to another node`, `pmc vm peer-recreate NODE ${vm} with another node`);
  const newNode = state.nodes.find((n) => n.name === target)!;
  if (!newNode.reachable || !newNode.facts) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${target} could not be asked, so the copy cannot be made there`, `${newNode.error?.message ?? `check ${target}`}; or name another node`);
  }
  if (target !== source.oldPeer) {
    const f = newNode.facts;
    const file = `/etc/drbd.d/${source.resource}.res`;
    const found = [
      ...(f.domains.some((d) => d.name === vm) ? ['a domain'] : []),
      ...(f.lvs.some((lv) => lv.name === vm) ? [`the LV ${config.storage.volumeGroup}/${vm}`] : []),
      ...(f.drbdResourceFiles.includes(file) ? [file] : []),
    ];
    if (found.length) refuse(`${target} has ${found.join(', ')} of ${vm} already`, `remove it there first, or rebuild the copy in place: pmc vm peer-recreate ${vm}`);
    if ((f.vg?.freeBytes ?? 0) < source.lvBytes) {
      throw new PmcError('PMC_E_CAPACITY', `${target} has ${formatBytes(f.vg?.freeBytes ?? 0)} free in ${config.storage.volumeGroup}, ${vm} needs ${formatBytes(source.lvBytes)}`, 'free space there, or name another node');
    }
    const clash = f.drbdResources.find((r) => r.name !== source.resource && (r.minor === source.minor || r.port === source.port));
    if (clash) refuse(`${target} uses DRBD minor ${clash.minor} / port ${clash.port} for ${clash.name} already: ${vm} keeps minor ${source.minor}, port ${source.port}`, 'name another node');
  }
  return { ...source, newPeer: target };
}

/**
 * vm add's node steps wait for that node's LV by id (so two nodes are set up at once); here
 * they run one after the other, with or without an LV step before them.
 */
function inSequence(steps: readonly Step[]): Step[] {
  return steps.map((s) => ({ ...s, id: undefined, after: undefined }));
}

/** The plan; `addresses` are the replication addresses of the primary and the new peer. */
export function planPeerRecreate(state: ClusterState, config: Config, t: PeerRecreateTarget, addresses: Record<string, string>): Plan {
  const vg = config.storage.volumeGroup;
  const steps: Step[] = [];
  const notes: string[] = [];
  const newFile = resourceFile(config, t.resource, `/dev/${vg}/${t.resource}`, { nodes: [t.primary, t.newPeer], drbd: { minor: t.minor, port: t.port } }, { addresses });
  const file = `/etc/drbd.d/${t.resource}.res`;
  const oldPeerReplica = state.vms.find((v) => v.name === t.vm)?.replicas.find((r) => r.node === t.oldPeer);
  if (t.newPeer === t.oldPeer) {
    // In place: the old copy is gone or useless; it gets new metadata and a full resync.
    const hasLv = Boolean(oldPeerReplica?.lv);
    if (oldPeerReplica?.resource?.up) steps.push({ node: t.newPeer, command: drbdadmCommand('down', t.resource), why: `take ${t.resource} down on ${t.newPeer}` });
    if (!hasLv) steps.push(lvCreateStep(t.newPeer, t.resource, vg, t.lvBytes));
    const nodeSteps = inSequence(drbdNodeSteps(t.newPeer, t.resource, newFile));
    // A resource file that is there stays: it matches the primary's, whatever options it has.
    steps.push(...(oldPeerReplica?.resource?.configured ? nodeSteps.slice(1) : nodeSteps));
    notes.push(`the copy on ${t.newPeer} is rebuilt from scratch (new DRBD metadata${hasLv ? ' on the existing LV' : ' on a new LV'}) and resynced in full from ${t.primary}`);
  } else {
    const backup = `${file}.pmc-before-peer-recreate`;
    // The domain is defined first: libvirt on the new node judges the primary's definition
    // (domain type, machine, emulator) before a byte is copied, and a node that cannot run the
    // VM (no KVM there, for one) stops the move at once instead of after a full resync.
    steps.push(definePeerStep(t.primary, t.newPeer, t.vm, t.uuid));
    steps.push(lvCreateStep(t.newPeer, t.resource, vg, t.lvBytes), ...inSequence(drbdNodeSteps(t.newPeer, t.resource, newFile)));
    steps.push({
      node: t.primary,
      command: commandLine(['cp', '-p', file, backup]),
      why: `keep ${t.primary}'s resource file, to put it back if the new copy fails`,
      undo: { command: `mv -f ${quote(backup)} ${quote(file)} && ${commandLine(['drbdadm', 'adjust', t.resource])}`, why: `put ${t.primary}'s old resource file back and reconnect ${t.oldPeer}` },
    });
    steps.push({ ...resourceFileStep(t.primary, t.resource, newFile), undo: undefined });
    steps.push({ node: t.primary, command: commandLine(['drbdadm', 'adjust', t.resource]), why: `point ${t.resource} on ${t.primary} at ${t.newPeer} instead of ${t.oldPeer}${t.running ? ' (the VM keeps running)' : ''}` });
  }
  steps.push(
    { ...resyncWaitStep(t.primary, t.resource, t.lvBytes), why: `wait until the new copy on ${t.newPeer} has resynced in full from ${t.primary}` },
  );
  if (t.newPeer !== t.oldPeer) {
    steps.push({ node: t.primary, command: commandLine(['rm', '-f', `${file}.pmc-before-peer-recreate`]), why: `drop the kept copy of ${t.primary}'s old resource file` });
    if (t.oldPeerReachable) {
      const domain = oldPeerReplica?.domain;
      if (domain) steps.push({ node: t.oldPeer, command: virshCommand('undefine', domain, ['--nvram']), why: `undefine ${t.vm} on ${t.oldPeer}` });
      if (oldPeerReplica?.resource?.up) steps.push({ node: t.oldPeer, command: drbdadmCommand('down', t.resource), why: `take ${t.resource} down on ${t.oldPeer}` });
      if (oldPeerReplica?.lv) steps.push({ node: t.oldPeer, command: commandLine(['lvremove', '-q', '-y', '--', `${vg}/${oldPeerReplica.lv.name}`]), why: `remove the old copy (LV ${oldPeerReplica.lv.path}) on ${t.oldPeer}` });
      steps.push({ node: t.oldPeer, command: commandLine(['rm', '-f', oldPeerReplica?.resource?.configFile ?? file]), why: `remove the resource file on ${t.oldPeer}` });
    } else {
      notes.push(`${t.oldPeer} cannot be asked: its old copy (domain, LV, resource file) stays there; pmc cluster verify lists it once it is back`);
    }
  }
  return {
    title: t.newPeer === t.oldPeer
      ? `rebuild ${t.vm}'s copy on ${t.newPeer} from ${t.primary} (${formatBytes(t.lvBytes)})`
      : `move ${t.vm}'s standby copy from ${t.oldPeer} to ${t.newPeer}, resynced from ${t.primary} (${formatBytes(t.lvBytes)})`,
    steps,
    notes: [...notes, `${t.vm} ${t.running ? 'keeps running' : 'has its only current copy'} on ${t.primary}; until the resync ends it has no second copy`],
  };
}

export async function peerRecreate(ctx: OpContext, name: string, newPeer: string | undefined, opts: { dryRun: boolean }): Promise<Report<ApplyResult>> {
  let target: ReturnType<typeof checkPeerRecreate> | undefined;
  return mutateVm(ctx, name, {
    dryRun: opts.dryRun,
    plan: async (state) => {
      target = checkPeerRecreate(state, ctx.config, name, newPeer);
      const addresses = await replicationAddresses(ctx, state, [target.primary, target.newPeer]);
      return planPeerRecreate(state, ctx.config, target, addresses);
    },
    mattering: () => (target ? [target.primary, target.newPeer, target.oldPeer] : []),
  });
}
