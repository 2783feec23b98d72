import type { OpContext, Report } from '../engine/context.js';
import { isActive, type ClusterState, type NodeState, type Vm } from '../../model/cluster.js';
import { readCluster } from '../../model/read.js';
import { sharedId, sharedProblem } from '../../model/shared.js';
import { formatBytes } from '../../util/units.js';
import { quote } from '../../util/shell.js';
import { mergeRepair, overlayFile } from '../backup/backup-plan.js';

/**
 * `pmc cluster verify`, after `gnt-cluster verify`: every check has a stable code, a
 * severity and a fix. Errors make the command exit non-zero; warnings do not.
 */
export type CheckCode =
  | 'PMC_V_NODE_UNREACHABLE' | 'PMC_V_NODE_HOSTNAME' | 'PMC_V_NODE_NO_VG' | 'PMC_V_NODE_NO_BRIDGE'
  | 'PMC_V_NODE_DRBD_NOT_LOADED' | 'PMC_V_NODE_LIBVIRT_DOWN' | 'PMC_V_NODE_N_PLUS_1' | 'PMC_V_NODE_SHARED_STORAGE'
  | 'PMC_V_VM_RUNNING_TWICE' | 'PMC_V_VM_DEFINED_ON_ONE' | 'PMC_V_VM_UUID_DIFFERS' | 'PMC_V_VM_XML_DIFFERS'
  | 'PMC_V_DRBD_DOWN' | 'PMC_V_DRBD_NOT_CONNECTED' | 'PMC_V_DRBD_NOT_UPTODATE' | 'PMC_V_DRBD_SPLIT_BRAIN'
  | 'PMC_V_DRBD_TWO_PRIMARIES' | 'PMC_V_DRBD_TWO_PRIMARIES_ALLOWED' | 'PMC_V_DRBD_STALE_COPY'
  | 'PMC_V_MINOR_DUPLICATE' | 'PMC_V_PORT_DUPLICATE'
  | 'PMC_V_ORPHAN_LV' | 'PMC_V_ORPHAN_RESOURCE_FILE' | 'PMC_V_ORPHAN_DOMAIN'
  | 'PMC_V_VM_ON_BACKUP_OVERLAY';

export interface Finding {
  code: CheckCode;
  severity: 'error' | 'warning';
  node: string | undefined;
  vm: string | undefined;
  message: string;
  fix: string;
}

export interface VerifyResult {
  findings: Finding[];
  errors: number;
  warnings: number;
  nodesChecked: number;
  vmsChecked: number;
}

export async function verify(ctx: OpContext): Promise<Report<VerifyResult>> {
  const state = await readCluster(ctx);
  const findings = verifyCluster(state);
  const errors = findings.filter((f) => f.severity === 'error').length;
  return {
    data: { findings, errors, warnings: findings.length - errors, nodesChecked: state.nodes.length, vmsChecked: state.vms.length },
    status: errors > 0 ? 'failed' : 'ok',
    warnings: [],
  };
}

/** All checks, as a pure function of the cluster state. */
export function verifyCluster(state: ClusterState): Finding[] {
  const findings: Finding[] = [];
  const add = (f: Omit<Finding, 'node' | 'vm'> & { node?: string | undefined; vm?: string | undefined }) =>
    findings.push({ node: undefined, vm: undefined, ...f });
  const clusterSharedId = sharedId(state);
  for (const node of state.nodes) checkNode(node, state, add);
  for (const node of state.nodes) {
    const problem = sharedProblem(node, clusterSharedId);
    if (problem) add({ code: 'PMC_V_NODE_SHARED_STORAGE', severity: 'error', node: node.name, ...problem });
  }
  for (const vm of state.vms) checkVm(vm, add);
  checkNumbering(state, add);
  checkOrphans(state, add);
  checkBackupOverlays(state, add);
  checkNPlusOne(state, add);
  return findings;
}

type Add = (f: Omit<Finding, 'node' | 'vm'> & { node?: string | undefined; vm?: string | undefined }) => void;

function checkNode(node: NodeState, state: ClusterState, add: Add): void {
  if (!node.reachable || !node.facts) {
    add({
      code: 'PMC_V_NODE_UNREACHABLE', severity: 'error', node: node.name,
      message: node.error?.message ?? `${node.name} could not be asked`,
      fix: node.error?.hint ?? `check that ${node.host} is up and reachable over SSH`,
    });
    return;
  }
  const f = node.facts;
  if (f.hostname && f.hostname !== node.name) {
    add({
      code: 'PMC_V_NODE_HOSTNAME', severity: 'error', node: node.name,
      message: `${node.name} calls itself "${f.hostname}"; DRBD resource files name nodes by host name`,
      fix: `set the host name of ${node.host} to ${node.name} (hostnamectl set-hostname ${node.name}) or rename the node in pmc.yaml`,
    });
  }
  if (!f.vg) {
    add({
      code: 'PMC_V_NODE_NO_VG', severity: 'error', node: node.name,
      message: `${node.name} has no volume group for VM disks`,
      fix: 'create it (vgcreate <vg> <disk>) or set storage.volumeGroup in pmc.yaml',
    });
  }
  if (!f.bridge.present || !f.bridge.isBridge) {
    add({
      code: 'PMC_V_NODE_NO_BRIDGE', severity: 'error', node: node.name,
      message: `${node.name} has no bridge ${f.bridge.name}${f.bridge.present ? ` (${f.bridge.name} is not a bridge)` : ''}`,
      fix: `create the bridge ${f.bridge.name} holding the node's uplink, or set network.bridge in pmc.yaml`,
    });
  }
  const hasResources = state.vms.some((vm) => vm.replicas.some((r) => r.node === node.name && r.resource));
  if (!f.drbd.moduleLoaded) {
    add({
      code: 'PMC_V_NODE_DRBD_NOT_LOADED', severity: hasResources ? 'error' : 'warning', node: node.name,
      message: `${node.name}: the drbd kernel module is not loaded`,
      fix: `pmc pm drbd-up ${node.name}`,
    });
  }
  if (!f.libvirt.active) {
    add({
      code: 'PMC_V_NODE_LIBVIRT_DOWN', severity: 'error', node: node.name,
      message: `${node.name}: libvirtd does not answer${f.libvirt.failure ? ` (virsh version: ${f.libvirt.failure})` : ''}`,
      fix: 'systemctl start libvirtd on the node',
    });
  }
}

function checkVm(vm: Vm, add: Add): void {
  const where = { vm: vm.name };
  if (vm.runningOn.length > 1) {
    add({
      ...where, code: 'PMC_V_VM_RUNNING_TWICE', severity: 'error', node: vm.runningOn.join(','),
      message: `${vm.name} runs on ${vm.runningOn.join(' and ')} at once`,
      fix: vm.shared
        ? `both write ${vm.shared.file}: power one off at once (virsh destroy ${quote(vm.name)} on it), then check the guest's file system`
        : `find the node with the current data (the DRBD primary) and destroy the other copy: virsh destroy ${quote(vm.name)}`,
    });
  }
  const reachable = vm.replicas.filter((r) => r.reachable);
  const withResource = reachable.filter((r) => r.resource);
  const hosts = vm.replicas[0]?.resource?.hosts.map((h) => h.name) ?? [];
  const definedOn = reachable.filter((r) => r.domain);
  if (definedOn.length > 0) {
    for (const r of reachable) {
      if (hosts.includes(r.node) && !r.domain) {
        const source = definedOn[0]!.node;
        add({
          ...where, code: 'PMC_V_VM_DEFINED_ON_ONE', severity: 'error', node: r.node,
          message: `${vm.name} is defined on ${source} but not on ${r.node}, the other node of its DRBD resource`,
          fix: `on ${source}: virsh dumpxml --inactive --security-info ${quote(vm.name)} > ${quote(`/tmp/${vm.name}.xml`)}, copy it to ${r.node} and virsh define it there`,
        });
      }
    }
  }
  const [first, ...rest] = definedOn;
  for (const other of rest) {
    if (first!.domain!.uuid !== other.domain!.uuid) {
      add({
        ...where, code: 'PMC_V_VM_UUID_DIFFERS', severity: 'error', node: `${first!.node},${other.node}`,
        message: `${vm.name} has UUID ${first!.domain!.uuid} on ${first!.node} but ${other.domain!.uuid} on ${other.node}: live migration will fail`,
        fix: `redefine it on the node where it does not run from the other node's virsh dumpxml --inactive --security-info`,
      });
    } else if (normalizeXml(first!.domain!.xml) !== normalizeXml(other.domain!.xml)) {
      add({
        ...where, code: 'PMC_V_VM_XML_DIFFERS', severity: 'warning', node: `${first!.node},${other.node}`,
        message: `${vm.name}'s definition differs between ${first!.node} and ${other.node}`,
        fix: `compare virsh dumpxml --inactive ${quote(vm.name)} on both and redefine the stale one`,
      });
    }
  }
  if (vm.authority) {
    const { node, lostNode, at } = vm.authority;
    add({
      ...where, node: lostNode, code: 'PMC_V_DRBD_STALE_COPY', severity: 'error',
      message: `${vm.name}: the copy on ${lostNode} is stale: ${vm.name} failed over to ${node} at ${at}, and ${node}'s copy is the current one`,
      fix: `pmc pm rejoin ${lostNode} (it discards ${lostNode}'s copy and resyncs it from ${node}; never start ${vm.name} on ${lostNode} before)`,
    });
  }
  for (const r of withResource) {
    const res = r.resource!;
    const node = r.node;
    // After a failover the pair is apart on purpose: the stale-copy finding says what to do.
    if (vm.authority) continue;
    if (!res.up) {
      add({
        ...where, node, code: 'PMC_V_DRBD_DOWN', severity: 'error',
        message: `${vm.name}: DRBD resource ${res.name} is configured on ${node} but not up`,
        fix: `pmc pm drbd-up ${node} (or drbdadm up ${quote(res.name)} on ${node})`,
      });
      continue;
    }
    const standAlone = res.peers.some((p) => p.connection === 'StandAlone');
    if (res.splitBrain || (standAlone && vm.flags.includes('split-brain'))) {
      add({
        ...where, node, code: 'PMC_V_DRBD_SPLIT_BRAIN', severity: 'error',
        message: `${vm.name}: ${res.name} on ${node} is StandAlone: split brain suspected`,
        fix: `decide which node's data to keep; on the other: drbdadm secondary ${quote(res.name)}; drbdadm connect --discard-my-data ${quote(res.name)}; then drbdadm connect ${quote(res.name)} on the survivor`,
      });
    } else if (res.peers.length === 0 || res.peers.some((p) => p.connection !== 'Connected')) {
      add({
        ...where, node, code: 'PMC_V_DRBD_NOT_CONNECTED', severity: 'error',
        message: `${vm.name}: ${res.name} on ${node} is ${res.peers.map((p) => p.connection).join(',') || 'without a peer'}`,
        fix: `check the network between the nodes and run drbdadm connect ${quote(res.name)} on ${node}`,
      });
    }
    if (res.diskState !== 'UpToDate') {
      const syncing = res.peers.some((p) => /Sync/.test(p.replication));
      add({
        ...where, node, code: 'PMC_V_DRBD_NOT_UPTODATE', severity: syncing ? 'warning' : 'error',
        message: `${vm.name}: the disk on ${node} is ${res.diskState}${syncing ? ` (resync ${res.peers[0]?.syncPercent ?? '?'}% done)` : ''}`,
        fix: syncing ? 'wait for the resync to finish' : `reconnect the resource so it resyncs from its UpToDate peer: drbdadm adjust ${quote(res.name)} on ${node}`,
      });
    }
    if (res.allowTwoPrimaries && node === vm.home) {
      add({
        ...where, node: vm.nodes.join(','), code: 'PMC_V_DRBD_TWO_PRIMARIES_ALLOWED', severity: 'warning',
        message: `${vm.name}: allow-two-primaries is on permanently in ${res.configFile ?? 'its resource file'} (the old tool's default)`,
        fix: `remove "allow-two-primaries yes;" from the resource file on ${vm.nodes.join(' and ')} and run drbdadm adjust ${quote(res.name)}; migrations turn it on only while they run`,
      });
    }
  }
  if (vm.primaryOn.length > 1 && !migrating(vm)) {
    add({
      ...where, node: vm.primaryOn.join(','), code: 'PMC_V_DRBD_TWO_PRIMARIES', severity: 'error',
      message: `${vm.name}: both ${vm.primaryOn.join(' and ')} are DRBD Primary and no migration is running`,
      fix: `on the node where ${quote(vm.name)} does not run: drbdadm secondary ${quote(vm.name)}`,
    });
  }
}

/** During a live migration the target is paused (incoming) while the source still runs. */
function migrating(vm: Vm): boolean {
  return vm.replicas.some((r) => r.domain?.state === 'paused' && /migrat/i.test(r.domain.stateReason ?? ''))
    && vm.runningOn.length >= 1;
}

function normalizeXml(xml: string | undefined): string {
  return (xml ?? '').replace(/>\s+</g, '><').trim();
}

function checkNumbering(state: ClusterState, add: Add): void {
  for (const node of state.nodes) {
    const resources = node.facts?.drbdResources.filter((r) => r.configured) ?? [];
    const clash = (key: 'minor' | 'port', code: CheckCode) => {
      const users = new Map<number, string[]>();
      for (const r of resources) {
        const value = r[key];
        if (value !== undefined) users.set(value, [...(users.get(value) ?? []), r.name]);
      }
      for (const [value, names] of users) {
        if (names.length < 2) continue;
        add({
          node: node.name, code, severity: 'error',
          message: `${node.name}: DRBD ${key} ${value} is used by ${names.join(' and ')}`,
          fix: `give one of them an unused ${key} in /etc/drbd.d/<name>.res on both of its nodes and drbdadm adjust it (new VMs from pmc never collide)`,
        });
      }
    };
    clash('minor', 'PMC_V_MINOR_DUPLICATE');
    clash('port', 'PMC_V_PORT_DUPLICATE');
  }
}

function checkOrphans(state: ClusterState, add: Add): void {
  const domainNames = new Set(state.vms.filter((vm) => vm.replicas.some((r) => r.domain)).map((vm) => vm.name));
  for (const node of state.nodes) {
    const f = node.facts;
    if (!f) continue;
    const backing = new Set(f.drbdResources.map((r) => r.disk));
    const domainDisks = new Set(f.domains.flatMap((d) => d.disks.map((disk) => disk.source)));
    for (const lv of f.lvs) {
      if (backing.has(lv.path) || domainDisks.has(lv.path) || domainNames.has(lv.name) || lv.origin) continue;
      add({
        node: node.name, vm: lv.name, code: 'PMC_V_ORPHAN_LV', severity: 'warning',
        message: `${node.name}: LV ${lv.path} (${formatBytes(lv.sizeBytes)}) belongs to no DRBD resource and no VM`,
        fix: `if its data is not needed: lvremove ${quote(lv.path)} on ${node.name}`,
      });
    }
    for (const file of f.drbdResourceFiles) {
      const resource = f.drbdResources.find((r) => r.configFile === file);
      if (resource && domainNames.has(resource.name)) continue;
      add({
        node: node.name, vm: resource?.name, code: 'PMC_V_ORPHAN_RESOURCE_FILE', severity: 'warning',
        message: `${node.name}: ${file} ${resource ? `defines ${resource.name}, which no node has a domain for` : 'defines no resource for this node'}`,
        fix: resource ? `if the VM is gone: drbdadm down ${quote(resource.name)}; rm ${quote(file)} on ${node.name}` : `remove or fix ${quote(file)} on ${node.name}`,
      });
    }
    const minors = new Set(f.drbdResources.map((r) => r.device));
    for (const d of f.domains) {
      const missing = d.disks.find((disk) => disk.device === 'disk' && disk.source?.startsWith('/dev/drbd') && !minors.has(disk.source));
      if (!missing) continue;
      add({
        node: node.name, vm: d.name, code: 'PMC_V_ORPHAN_DOMAIN', severity: 'warning',
        message: `${node.name}: domain ${d.name} uses ${missing.source}, which no DRBD resource on ${node.name} provides`,
        fix: `if the VM lives elsewhere: virsh undefine ${quote(d.name)} on ${node.name}; else recreate its resource`,
      });
    }
  }
}

/**
 * A shared VM's backup writes its guest into an overlay beside its file and merges it back; when
 * that merge failed, the domain still runs on (or is defined with) the overlay: it grows with
 * every write, and the next backup refuses until it is merged.
 */
function checkBackupOverlays(state: ClusterState, add: Add): void {
  for (const node of state.nodes) {
    for (const d of node.facts?.domains ?? []) {
      // The overlay's name beside whatever file the disk is: the disk is the overlay when they are the same.
      const disk = d.disks.find((x) => x.source !== undefined && x.source === overlayFile(x.source, d.name));
      if (!disk) continue;
      add({
        node: node.name, vm: d.name, code: 'PMC_V_VM_ON_BACKUP_OVERLAY', severity: 'error',
        message: `${node.name}: domain ${d.name}'s disk ${disk.target} is the backup overlay ${disk.source}: merging it back into its file after a backup failed`,
        fix: `${isActive(d) ? '' : `start ${d.name} (it runs on the overlay, which holds its newest writes), then `}${mergeRepair(node.name, d.uuid, disk.target, disk.source!)}`,
      });
    }
  }
}

/**
 * N+1, as Ganeti checks it: if a node fails, the VMs running on it restart on their peers;
 * each peer must have the memory for all of the failed node's VMs that fall to it.
 */
function checkNPlusOne(state: ClusterState, add: Add): void {
  for (const failed of state.nodes) {
    const fallTo = new Map<string, { vms: string[]; bytes: number }>();
    for (const vm of state.vms) {
      if (!vm.runningOn.includes(failed.name) || !vm.peer || vm.peer === failed.name || vm.memoryBytes === undefined) continue;
      const load = fallTo.get(vm.peer) ?? { vms: [], bytes: 0 };
      load.vms.push(vm.name);
      load.bytes += vm.memoryBytes;
      fallTo.set(vm.peer, load);
    }
    for (const [peer, load] of fallTo) {
      const available = state.nodes.find((n) => n.name === peer)?.facts?.memory?.availableBytes;
      if (available === undefined || load.bytes <= available) continue;
      add({
        node: peer, code: 'PMC_V_NODE_N_PLUS_1', severity: 'warning',
        message: `if ${failed.name} fails, ${peer} must start ${load.vms.join(', ')} (${formatBytes(load.bytes)}) but has ${formatBytes(available)} free`,
        fix: `move a VM's secondary to another node or add memory to ${peer}`,
      });
    }
  }
}
