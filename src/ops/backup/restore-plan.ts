/**
 * `pmc vm restore`, the pure part: which backup, where its bytes are written, and the steps.
 *
 * The disk is rebuilt on the node that holds the backup (the full image, or the full image and
 * an increment decoded by xdelta3) and streamed into the target: VM's own disk through its
 * Primary's DRBD device (so the peer gets every write, protocol C), or the disk of a new VM that
 * `vm add`'s plan creates; a compressed full image (`.base.zst`) is decompressed as it is read.
 * Then the written data is read back and its sha256 compared with the manifest's; the old
 * tool's backups have no manifest, so xdelta3's own checksums must pass.
 */
import type { Config } from '../../config/load.js';
import type { ClusterState, NodeState, Vm } from '../../model/cluster.js';
import { healthy } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { Plan, Step } from '../engine/plan.js';
import { managedVm } from '../vm/lifecycle.js';
import { drbdadmCommand } from '../vm/lifecycle.js';
import { checkVmAdd, planVmAdd, type VmAddFacts, type VmAddRequest } from '../vm/add-plan.js';
import { sha256Command, type Chain } from './catalog.js';
import { requireZstd } from './backup-plan.js';

/**
 * The source window of pmc's first increments (64 MiB; now SOURCE_WINDOW_BYTES, recorded in each
 * manifest), for an increment whose manifest cannot be read: a decoder given a larger window than
 * the encoder's only holds more of the source in memory.
 */
const LARGEST_SOURCE_WINDOW_BYTES = 64 * 1024 ** 2;

/** What the restore writes: the rebuilt disk's size and, when a manifest says it, its sha256. */
export interface RestoreSource {
  chain: Chain;
  node: string;
  dataBytes: number;
  expectedSha256: string | undefined;
}

export function restoreSource(chain: Chain): RestoreSource {
  const m = chain.target.manifest;
  // The old tool's .base is a dd of the whole DRBD device: its size is the data's. A compressed one's is not.
  const dataBytes = m?.data.bytes ?? chain.full.manifest?.data.bytes ?? (chain.full.compression ? undefined : chain.full.bytes);
  if (dataBytes === undefined) {
    throw new PmcError('PMC_E_STATE', `${chain.target.node}:${chain.full.path} has no readable manifest, so the size of its data is unknown`,
      `pmc backup ls ${chain.target.vm} says what is wrong with it; restore another time`);
  }
  return { chain, node: chain.target.node, dataBytes, expectedSha256: m?.data.sha256 };
}

/** The command that prints the rebuilt disk on stdout, on the node holding the backup. */
export function decodeCommand(chain: Chain): string {
  const { full, increment } = chain;
  const decompress = commandLine(['zstd', '-q', '-dc', '--', full.path]);
  if (!increment) return full.compression ? decompress : commandLine(['cat', '--', full.path]);
  if (!full.compression) return commandLine(['xdelta3', '-d', '-c', '-s', full.path, increment.path]);
  // A piped source is read forward only: with the encoder's window (-B) every copy it refers to is
  // still in xdelta3's buffer. The exit status is xdelta3's: a broken full image fails its window
  // checksums, and the sha256 of what was decoded is compared afterwards anyway.
  const window = increment.manifest?.xdelta3SourceWindow ?? LARGEST_SOURCE_WINDOW_BYTES;
  return `${decompress} | ${commandLine(['xdelta3', '-d', '-B', window, '-c', '-s', '/dev/stdin', increment.path])}`;
}

/** Long copies get time in proportion to their size, at a pessimistic 2 MB/s, and at least 30 minutes. */
function copyTimeoutMs(bytes: number): number {
  return Math.max(30 * 60_000, Math.ceil(bytes / 2e6) * 1000);
}

/**
 * Writes the rebuilt disk into `device` on `target` (pulling it over node-to-node SSH when the
 * backup is elsewhere), then reads back its first dataBytes and compares the sha256.
 */
export function writeStep(state: ClusterState, target: string, device: string, source: RestoreSource): Step {
  if (source.chain.full.compression === 'zstd') requireZstd(state, source.node, `reading the compressed full image ${source.chain.full.path}`, undefined);
  const decode = decodeCommand(source.chain);
  const produce = source.node === target ? decode
    : commandLine(['ssh', '-o', 'BatchMode=yes', '--', hostOf(state, source.node), decode]);
  const readBack = commandLine(['dd', `if=${device}`, 'bs=16M', 'iflag=count_bytes,direct', `count=${source.dataBytes}`, 'status=none']);
  const compare = source.expectedSha256
    ? `[ "$sum" = ${source.expectedSha256} ] || { echo "read back, the disk's sha256 is $sum, the backup's manifest says ${source.expectedSha256}" >&2; exit 1; }`
    : 'true';
  const command = [
    `work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT || exit 1`,
    // sh has no pipefail: the producing side notes its failure (xdelta3's checksums, a lost node).
    `{ { ${produce}; } 2>"$work/err" || touch "$work/failed"; } | ${commandLine(['dd', `of=${device}`, 'bs=16M', 'iflag=fullblock', 'oflag=direct', 'conv=fsync', 'status=progress'])} || exit 1`,
    `if [ -e "$work/failed" ]; then echo "rebuilding the disk from the backup failed: $(tail -n 3 "$work/err")" >&2; exit 1; fi`,
    `sum=$(${readBack} | ${sha256Command()}) || exit 1`,
    compare,
    'echo "PMC-RESTORED $sum"',
  ].join('\n');
  const what = source.chain.increment ? `${source.chain.full.path} + ${source.chain.increment.path}` : source.chain.full.path;
  return {
    node: target,
    command,
    why: `write ${formatBytes(source.dataBytes)} rebuilt from ${source.node}:${what} into ${device} on ${target}, read it back and compare its sha256${source.expectedSha256 ? ' with the manifest' : ''}`,
    progress: { totalBytes: source.dataBytes },
    timeoutMs: copyTimeoutMs(source.dataBytes),
  };
}

function hostOf(state: ClusterState, node: string): string {
  return state.nodes.find((n: NodeState) => n.name === node)!.host;
}

function verifiedBy(source: RestoreSource): string {
  if (source.expectedSha256) return 'the disk is read back and its sha256 compared with the manifest\'s';
  return source.chain.increment
    ? 'an old-tool backup without manifest: xdelta3\'s own checksums must pass while decoding'
    : 'an old-tool full image without manifest: there is no checksum to compare with (pmc backup verify cannot check it either)';
}

/** Restoring onto VM's own disk: the VM must be off everywhere and its DRBD pair Connected and UpToDate. */
export function planRestoreInPlace(state: ClusterState, config: Pick<Config, 'ignorePrefix'>, vmName: string, source: RestoreSource): Plan {
  const vm = managedVm(state, vmName, config);
  if (vm.shared) return planRestoreShared(state, vm, vm.shared.file, source);
  const down = vm.replicas.filter((r) => !r.reachable).map((r) => r.node);
  if (down.length > 0) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${down.join(', ')} could not be asked: ${vm.name} might run there, and its copy would miss the restore`,
      'bring the node back first');
  }
  if (vm.runningOn.length > 0) {
    throw new PmcError('PMC_E_STATE', `${vm.name} runs on ${vm.runningOn.join(', ')}: its disk cannot be restored under it`,
      `stop it first (pmc vm stop ${vm.name}), or restore into a new VM with --to NEWVM`);
  }
  const withDrbd = vm.replicas.filter((r) => r.resource);
  const steps: Step[] = [];
  let target: string;
  let device: string;
  let capacity: number;
  let promoted = false;
  if (withDrbd.length === 0) {
    const replica = vm.replicas.find((r) => r.lv);
    if (!replica) throw new PmcError('PMC_E_STATE', `${vm.name} has no disk on any node`, `restore into a new VM with --to NEWVM`);
    target = replica.node;
    device = replica.lv!.path;
    capacity = replica.lv!.sizeBytes;
  } else {
    const primary = withDrbd.find((r) => r.resource!.role === 'Primary');
    const chosen = primary ?? withDrbd.find((r) => r.node === source.node) ?? withDrbd.find((r) => r.node === vm.home) ?? withDrbd[0]!;
    const res = chosen.resource!;
    if (!res.up || !res.device || res.sizeBytes === undefined || !healthy(res)) {
      throw new PmcError('PMC_E_STATE', `${vm.name}'s DRBD resource on ${chosen.node} is not Connected UpToDate/UpToDate: its peer would not get the restored data`,
        'pmc cluster verify says what to fix first');
    }
    target = chosen.node;
    device = res.device;
    capacity = res.sizeBytes;
    if (!primary) {
      promoted = true;
      steps.push({
        node: target,
        command: drbdadmCommand('primary', vm.name),
        why: `make ${target} Primary for ${vm.name}, so the restore is written through DRBD to both copies`,
        undo: { command: drbdadmCommand('secondary', vm.name), why: `make ${target} Secondary for ${vm.name} again` },
      });
    }
  }
  if (source.dataBytes > capacity) {
    throw new PmcError('PMC_E_SIZE_INVALID', `the backup holds ${formatBytes(source.dataBytes)}, more than ${vm.name}'s disk (${formatBytes(capacity)})`,
      'restore into a new VM with --to NEWVM (it gets a disk of the backup\'s size)');
  }
  steps.push(writeStep(state, target, device, source));
  if (promoted) steps.push({ node: target, command: drbdadmCommand('secondary', vm.name), why: `make ${target} Secondary for ${vm.name} again, as it was` });
  return {
    title: `restore ${vm.name}'s disk from its ${source.chain.target.kind} backup ${source.chain.target.stamp} (${source.node})`,
    steps,
    notes: [
      `${vm.name}'s current data is overwritten on ${withDrbd.length > 0 ? 'both nodes (through DRBD)' : target}`,
      verifiedBy(source),
    ],
  };
}

/** The restore's new file beside a shared VM's disk, renamed over it once read back. */
const RESTORE_SUFFIX = '.pmc-restore.tmp';

/**
 * Restoring onto a shared VM's own file, which any node may start it from: every node must say
 * it does not run it. The disk is written as a new file beside it on the node holding the
 * backup, read back, given the old file's owner and mode, then renamed over it: a restore cut
 * off at any point leaves the VM's disk as it was (a rename is atomic on the file system),
 * never half written, at the cost of room for a second copy while it runs. Writing into the
 * file in place would need no room but leave a half-old, half-restored disk when cut off.
 */
function planRestoreShared(state: ClusterState, vm: Vm, file: string, source: RestoreSource): Plan {
  const down = state.nodes.filter((n) => !n.reachable).map((n) => n.name);
  if (down.length > 0) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${down.join(', ')} could not be asked: ${vm.name} might run there, on the file the restore replaces`,
      'bring the node back first');
  }
  if (vm.runningOn.length > 0) {
    throw new PmcError('PMC_E_STATE', `${vm.name} runs on ${vm.runningOn.join(', ')}: its disk cannot be restored under it`,
      `stop it first (pmc vm stop ${vm.name})`);
  }
  const node = source.node;
  const tmp = `${file}${RESTORE_SUFFIX}`;
  const removeTmp = commandLine(['rm', '-f', '--', tmp]);
  const domain = vm.uuid ?? vm.name;
  return {
    title: `restore ${vm.name}'s disk ${file} from its ${source.chain.target.kind} backup ${source.chain.target.stamp} (${node})`,
    steps: [
      {
        node,
        command: [
          // Where it is defined, libvirt says again whether it runs here; the other nodes said so while planning, under the lock.
          `if st=$(${commandLine(['virsh', 'domstate', domain])} 2>/dev/null); then [ "$st" = 'shut off' ] || { echo "${vm.name} is $st here: its disk is not restored under it" >&2; exit 1; }; fi`,
          `[ -f ${quote(file)} ] || { echo ${quote(`${file} is not here: is the shared file system mounted?`)} >&2; exit 1; }`,
          // A leftover of a restore that was cut off: never renamed, so never the VM's disk.
          removeTmp,
        ].join('\n'),
        why: `check ${vm.name} is shut off on ${node} and its file ${file} is there`,
        // Taken back when the write fails or is interrupted: the partial new file goes.
        undo: { command: removeTmp, why: `remove the partly written ${tmp}` },
      },
      writeStep(state, node, tmp, source),
      {
        node,
        command: [
          commandLine(['chown', `--reference=${file}`, '--', tmp]),
          commandLine(['chmod', `--reference=${file}`, '--', tmp]),
          commandLine(['mv', '-f', '--', tmp, file]),
          commandLine(['sync', '--', file.slice(0, file.lastIndexOf('/') + 1)]),
        ].join(' && '),
        why: `give the restored disk ${file}'s owner and mode and rename it over ${file}`,
      },
    ],
    notes: [
      `${vm.name}'s disk ${file} is replaced on the shared file system by a file that holds exactly the backup's data, written beside it first (room for a second copy is needed meanwhile)`,
      verifiedBy(source),
    ],
  };
}

/** Restoring into a new VM: vm add's plan (not started), then the write into its primary's disk. */
export function planRestoreToNewVm(state: ClusterState, config: Config, request: VmAddRequest, facts: VmAddFacts, source: RestoreSource): Plan {
  if (request.start) throw new Error('a restored VM is created without starting it');
  const target = checkVmAdd(state, config, request);
  const add = planVmAdd(state, config, request, facts);
  const defineStep = add.steps.findIndex((s) => s.command.includes('virsh define'));
  const first = target.nodes[0]!;
  const device = target.drbd ? `/dev/drbd${target.drbd.minor}` : `/dev/${config.storage.volumeGroup}/${request.name}`;
  const steps = [...add.steps];
  // The disk is written before the domain is defined: a VM that exists is a VM whose disk is complete.
  steps.splice(defineStep, 0, writeStep(state, first, device, source));
  return {
    title: `restore ${source.chain.target.vm}'s ${source.chain.target.kind} backup ${source.chain.target.stamp} (${source.node}) into a new VM: ${add.title.replace(/^add /, '')}`,
    steps,
    notes: [...add.notes.filter((n) => !n.startsWith('both disks start UpToDate')), `${request.name} is created but not started`, verifiedBy(source)],
  };
}

/** The request `vm add` gets for a restore into a new VM: a disk that holds the backup's data, the recorded shape. */
export function newVmRequest(name: string, sizeBytes: number, memoryBytes: number, vcpus: number, force: boolean): VmAddRequest {
  return {
    name, nodes: [], sizeBytes, memoryBytes, vcpus, iso: undefined, image: undefined, ip: undefined, mac: undefined, clone: undefined, start: false, force, shared: false,
  };
}
