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
 */
import type { Config } from '../../config/load.js';
import type { ClusterState, Vm, VmReplica } from '../../model/cluster.js';
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
  pmcVersion: string;
}

/** Where the disk is read. */
export interface BackupSource {
  vm: Vm;
  node: string;
  /** The LV the snapshot is taken of (`/dev/vg-pmc/web-1`). */
  lv: string;
  lvBytes: number;
  /** Bytes of VM data at the start of the LV. */
  dataBytes: number;
  drbdDevice: string | undefined;
  /** Where the VM runs, if it does (where a freeze would happen). */
  runningOn: string | undefined;
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
 * How xdelta3 looks for matches, beside -B: in target windows of 1 MiB (-W; the table of a
 * window's own strings is cleared for each, so a small one stays in the CPU's cache), with the
 * source indexed every 512 bytes on 32-byte checksums (-C, xdelta3's soft configuration:
 * large_look, large_step, then the small-match settings of its default level) instead of every 8
 * bytes on 9. A disk changes in blocks of 4 KiB or more, and what is between two changes is found
 * from any of its 512-byte steps, then extended backwards. Measured on 1 GiB of random data with
 * 1% of its 4 KiB blocks rewritten, with -B 16 MiB: half the CPU time of xdelta3's defaults, a
 * delta 0.3% larger (one more window header per MiB). Decoding needs none of these: plain
 * `xdelta3 -d -s BASE`.
 */
const XDELTA3_MATCHING = ['-W', MiB, '-C', '32,512,4,4,1,18,35'];

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
  if (vm.shared) {
    throw new PmcError('PMC_E_STATE', `${vm.name} is a shared-storage VM: pmc vm backup reads an LVM snapshot of a DRBD disk, and its disk is the file ${vm.shared.file}`,
      `back the file up with the shared file system's own snapshots, or copy it while ${vm.name} is shut off`);
  }
  if (vm.runningOn.length > 1) {
    throw new PmcError('PMC_E_STATE', `${vm.name} runs on ${vm.runningOn.join(' and ')} at once`, 'pmc cluster verify says how to resolve it; no backup meanwhile');
  }
  const runningOn = vm.runningOn[0];
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
    return { vm, node, lv: replica.lv.path, lvBytes: replica.lv.sizeBytes, dataBytes: replica.lv.sizeBytes, drbdDevice: undefined, runningOn };
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
  return { vm, node, lv: lv.path, lvBytes: lv.sizeBytes, dataBytes: res.sizeBytes, drbdDevice: res.device, runningOn };
}

/** Refuses, before anything changes, when the node lacks zstd for what `purpose` says. */
export function requireZstd(state: ClusterState, node: string, purpose: string, alternative: string | undefined): void {
  if (state.nodes.find((n) => n.name === node)?.facts?.tools.zstd) return;
  throw new PmcError('PMC_E_STATE', `${node} has no zstd, which ${purpose} needs`, `on ${node}: apt-get install zstd${alternative ? `; ${alternative}` : ''}`);
}

/** The plan of one backup. */
export function planBackup(state: ClusterState, config: Pick<Config, 'ignorePrefix' | 'storage' | 'backups'>, request: BackupRequest, facts: BackupFacts): Plan {
  const source = backupSource(state, config, request);
  const { vm, node } = source;
  const vgName = config.storage.volumeGroup;
  const vg = state.nodes.find((n) => n.name === node)!.facts!.vg;
  if (!vg) throw new PmcError('PMC_E_STATE', `${node} has no volume group ${vgName}`, 'pmc cluster verify');
  const snapBytes = snapshotBytes(source.lvBytes, vg.extentSizeBytes ?? 4 * MiB);
  if (snapBytes > vg.freeBytes) {
    throw new PmcError('PMC_E_CAPACITY', `${node}'s volume group ${vgName} has ${formatBytes(vg.freeBytes)} free, the snapshot of ${vm.name} needs ${formatBytes(snapBytes)}`,
      `free space in ${vgName} on ${node}, or back up on the other node with -p`);
  }
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
  const snapName = `${source.lv.split('/').pop()}${SNAPSHOT_SUFFIX}`;
  const snapshot = { vgLv: `${vgName}/${snapName}`, device: `/dev/${vgName}/${snapName}`, bytes: snapBytes };
  const frozen = facts.agent && source.runningOn !== undefined;
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
    source: { lv: source.lv, drbdDevice: source.drbdDevice ?? null },
    vmShape: { memoryBytes: vm.memoryBytes ?? null, vcpus: vm.vcpus ?? null },
    xdelta3SourceWindow: window ?? null,
    compression: request.compression ?? null,
    pmcVersion: facts.pmcVersion,
  };

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
    undo: { command: removeSnapshotCommand(snapshot.vgLv), why: `remove the snapshot ${snapshot.device} on ${node}` },
    timeoutMs: 120_000,
  });
  if (frozen) {
    steps.push({ node: source.runningOn!, command: thawCommand(domain), why: `thaw ${vm.name}'s file systems`, timeoutMs: 60_000 });
  }
  steps.push({
    node,
    command: captureCommand({
      dir: backupDir(dir, vm.name),
      file,
      manifest: manifestFile(dir, vm.name, facts.stamp),
      snapshot,
      dataBytes: source.dataBytes,
      base,
      window,
      compression: request.compression,
    }),
    input: { text: `${JSON.stringify({ ...manifest, data: { bytes: source.dataBytes, sha256: '@DATA_SHA256@' }, file: { name: file.split('/').pop(), bytes: '@FILE_BYTES@', sha256: '@FILE_SHA256@' } })}\n` },
    why: request.kind === 'full'
      ? `${request.compression ? 'compress' : 'copy'} ${formatBytes(source.dataBytes)} of ${vm.name}'s data from the snapshot to ${file}${request.compression ? ' with zstd, check it decompresses to the data' : ''}, with its manifest; remove the snapshot`
      : `write the xdelta3 delta of ${vm.name}'s ${formatBytes(source.dataBytes)} against ${base!.path} to ${file}, with its manifest; remove the snapshot`,
    progress: { totalBytes: source.dataBytes },
    timeoutMs: Math.max(30 * 60_000, Math.ceil(source.dataBytes / 2e6) * 1000 * (request.kind === 'full' ? 1 : 3)),
  });

  const notes = [
    `${vm.name}'s data is read from an LVM snapshot on ${node}${source.runningOn === node ? ', the node it runs on' : ''}; no DRBD role changes`,
    frozen ? `its file systems are frozen through the guest agent while the snapshot is taken`
      : source.runningOn ? `${vm.name} runs and no guest agent answered: the backup is crash-consistent (as after a power cut)`
        : `${vm.name} is shut off: the backup is consistent`,
  ];
  if (base) notes.push(`the increment is computed against ${base.path}${base.compression ? ', decompressed as it is read' : ''} (xdelta3 source window ${formatBytes(window!)})`);
  return { title: `${request.kind} backup of ${vm.name} on ${node}: ${file}`, steps, notes };
}

const FREEZE_LIMIT_S = 30;

function thawCommand(domain: string): string {
  return commandLine(['virsh', 'domfsthaw', domain]);
}

function removeSnapshotCommand(vgLv: string): string {
  return `if lvs ${quote(vgLv)} >/dev/null 2>&1; then ${commandLine(['lvremove', '-q', '-f', vgLv])}; fi`;
}

function snapshotCommand(vm: string, source: BackupSource, snapshot: { vgLv: string; bytes: number }): string {
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

interface CaptureSpec {
  dir: string;
  file: string;
  manifest: string;
  snapshot: { vgLv: string; device: string };
  dataBytes: number;
  /** For an increment: the full image it is computed against. */
  base: Pick<BackupEntry, 'path' | 'compression'> | undefined;
  window: number | undefined;
  /** A full image written compressed. */
  compression: Compression | undefined;
}

/**
 * The script that writes one backup on the node. Everything goes to `.tmp` names; only when the
 * data, its sha256 and the snapshot's validity are checked are the manifest and then the file
 * renamed, so a cut-off run leaves nothing that looks complete. The snapshot goes on every exit,
 * also when pmc dies (the SSH session closes, the next write gets SIGPIPE).
 */
export function captureCommand(spec: CaptureSpec): string {
  const q = quote;
  const dd = ['dd', `if=${spec.snapshot.device}`, 'bs=16M', 'iflag=count_bytes', `count=${spec.dataBytes}`];
  const read = commandLine([...dd, 'status=progress']);
  const failed = 'reading the snapshot or writing the backup failed';
  let capture: string[];
  if (spec.base || spec.compression) {
    // The full image reaches xdelta3 on fd 3, read forward in 16 MiB blocks by dd (decompressed by
    // zstd when it was written compressed): xdelta3 given the file reads it in small pieces,
    // alternating with the disk, which on a cold page cache took 12.3 s against 7.9 s for the same
    // 1 GiB increment. A pipe, not a FIFO, so nothing waits forever for a reader when xdelta3
    // fails before it opens its source. xdelta3 reads such a source forward only, which is all it
    // needs with the same window (-B) when decoding.
    const base = spec.base;
    const write = base
      ? `${commandLine(['xdelta3', '-e', ...XDELTA3_SECONDARY, '-B', spec.window!, ...XDELTA3_MATCHING, '-c', '-s', '/dev/fd/3'])} > "$tmp"`
      : `${commandLine(['zstd', '-q', '-T0', '-3', '-c'])} > "$tmp"`;
    // sh has no pipefail: each side of a pipe notes its own failure.
    const pipeline = `{ ${read} || touch "$work/failed"; } | { ${write} || touch "$work/failed"; }`;
    const baseReader = base && (base.compression === 'zstd'
      ? commandLine(['zstd', '-q', '-dc', '--', base.path])
      : commandLine(['dd', `if=${base.path}`, 'bs=16M', 'status=none']));
    capture = [
      // The data's sha256 is taken by a second reader of the snapshot beside the encoder's: they
      // read the same blocks, one of them from the page cache while they are near each other
      // (the faster may get further ahead on a disk larger than the memory free for it, which is
      // then read twice), which costs less CPU than passing every byte through tee and a FIFO.
      `{ { ${commandLine([...dd, 'status=none'])} || touch "$work/failed"; } | ${sha256Command()} > "$work/data.sum"; } &`,
      baseReader ? `{ ${baseReader}; echo $? > "$work/base.rc"; } | { ${pipeline}; } 3<&0` : pipeline,
      'wait',
      `[ ! -e "$work/failed" ] || fail '${failed}'`,
      // 141: xdelta3 stopped reading before the end of the full image (SIGPIPE), which it may.
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
    `cleanup() { trap '' PIPE; rm -f "$tmp" "$mtmp"; rm -rf "$work"; ${removeSnapshotCommand(spec.snapshot.vgLv)} >/dev/null 2>&1; }`,
    `trap cleanup EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
    'fail() { echo "$1" >&2; exit 1; }',
    `cat > "$work/manifest"`,
    `mkdir -p ${q(spec.dir)} || fail 'cannot create the backup directory'`,
    // The old tool's lock: exclusive while a full image is written, shared for increments.
    `exec 9>>${q(`${spec.dir}/.lock`)} && flock ${spec.base ? '-s' : '-x'} -w 600 9 || fail 'another backup holds ${spec.dir}/.lock'`,
    `[ ! -e ${q(spec.file)} ] || fail ${q(`${spec.file} exists already`)}`,
    ...capture,
    // A snapshot that ran out of room is invalid: its data is not the disk's any more.
    `attr=$(lvs --noheadings -o lv_attr ${q(spec.snapshot.vgLv)} | tr -d ' ') && pct=$(lvs --noheadings -o snap_percent ${q(spec.snapshot.vgLv)} | tr -d ' ') || fail 'the snapshot vanished while it was read'`,
    `case "$attr" in ????I*) fail 'the snapshot filled up while it was read (invalid): the image is not kept';; esac`,
    `case "$pct" in 100*) fail 'the snapshot filled up while it was read: the image is not kept';; esac`,
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
