/**
 * `pmc vm backup`, the pure part: where a VM's disk is read, and the steps that read it.
 *
 * The old tool promoted the standby to a second Primary to read /dev/drbdN (DRBD's manual warns
 * that dual-primary without a cluster file system corrupts data) and left it Primary when the
 * copy failed. pmc never changes a DRBD role: on the node chosen (the standby by default), with
 * the resource Connected and UpToDate/UpToDate, it takes an LVM snapshot of the backing LV
 * (protocol C keeps write order on the receiving side, so the snapshot is crash-consistent;
 * with a guest agent the file systems are frozen around it), reads the snapshot's data area
 * (the first <DRBD device size> bytes: internal metadata sits at the end), and removes the
 * snapshot whatever happens.
 *
 * A shared-storage VM's disk is a file that every node reaches: it is read on the node that runs
 * it, from a point in time libvirt holds as it does for file disks (an external overlay takes the
 * guest's writes while the file is read, then is merged back), or, shut off, straight from the file.
 */
import type { Config } from '../../config/load.js';
import type { ClusterState, Vm, VmReplica } from '../../model/cluster.js';
import { backupOverlayFile } from '../../model/shared.js';
import { healthy } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { Plan, Step } from '../engine/plan.js';
import { managedVm } from '../vm/lifecycle.js';
import {
  backupDir, backupFile, isoOfStamp, manifestFile, newestFull, sha256Command, type BackupEntry, type BackupKind, type BackupManifest, type Compression,
} from './catalog.js';

export interface BackupRequest {
  vm: string;
  kind: BackupKind;
  /** --zstd (with -b only): the full image is written compressed. */
  compression: Compression | undefined;
  /** -p: read the disk on this node. */
  node: string | undefined;
}

/** What the handler read or chose before planning. */
export interface BackupFacts {
  /** Every backup on the chosen node (for the full image an increment is computed against). */
  entries: BackupEntry[];
  /** The time stamp of the new backup (UTC). */
  stamp: string;
  /** The guest agent answered on the node the VM runs on: its file systems are frozen around the snapshot. */
  agent: boolean;
  /** A shared VM's disk file's size, read on the chosen node (an LV's size is in the probe). */
  sharedFileBytes?: number;
  pmcVersion: string;
}

/** Where the disk is read. */
export type BackupSource = LvSource | SharedSource;

interface SourceBase {
  vm: Vm;
  node: string;
  /** Where the VM runs, if it does (where a freeze would happen). */
  runningOn: string | undefined;
}

/** An LV, read from an LVM snapshot. */
export interface LvSource extends SourceBase {
  kind: 'lv';
  /** The LV the snapshot is taken of (`/dev/vg-pmc/web-1`). */
  lv: string;
  lvBytes: number;
  /** Bytes of VM data at the start of the LV. */
  dataBytes: number;
  drbdDevice: string | undefined;
}

/** A shared VM's disk file, read on the node that runs it (runningOn is node then), or anywhere when it is shut off. */
export interface SharedSource extends SourceBase {
  kind: 'shared';
  file: string;
  /** Running: the guest's name of the disk (`vda`), whose overlay is taken, and of its other disks, kept out of the snapshot. */
  disk: { target: string; others: string[] } | undefined;
}

/** Snapshot LVs are named after the VM with a suffix no VM name can have ("_" is not allowed in VM names). */
export const SNAPSHOT_SUFFIX = '_pmcsnap';

const MiB = 1024 ** 2;

/**
 * xdelta3's source window (-B), given explicitly and recorded in the manifest. A disk's changes
 * stay at their offsets, so source and target advance together: xdelta3 indexes the source half a
 * window ahead of the target and finds every unchanged block with a small window, whose hash
 * table a changed byte's lookups hit in the CPU's cache. Measured on 4 GiB of random data with 1%
 * of its 4 KiB blocks rewritten, the delta was the same to the byte with 16 MiB as with xdelta3's
 * default 64 MiB (the changed bytes plus 0.3%); with 256 MiB it was not one byte smaller either
 * (on 2 GiB, 5x the time, 3x the memory). Increments made with 64 MiB say so in their manifest.
 */
export const SOURCE_WINDOW_BYTES = 16 * MiB;

/**
 * How xdelta3 looks for matches, beside -B: in target windows of 8 MiB (-W), with the source
 * indexed every 512 bytes on 32-byte checksums (-C, xdelta3's soft configuration: large_look,
 * large_step, then the small-match settings of its default level) instead of every 8 bytes on 9,
 * and without looking for repeats inside the target itself (-N). A disk changes in blocks of
 * 4 KiB or more, and what is between two changes is found from any of its 512-byte steps, then
 * extended backwards; what is new in a disk is seldom a copy of what is near it. Measured on
 * 1 GiB of random data with 1% of its 4 KiB blocks rewritten, with -B 16 MiB: -N with 8 MiB
 * windows took 1.6 to 2.0 s of xdelta3's CPU against 2.2 to 2.5 s with 1 MiB windows and
 * matching inside them, for a delta 0.2% smaller (fewer window headers). Decoding needs none of
 * these: plain `xdelta3 -d -s BASE`.
 */
const XDELTA3_MATCHING = ['-W', 8 * MiB, '-N', '-C', '32,512,4,4,1,18,35'];

/**
 * No secondary compression (-S none, where the old tool gave djw): measured on 512 MiB of a
 * tar of /usr with 1% of its 4 KiB blocks rewritten, djw made the delta 7% smaller (3.09
 * against 3.33 MB) for 60% more of xdelta3's CPU time (1.45 s against 0.91 s), and an increment
 * is taken while the node runs its VMs. Decoding reads whichever a delta says it used.
 */
const XDELTA3_SECONDARY = ['-S', 'none'];

/**
 * The copy-on-write room of the snapshot: what the VM may write while its disk is read. A tenth
 * of the disk, at least 256 MiB, at most the disk itself (a snapshot as large as its origin never fills).
 */
export function snapshotBytes(lvBytes: number, extentBytes: number): number {
  const wanted = Math.min(lvBytes, Math.max(256 * MiB, Math.ceil(lvBytes / 10)));
  return Math.ceil(wanted / extentBytes) * extentBytes;
}

/** The node and device a backup reads; throws with the reason and the fix when none fits. */
export function backupSource(state: ClusterState, config: Pick<Config, 'ignorePrefix' | 'storage'>, request: Pick<BackupRequest, 'vm' | 'node'>): BackupSource {
  const vm = managedVm(state, request.vm, config);
  if (vm.runningOn.length > 1) {
    throw new PmcError('PMC_E_STATE', `${vm.name} runs on ${vm.runningOn.join(' and ')} at once`, 'pmc cluster verify says how to resolve it; no backup meanwhile');
  }
  const runningOn = vm.runningOn[0];
  if (vm.shared) return sharedSource(state, vm, vm.shared.file, request.node);
  const withDisk = vm.replicas.filter((r) => r.resource || r.lv);
  const paired = withDisk.some((r) => r.resource);
  let replica: VmReplica | undefined;
  if (request.node !== undefined) {
    replica = withDisk.find((r) => r.node === request.node);
    if (!replica) {
      throw new PmcError('PMC_E_USAGE', `${vm.name} has no disk on ${request.node}`, `its disk is on ${withDisk.map((r) => r.node).join(' and ') || 'no node that answered'}; pass one of them with -p`);
    }
  } else if (!paired) {
    replica = withDisk[0];
  } else {
    // The standby: the node that does not run it (a shut-off VM: its peer, so the next start is not slowed either).
    const standbyNode = runningOn ?? vm.home;
    replica = withDisk.find((r) => r.node !== standbyNode && r.resource) ?? withDisk.find((r) => r.resource);
  }
  if (!replica) throw new PmcError('PMC_E_STATE', `${vm.name} has no disk on any node that answered`, `pmc vm info ${vm.name} shows what is known`);
  if (!replica.reachable) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${replica.node} could not be asked, so ${vm.name}'s disk cannot be read there`,
      `bring ${replica.node} back, or read the other copy with -p`);
  }
  const node = replica.node;
  const res = replica.resource;
  if (!res) {
    if (paired) throw new PmcError('PMC_E_STATE', `${vm.name} has no DRBD resource on ${node}`, `pmc vm info ${vm.name}; pass its other node with -p`);
    if (!replica.lv) throw new PmcError('PMC_E_STATE', `${vm.name} has no disk on ${node}`, `pmc vm info ${vm.name}`);
    return { kind: 'lv', vm, node, lv: replica.lv.path, lvBytes: replica.lv.sizeBytes, dataBytes: replica.lv.sizeBytes, drbdDevice: undefined, runningOn };
  }
  if (!res.up || res.sizeBytes === undefined || !res.disk || !res.device) {
    throw new PmcError('PMC_E_STATE', `the DRBD resource of ${vm.name} is not up on ${node}, so the size of its data is unknown`,
      `bring it up (pmc pm drbd-up ${node}), then back it up`);
  }
  if (!healthy(res)) {
    const peer = res.peers[0];
    throw new PmcError('PMC_E_STATE',
      `${vm.name} on ${node} is ${peer?.connection ?? 'not connected'} ${res.diskState ?? '?'}/${peer?.diskState ?? '?'}, not Connected UpToDate/UpToDate: its copy there may not be current`,
      `wait for the resync (pmc vm ls), or pmc cluster verify says what to fix`);
  }
  const lv = replica.lv;
  if (!lv || lv.path !== res.disk) {
    throw new PmcError('PMC_E_STATE', `${vm.name}'s DRBD disk ${res.disk} on ${node} is not an LV of ${config.storage.volumeGroup}`, 'pmc backs up LVM-backed disks only');
  }
  return { kind: 'lv', vm, node, lv: lv.path, lvBytes: lv.sizeBytes, dataBytes: res.sizeBytes, drbdDevice: res.device, runningOn };
}

/** The backup overlay beside a shared VM's file (backupOverlayFile). */
export function overlayFile(file: string, vm: string): string {
  return backupOverlayFile(file.slice(0, file.lastIndexOf('/')), vm);
}

/**
 * A shared VM is read where it runs (the overlay must be taken by the QEMU that writes the file);
 * shut off, on the first node that defines it, or any node with -p, once every node has said it
 * does not run it there.
 */
function sharedSource(state: ClusterState, vm: Vm, file: string, requested: string | undefined): SharedSource {
  const runningOn = vm.runningOn[0];
  const overlay = overlayFile(file, vm.name);
  const stuck = vm.replicas.find((r) => r.domain?.disks.some((d) => d.source === overlay));
  if (stuck) {
    const target = stuck.domain!.disks.find((d) => d.source === overlay)!.target;
    throw new PmcError('PMC_E_STATE', `${vm.name}'s disk on ${stuck.node} is still the backup overlay ${overlay}: merging it back into ${file} failed`,
      `${runningOn ? '' : `start ${vm.name} (it runs on the overlay, which holds its newest writes), then `}${mergeRepair(stuck.node, vm.uuid ?? vm.name, target, overlay)}`);
  }
  if (runningOn !== undefined) {
    if (requested !== undefined && requested !== runningOn) {
      throw new PmcError('PMC_E_USAGE', `${vm.name} runs on ${runningOn}: a running shared VM is backed up where it runs (its disk's point in time is taken by its QEMU there)`,
        `pmc vm backup ${vm.name} without -p, or stop it first`);
    }
    const domain = vm.replicas.find((r) => r.node === runningOn)!.domain!;
    const disk = domain.disks.find((d) => d.source === file);
    if (!disk) {
      throw new PmcError('PMC_E_STATE', `the domain ${vm.name} running on ${runningOn} does not use ${file}`, `pmc vm info ${vm.name} shows its disks`);
    }
    return { kind: 'shared', vm, node: runningOn, runningOn, file, disk: { target: disk.target, others: domain.disks.filter((d) => d !== disk).map((d) => d.target) } };
  }
  const down = state.nodes.filter((n) => !n.reachable).map((n) => n.name);
  if (down.length > 0) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${down.join(', ')} could not be asked: ${vm.name} might run there, and its file would be read under it`,
      'bring the node back first');
  }
  const node = requested ?? vm.replicas.find((r) => r.domain)?.node;
  if (node === undefined) throw new PmcError('PMC_E_STATE', `no node defines ${vm.name}`, `pmc vm info ${vm.name} shows what is known; pass a node with -p`);
  return { kind: 'shared', vm, node, runningOn, file, disk: undefined };
}

/** How an operator merges a backup overlay back that pmc could not (`on NODE: virsh blockcommit ...`). */
export function mergeRepair(node: string, domain: string, target: string, overlay: string): string {
  return `on ${node}: ${commandLine(['virsh', 'blockcommit', domain, target, '--active', '--pivot', '--wait'])} && ${commandLine(['rm', '-f', '--', overlay])}`;
}

/** Refuses, before anything changes, when the node lacks zstd for what `purpose` says. */
export function requireZstd(state: ClusterState, node: string, purpose: string, alternative: string | undefined): void {
  if (state.nodes.find((n) => n.name === node)?.facts?.tools.zstd) return;
  throw new PmcError('PMC_E_STATE', `${node} has no zstd, which ${purpose} needs`, `on ${node}: apt-get install zstd${alternative ? `; ${alternative}` : ''}`);
}

/** How the disk's point in time is taken before the capture step, and what the capture reads. */
interface PointInTime {
  steps: Step[];
  read: CaptureRead;
  source: BackupManifest['source'];
  /** Where and how it is read, for the plan's notes. */
  note: string;
  /** What is taken while the guest's file systems are frozen. */
  taken: string;
}

/** The plan of one backup. */
export function planBackup(state: ClusterState, config: Pick<Config, 'ignorePrefix' | 'storage' | 'backups'>, request: BackupRequest, facts: BackupFacts): Plan {
  const source = backupSource(state, config, request);
  const { vm, node } = source;
  const dataBytes = source.kind === 'lv' ? source.dataBytes : facts.sharedFileBytes;
  if (dataBytes === undefined) throw new Error(`the size of ${vm.name}'s disk file was not read before planning`);
  const frozen = facts.agent && source.runningOn !== undefined;
  const point = source.kind === 'lv' ? lvSnapshot(state, config, source, frozen) : sharedPoint(source, frozen, dataBytes);
  const base = request.kind === 'incremental' ? newestFull(facts.entries, vm.name, node) : undefined;
  if (request.kind === 'incremental' && !base) {
    throw new PmcError('PMC_E_STATE', `no full image of ${vm.name} on ${node} to compute an increment against`,
      `take one first: pmc vm backup -b ${request.node ? `-p ${node} ` : ''}${vm.name}`);
  }
  const zstdFor = request.compression === 'zstd' ? `compressing ${vm.name}'s full image`
    : base?.compression === 'zstd' ? `reading the compressed full image ${base.path}` : undefined;
  if (zstdFor) requireZstd(state, node, zstdFor, request.compression ? 'or back up without --zstd' : undefined);
  const dir = config.backups.directory;
  const file = backupFile(dir, vm.name, facts.stamp, request.kind, request.compression);
  if (facts.entries.some((e) => e.vm === vm.name && e.stamp === facts.stamp)) {
    throw new PmcError('PMC_E_STATE', `a backup of ${vm.name} of ${facts.stamp} exists on ${node} already`, 'wait a second and run it again');
  }
  const window = base ? SOURCE_WINDOW_BYTES : undefined;

  const manifest: Omit<BackupManifest, 'data' | 'file'> = {
    format: 'pmc-backup/1',
    vm: vm.name,
    node,
    stamp: facts.stamp,
    time: isoOfStamp(facts.stamp),
    type: request.kind,
    base: base?.stamp ?? null,
    consistency: frozen ? 'file-systems-frozen' : source.runningOn ? 'crash-consistent' : 'shut-off',
    source: point.source,
    vmShape: { memoryBytes: vm.memoryBytes ?? null, vcpus: vm.vcpus ?? null },
    xdelta3SourceWindow: window ?? null,
    compression: request.compression ?? null,
    pmcVersion: facts.pmcVersion,
  };

  const steps: Step[] = [...point.steps, {
    node,
    command: captureCommand({
      dir: backupDir(dir, vm.name),
      file,
      manifest: manifestFile(dir, vm.name, facts.stamp),
      read: point.read,
      dataBytes,
      base,
      window,
      compression: request.compression,
    }),
    input: { text: `${JSON.stringify({ ...manifest, data: { bytes: dataBytes, sha256: '@DATA_SHA256@' }, file: { name: file.split('/').pop(), bytes: '@FILE_BYTES@', sha256: '@FILE_SHA256@' } })}\n` },
    why: `${request.kind === 'full'
      ? `${request.compression ? 'compress' : 'copy'} ${formatBytes(dataBytes)} of ${vm.name}'s data from ${point.read.what} to ${file}${request.compression ? ' with zstd, check it decompresses to the data' : ''}, with its manifest`
      : `write the xdelta3 delta of ${vm.name}'s ${formatBytes(dataBytes)} against ${base!.path} to ${file}, with its manifest`}${point.read.release ? `; ${point.read.release.why}` : ''}`,
    progress: { totalBytes: dataBytes },
    timeoutMs: Math.max(30 * 60_000, Math.ceil(dataBytes / 2e6) * 1000 * (request.kind === 'full' ? 1 : 3)),
  }];

  const notes = [
    point.note,
    frozen ? `its file systems are frozen through the guest agent while ${point.taken} is taken`
      : source.runningOn ? `${vm.name} runs and no guest agent answered: the backup is crash-consistent (as after a power cut)`
        : `${vm.name} is shut off: the backup is consistent`,
  ];
  if (base) notes.push(`the increment is computed against ${base.path}${base.compression ? ', decompressed as it is read' : ''} (xdelta3 source window ${formatBytes(window!)})`);
  return { title: `${request.kind} backup of ${vm.name} on ${node}: ${file}`, steps, notes };
}

/** An LVM snapshot of the LV, taken on the node that reads it (with the guest frozen on the node that runs it, if it runs). */
function lvSnapshot(state: ClusterState, config: Pick<Config, 'storage'>, source: LvSource, frozen: boolean): PointInTime {
  const { vm, node } = source;
  const vgName = config.storage.volumeGroup;
  const vg = state.nodes.find((n) => n.name === node)!.facts!.vg;
  if (!vg) throw new PmcError('PMC_E_STATE', `${node} has no volume group ${vgName}`, 'pmc cluster verify');
  const snapBytes = snapshotBytes(source.lvBytes, vg.extentSizeBytes ?? 4 * MiB);
  if (snapBytes > vg.freeBytes) {
    throw new PmcError('PMC_E_CAPACITY', `${node}'s volume group ${vgName} has ${formatBytes(vg.freeBytes)} free, the snapshot of ${vm.name} needs ${formatBytes(snapBytes)}`,
      `free space in ${vgName} on ${node}, or back up on the other node with -p`);
  }
  const snapName = `${source.lv.split('/').pop()}${SNAPSHOT_SUFFIX}`;
  const snapshot = { vgLv: `${vgName}/${snapName}`, device: `/dev/${vgName}/${snapName}`, bytes: snapBytes };
  const remove = removeSnapshotCommand(snapshot.vgLv);
  const steps: Step[] = [];
  const domain = vm.uuid ?? vm.name;
  if (frozen) {
    steps.push({
      node: source.runningOn!,
      // A thaw in the background bounds the freeze even if pmc dies before its own thaw step.
      command: `${commandLine(['virsh', 'domfsfreeze', domain])} && { setsid sh -c ${quote(`sleep ${FREEZE_LIMIT_S}; ${commandLine(['virsh', 'domfsthaw', domain])}`)} >/dev/null 2>&1 < /dev/null & }`,
      why: `freeze ${vm.name}'s file systems through its guest agent (at most ${FREEZE_LIMIT_S} s)`,
      undo: { command: thawCommand(domain), why: `thaw ${vm.name}'s file systems` },
      timeoutMs: 60_000,
    });
  }
  steps.push({
    node,
    command: snapshotCommand(vm.name, source, snapshot),
    why: `check ${vm.name} is ${source.drbdDevice ? 'Connected UpToDate/UpToDate' : 'there'} on ${node}, then snapshot ${source.lv} (${formatBytes(snapBytes)} for changes meanwhile)`,
    undo: { command: remove, why: `remove the snapshot ${snapshot.device} on ${node}` },
    timeoutMs: 120_000,
  });
  if (frozen) {
    steps.push({ node: source.runningOn!, command: thawCommand(domain), why: `thaw ${vm.name}'s file systems`, timeoutMs: 60_000 });
  }
  return {
    steps,
    read: {
      path: snapshot.device,
      what: 'the snapshot',
      checks: [
        // A snapshot that ran out of room is invalid: its data is not the disk's any more.
        `attr=$(lvs --noheadings -o lv_attr ${quote(snapshot.vgLv)} | tr -d ' ') && pct=$(lvs --noheadings -o snap_percent ${quote(snapshot.vgLv)} | tr -d ' ') || fail 'the snapshot vanished while it was read'`,
        `case "$attr" in ????I*) fail 'the snapshot filled up while it was read (invalid): the image is not kept';; esac`,
        `case "$pct" in 100*) fail 'the snapshot filled up while it was read: the image is not kept';; esac`,
      ],
      release: { command: `${remove} >/dev/null 2>&1`, early: false, why: 'remove the snapshot' },
    },
    source: { lv: source.lv, drbdDevice: source.drbdDevice ?? null },
    note: `${vm.name}'s data is read from an LVM snapshot on ${node}${source.runningOn === node ? ', the node it runs on' : ''}; no DRBD role changes`,
    taken: 'the snapshot',
  };
}

/**
 * A shared VM's file. Running: libvirt's external disk-only snapshot makes its QEMU write into a
 * new qcow2 overlay, so the file holds still while it is read; then the overlay is merged back
 * (blockcommit, pivoting the VM onto its file again) and removed. Shut off: the file itself.
 */
function sharedPoint(source: SharedSource, frozen: boolean, dataBytes: number): PointInTime {
  const { vm, node, file } = source;
  // The file's size was read while planning: one that changed since would be read cut short.
  const checks = [`[ "$(stat -c %s ${quote(file)})" = ${dataBytes} ] || fail ${quote(`${file} changed size while it was read: no backup`)}`];
  const common = { source: { file }, taken: 'the overlay' };
  const domain = vm.uuid ?? vm.name;
  if (!source.disk) {
    return {
      ...common,
      steps: [{
        node,
        command: sharedShutOffCommand(domain, vm.name, file),
        why: `check ${vm.name} is shut off on ${node} and its file ${file} is there`,
      }],
      read: { path: file, what: file, checks, release: undefined },
      note: `${vm.name}'s file ${file} is read directly on ${node}`,
    };
  }
  const overlay = overlayFile(file, vm.name);
  const merge = mergeCommand(domain, vm.name, source.disk.target, file, overlay, node);
  return {
    ...common,
    steps: [{
      node,
      command: `${overlayCommand(domain, vm.name, source.disk, overlay, frozen, node)} || { ${merge}; exit 1; }`,
      why: `check ${vm.name} runs on ${node}, then have it write into the overlay ${overlay}${frozen ? ' (its file systems frozen through the guest agent meanwhile)' : ''} so that ${file} holds still`,
      undo: { command: merge, why: `merge ${overlay} back into ${file} and remove it` },
      timeoutMs: 120_000,
    }],
    read: { path: file, what: file, checks, release: { command: merge, early: true, why: `merge the overlay ${overlay} back and remove it` } },
    note: `${vm.name}'s file ${file} is read on ${node}, where it runs, while a libvirt overlay takes its writes; the overlay is merged back and removed after the read, also when the backup fails`,
  };
}

/** A shell condition: true when the domain's disk is the overlay now; exits the script when libvirt cannot be asked. */
function onOverlay(domain: string, overlay: string, unknown: string): string {
  // The overlay's path is compared as the end of a line of domblklist, spaces and all, from the environment (awk -v would read backslashes as escapes).
  return `{ blk=$(${commandLine(['virsh', 'domblklist', domain])}) || { echo ${quote(unknown)} >&2; exit 1; }; printf '%s\\n' "$blk" | o=${quote(overlay)} awk 'NR > 2 { sub(/[ \\t]+$/, ""); if (length($0) >= length(ENVIRON["o"]) && substr($0, length($0) - length(ENVIRON["o"]) + 1) == ENVIRON["o"]) f = 1 } END { exit !f }'; }`;
}

/**
 * Merges the overlay back when the domain runs on it, then removes it; an overlay it does not use
 * (a backup cut off before or after) is only removed. A failed merge leaves the overlay, which
 * holds the VM's newest writes, and says how to repair.
 */
function mergeCommand(domain: string, vm: string, target: string, file: string, overlay: string, node: string): string {
  const rm = commandLine(['rm', '-f', '--', overlay]);
  const stuck = `PMC: ${vm} still runs on the backup overlay ${overlay}: merging it back into ${file} failed. Repair ${mergeRepair(node, domain, target, overlay)}`;
  return `( if ${onOverlay(domain, overlay, `PMC: cannot ask libvirt for ${vm}'s disks: if it still runs on ${overlay}, repair ${mergeRepair(node, domain, target, overlay)}`)}; then `
    + `${commandLine(['virsh', 'blockcommit', domain, target, '--active', '--pivot', '--wait'])} >/dev/null && ${rm} || { echo ${quote(stuck)} >&2; exit 1; }; `
    + `else ${rm}; fi )`;
}

/** Checks, then takes the overlay; its last command is libvirt's, whose failure the caller cleans up after (it may leave the overlay's file). */
function overlayCommand(domain: string, vm: string, disk: { target: string; others: string[] }, overlay: string, frozen: boolean, node: string): string {
  // libvirt splits --diskspec at commas; a comma within the file name is written twice.
  const spec = (target: string, rest: string) => ['--diskspec', `${target},${rest}`];
  return [
    `st=$(${commandLine(['virsh', 'domstate', domain])}) || exit 1`,
    `[ "$st" = running ] || { echo "${vm} is $st here, not running: no overlay is taken" >&2; exit 1; }`,
    `if ${onOverlay(domain, overlay, `cannot ask libvirt for ${vm}'s disks`)}; then echo ${quote(`${vm} runs on ${overlay} already, left by a backup whose merge failed: repair ${mergeRepair(node, domain, disk.target, overlay)}`)} >&2; exit 1; fi`,
    // Not in use (just checked): the leftover of a backup cut off before its overlay was taken; libvirt will not write over it.
    commandLine(['rm', '-f', '--', overlay]),
    commandLine(['virsh', 'snapshot-create-as', domain, '--name', 'pmc-backup', '--disk-only', '--atomic', '--no-metadata', ...(frozen ? ['--quiesce'] : []),
      ...spec(disk.target, `snapshot=external,file=${overlay.replace(/,/g, ',,')}`), ...disk.others.flatMap((t) => spec(t, 'snapshot=no'))]),
  ].join('\n');
}

function sharedShutOffCommand(domain: string, vm: string, file: string): string {
  return [
    // Where it is defined, libvirt says whether it runs here (every node said so while planning; this is the last word).
    `if st=$(${commandLine(['virsh', 'domstate', domain])} 2>/dev/null); then [ "$st" = 'shut off' ] || { echo "${vm} is $st here: its file is not read under it" >&2; exit 1; }; fi`,
    `[ -f ${quote(file)} ] || { echo ${quote(`${file} is not here: is the shared file system mounted?`)} >&2; exit 1; }`,
  ].join('\n');
}

const FREEZE_LIMIT_S = 30;

function thawCommand(domain: string): string {
  return commandLine(['virsh', 'domfsthaw', domain]);
}

function removeSnapshotCommand(vgLv: string): string {
  return `if lvs ${quote(vgLv)} >/dev/null 2>&1; then ${commandLine(['lvremove', '-q', '-f', vgLv])}; fi`;
}

function snapshotCommand(vm: string, source: LvSource, snapshot: { vgLv: string; bytes: number }): string {
  const checks: string[] = [];
  if (source.drbdDevice) {
    // The plan was made from a probe a moment ago: the state is checked again right where it matters.
    const r = quote(vm);
    checks.push(
      `cs=$(drbdadm cstate ${r}) && ds=$(drbdadm dstate ${r}) || exit 1`,
      `if [ "$cs" != Connected ] || [ "$ds" != UpToDate/UpToDate ]; then echo "${vm} is $cs $ds here, not Connected UpToDate/UpToDate: no backup" >&2; exit 1; fi`,
    );
  }
  return [
    ...checks,
    // A snapshot of this name is a leftover of a backup that was cut off (its node lost): it is pmc's, and stale.
    removeSnapshotCommand(snapshot.vgLv),
    commandLine(['lvcreate', '-q', '-s', '-L', `${snapshot.bytes}b`, '-n', snapshot.vgLv.split('/')[1]!, source.lv.replace(/^\/dev\//, '')]),
  ].join(' && ');
}

/** What the capture script reads, and how the point in time it reads is checked and given back. */
interface CaptureRead {
  /** The device or file read. */
  path: string;
  /** The same, for the plan's words (`the snapshot`). */
  what: string;
  /** Shell lines run after the read that `fail` when what was read is not the point in time any more. */
  checks: string[];
  /**
   * Gives the point in time back (removes the snapshot, merges the overlay back); idempotent, it
   * runs on every exit of the script. `early`: also right after the read, and a failure of it
   * fails the backup (a VM should not write into an overlay longer than needed).
   */
  release: { command: string; early: boolean; why: string } | undefined;
}

interface CaptureSpec {
  dir: string;
  file: string;
  manifest: string;
  read: CaptureRead;
  dataBytes: number;
  /** For an increment: the full image it is computed against. */
  base: Pick<BackupEntry, 'path' | 'compression'> | undefined;
  window: number | undefined;
  /** A full image written compressed. */
  compression: Compression | undefined;
}

/**
 * The script that writes one backup on the node. Everything goes to `.tmp` names; only when the
 * data, its sha256 and the point in time's validity are checked are the manifest and then the file
 * renamed, so a cut-off run leaves nothing that looks complete. The point in time (a snapshot, an
 * overlay) is given back on every exit, also when pmc dies (the SSH session closes, the next
 * write gets SIGPIPE).
 */
function captureCommand(spec: CaptureSpec): string {
  const q = quote;
  const release = spec.read.release;
  const dd = ['dd', `if=${spec.read.path}`, 'bs=16M', 'iflag=count_bytes', `count=${spec.dataBytes}`];
  const read = commandLine([...dd, 'status=progress']);
  const failed = `reading ${spec.read.what} or writing the backup failed`;
  let capture: string[];
  if (spec.base || spec.compression) {
    // A plain full image is xdelta3's source file, read ahead in 16 MiB blocks by a dd beside it
    // into the page cache: xdelta3 alone reads it in small pieces, alternating with the disk, and
    // through a pipe every byte costs a copy in and out of the kernel. On 1 GiB with a cold page
    // cache, the increment took 3.2 to 4.8 s this way against 6.0 to 9.2 s with both through
    // pipes. Restore decodes against the same file. A compressed one reaches xdelta3 through zstd
    // on fd 3, a pipe (not a FIFO, so nothing waits forever for a reader when xdelta3 fails
    // before it opens it): xdelta3 then reads its source forward only, which is all restore's
    // decoder, reading it from zstd as well, can give it with the same window (-B).
    const base = spec.base;
    const source = base?.compression ? '/dev/fd/3' : base?.path;
    const write = base
      ? `${commandLine(['xdelta3', '-e', ...XDELTA3_SECONDARY, '-B', spec.window!, ...XDELTA3_MATCHING, '-c', '-s', source!])} > "$tmp"`
      : `${commandLine(['zstd', '-q', '-T0', '-3', '-c'])} > "$tmp"`;
    // sh has no pipefail: each side of a pipe notes its own failure.
    const pipeline = `{ ${read} || touch "$work/failed"; } | { ${write} || touch "$work/failed"; }`;
    const baseReadRc = (reader: string) => `{ ${reader}; echo $? > "$work/base.rc"; }`;
    const baseFeed = base && (base.compression === 'zstd'
      ? `${baseReadRc(commandLine(['zstd', '-q', '-dc', '--', base.path]))} | { ${pipeline}; } 3<&0`
      : `${baseReadRc(commandLine(['dd', `if=${base.path}`, 'bs=16M', 'of=/dev/null', 'status=none']))} & ${pipeline}`);
    capture = [
      // The data's sha256 is taken by a second reader of the snapshot beside the encoder's: they
      // read the same blocks, one of them from the page cache while they are near each other
      // (the faster may get further ahead on a disk larger than the memory free for it, which is
      // then read twice), which costs less CPU than passing every byte through tee and a FIFO.
      `{ { ${commandLine([...dd, 'status=none'])} || touch "$work/failed"; } | ${sha256Command()} > "$work/data.sum"; } &`,
      baseFeed || pipeline,
      'wait',
      `[ ! -e "$work/failed" ] || fail '${failed}'`,
      // 141: xdelta3 stopped reading a compressed full image before its end (SIGPIPE), which it may.
      ...(base ? [`case "$(cat "$work/base.rc")" in 0|141) ;; *) fail ${q(`the full image ${base.path} ${base.compression ? 'does not decompress' : 'cannot be read'}: no increment against it`)};; esac`] : []),
      'dsum=$(cat "$work/data.sum")',
    ];
  } else {
    // The image is the data: dd copies it as a plain dd would, and its sha256 (the data's and the
    // file's) is read back while the file is flushed to disk, from the page cache (from the disk
    // for the part of an image larger than the memory free for it), instead of passing every
    // byte through two more pipes.
    capture = [
      `${read} of="$tmp" || fail '${failed}'`,
      'sync "$tmp" & flushing=$!',
      `dsum=$(${sha256Command('"$tmp"')})`,
      `wait "$flushing" || fail 'cannot flush the backup to disk'`,
    ];
  }
  return [
    'set -u',
    `tmp=${q(`${spec.file}.tmp`)}; mtmp=${q(`${spec.manifest}.tmp`)}; work=$(mktemp -d) || exit 1`,
    ...(release ? [`release() { ${release.command}; }`, 'released='] : []),
    `cleanup() { trap '' PIPE; rm -f "$tmp" "$mtmp"; rm -rf "$work"; ${release ? '[ -n "$released" ] || release; ' : ''}}`,
    `trap cleanup EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
    'fail() { echo "$1" >&2; exit 1; }',
    `cat > "$work/manifest"`,
    `mkdir -p ${q(spec.dir)} || fail 'cannot create the backup directory'`,
    // The old tool's lock: exclusive while a full image is written, shared for increments.
    `exec 9>>${q(`${spec.dir}/.lock`)} && flock ${spec.base ? '-s' : '-x'} -w 600 9 || fail 'another backup holds ${spec.dir}/.lock'`,
    `[ ! -e ${q(spec.file)} ] || fail ${q(`${spec.file} exists already`)}`,
    ...capture,
    ...spec.read.checks,
    // Released once: its own failure message is enough, the exit trap does not try again.
    ...(release?.early ? ['released=1', `release || fail ${q(`${release.why}: failed, the backup is not kept`)}`] : []),
    `[ \${#dsum} = 64 ] || fail 'no sha256 of the data'`,
    ...(spec.base ? [
      `fsum=$(${sha256Command('"$tmp"')})`,
    ] : spec.compression ? [
      // The compressed file must give back exactly the data read (the same sha256, so the same
      // bytes): a full disk or a killed zstd leaves a short or broken frame, which is not kept.
      `csum=$({ ${commandLine(['zstd', '-q', '-dc'])} < "$tmp" || touch "$work/failed"; } | ${sha256Command()})`,
      `[ ! -e "$work/failed" ] && [ "$csum" = "$dsum" ] || fail 'the compressed image does not decompress to the data read (disk full?): it is not kept'`,
      `fsum=$(${sha256Command('"$tmp"')})`,
    ] : [
      `[ "$(stat -c %s "$tmp")" = ${spec.dataBytes} ] || fail 'the image is shorter than the data (disk full?)'`,
      'fsum=$dsum',
    ]),
    'fbytes=$(stat -c %s "$tmp")',
    `sed -e "s/@DATA_SHA256@/$dsum/" -e "s/\\"@FILE_BYTES@\\"/$fbytes/" -e "s/@FILE_SHA256@/$fsum/" "$work/manifest" > "$mtmp" || fail 'cannot write the manifest'`,
    `sync "$tmp" "$mtmp" || fail 'cannot flush the backup to disk'`,
    // The manifest first: a run cut off between the two renames leaves a manifest without data, which is not listed.
    `mv -f "$mtmp" ${q(spec.manifest)} && mv -f "$tmp" ${q(spec.file)} || fail 'cannot rename the backup into place'`,
    `sync ${q(spec.dir)}`,
    `echo "PMC-BACKUP $(cat ${q(spec.manifest)})"`,
  ].join('\n');
}
