import type { Report } from '../../ops/engine/context.js';
import { PmcError } from '../../util/errors.js';
import { listOptions, defineCommand, dryRunOption } from '../command.js';
import type { ApplyResult } from '../../ops/engine/execute.js';
import type { ConsoleData } from '../../ops/vm/console.js';
import type { listVms, showVm } from '../../ops/vm/list.js';
import { parseVmAddArgs } from '../../ops/vm/add-args.js';
import { DEFAULT_STOP_TIMEOUT_S } from '../../ops/vm/defaults.js';
import { VM_COLUMNS } from '../../render/views/vms.js';
import { assertVmReference, parseSeconds } from '../../util/validate.js';

/** The view of every command that runs a plan. */
const applyView = async () => (await import('../../render/views/plan.js')).applyView;

const vmArgument = { type: 'string', demandOption: true, describe: 'the VM' } as const;
const checkVm = (args: { vm: string }) => { assertVmReference(args.vm); };
import type { MoveReport } from '../../ops/vm/mv.js';
import { DEFAULT_MIGRATE_TIMEOUT_S } from '../../ops/vm/defaults.js';
import type { BackupRun } from '../../ops/backup/backup.js';
import type { RestoreData } from '../../ops/backup/restore.js';

const ls = defineCommand<{ vms: string[] }, Awaited<ReturnType<typeof listVms>>['data']>({
  command: 'ls [vms..]',
  aliases: ['list'],
  describe: 'list the VMs: where they run, their peer, state, size, DRBD minor/port, replication, flags',
  builder: (y) => listOptions(y)
    .positional('vms', { type: 'string', array: true, default: [], describe: 'VMs to show (default: all)' })
    .epilogue(`Fields for -o: ${VM_COLUMNS.map((c) => c.field).join(', ')}\nFlags: degraded, syncing, split-brain, running-twice, two-primaries, node-down, ignored`),
  examples: [
    ['pmc vm ls', 'every VM on every node'],
    ['pmc vm ls web-1 db-1', 'just these'],
    ['pmc vm ls -o name,node,repl --no-headers', 'chosen fields, for scripts'],
  ],
  check: (args) => { args.vms.forEach(assertVmReference); },
  run: async (ctx, args) => (await import('../../ops/vm/list.js')).listVms(ctx, args.vms),
  view: async () => (await import('../../render/views/vms.js')).vmsView,
});

const info = defineCommand<{ vm: string }, Awaited<ReturnType<typeof showVm>>['data']>({
  command: 'info <vm>',
  aliases: ['show'],
  describe: 'everything known about one VM, node by node',
  builder: (y) => y.positional('vm', vmArgument),
  examples: [['pmc vm info test-vm', 'domain, DRBD and LV on each of its nodes']],
  check: checkVm,
  run: async (ctx, args) => (await import('../../ops/vm/list.js')).showVm(ctx, args.vm),
  view: async () => (await import('../../render/views/vms.js')).vmDetailsView,
});

const rm = defineCommand<{ vm: string; force: boolean; dryRun: boolean }, ApplyResult>({
  command: 'rm <vm>',
  aliases: ['remove'],
  describe: 'remove a VM from every node: domain, DRBD resource, disk (LV) and resource file',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'do not ask to type the name (a running VM is powered off first)' })
    .epilogue('Nodes that cannot be reached keep their part; the output says what, and pmc cluster verify lists it. ISO images are kept.'),
  examples: [
    ['pmc vm rm web-1', 'asks you to type "web-1" first'],
    ['pmc vm rm --dry-run web-1', 'every command it would run, on which node'],
    ['pmc vm rm -f web-1', 'no question (for scripts)'],
  ],
  check: checkVm,
  run: async (ctx, args) => (await import('../../ops/vm/rm.js')).removeVm(ctx, args.vm, args),
  view: applyView,
});

const start = defineCommand<{ vm: string; node?: string; dryRun: boolean }, ApplyResult>({
  command: 'start <vm>',
  describe: 'start a VM on its DRBD primary (else its preferred node), promoting DRBD first',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('node', { alias: 'p', type: 'string', requiresArg: true, describe: 'start it on this node (one of its pair)' })
    .epilogue('Refused when it already runs anywhere, when the chosen disk is not UpToDate, when DRBD is not connected, and in split brain.'),
  examples: [
    ['pmc vm start web-1', 'on the node that holds its current data'],
    ['pmc vm start -p pm-2 web-1', 'on pm-2 (its peer), if pm-2\'s disk is UpToDate'],
  ],
  nodes: (args) => [args.node],
  check: checkVm,
  run: async (ctx, args) => (await import('../../ops/vm/power.js')).startVm(ctx, args.vm, args),
  view: applyView,
});

const stop = defineCommand<{ vm: string; timeout: number; force: boolean; dryRun: boolean }, ApplyResult>({
  command: 'stop <vm>',
  aliases: ['shutdown'],
  describe: 'shut a VM down (ACPI), wait until it is off, then demote its DRBD resource to Secondary',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('timeout', {
      alias: 't', type: 'string', requiresArg: true, default: String(DEFAULT_STOP_TIMEOUT_S),
      describe: 'seconds to wait for the guest to shut down (1 to 86400)',
    })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'power it off instead (as pmc vm destroy)' }),
  examples: [
    ['pmc vm stop web-1', `waits up to ${DEFAULT_STOP_TIMEOUT_S} s, then fails saying so`],
    ['pmc vm stop --force web-1', 'pull the power'],
  ],
  check: (args) => { checkVm(args); return { timeout: parseSeconds(args.timeout, '--timeout') }; },
  run: async (ctx, args) => (await import('../../ops/vm/power.js')).stopVm(ctx, args.vm, { timeoutSeconds: args.timeout, force: args.force, dryRun: args.dryRun }),
  view: applyView,
});

const destroy = defineCommand<{ vm: string; force: boolean; dryRun: boolean }, ApplyResult>({
  command: 'destroy <vm>',
  aliases: ['poweroff'],
  describe: 'power a VM off at once (no shutdown), then demote its DRBD resource to Secondary',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'do not ask to type the name' }),
  examples: [['pmc vm destroy -f web-1', 'power off without asking']],
  check: checkVm,
  run: async (ctx, args) => (await import('../../ops/vm/power.js')).destroyVm(ctx, args.vm, args),
  view: applyView,
});

const reboot = defineCommand<{ vm: string; hard: boolean; force: boolean; dryRun: boolean }, ApplyResult>({
  command: 'reboot <vm>',
  describe: 'ask a running VM to reboot where it runs, or reset it with --hard',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('hard', { type: 'boolean', default: false, describe: 'reset it at once (the reset button), for a guest that ignores the request' })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'with --hard: do not ask to type the name' }),
  examples: [
    ['pmc vm reboot web-1', 'virsh reboot on the node that runs it: the guest decides'],
    ['pmc vm reboot --hard -f web-1', 'virsh reset: it restarts at once, without a shutdown'],
  ],
  check: checkVm,
  run: async (ctx, args) => (await import('../../ops/vm/power.js')).rebootVm(ctx, args.vm, args),
  view: applyView,
});

const consoleCommand = defineCommand<{ vm: string; dryRun: boolean }, ConsoleData>({
  command: 'console <vm>',
  describe: 'attach to a running VM\'s serial console over SSH; shows how to reach its graphical console',
  builder: (y) => dryRunOption(y).positional('vm', vmArgument)
    .epilogue('Without a terminal, or with --dry-run, it prints the ssh command instead of running it.'),
  examples: [['pmc vm console web-1', 'leave with Ctrl+]']],
  check: checkVm,
  run: async (ctx, args) => (await import('../../ops/vm/console.js')).openConsole(ctx, args.vm, args),
  view: async () => (await import('../../render/views/console.js')).consoleView,
});

const add = defineCommand<{ vm: string; pm?: string | string[]; size: string; memory: string; cpus: string; iso?: string; ip?: string; mac?: string; clone?: string; from?: string; image?: string; start: boolean; force: boolean; shared: boolean; dryRun: boolean }, ApplyResult>({
  command: 'add <vm>',
  aliases: ['create'],
  describe: 'create a VM: an LV on each of its nodes, DRBD between them, the libvirt domain on both; then start it',
  builder: (y) => dryRunOption(y)
    .positional('vm', { type: 'string', demandOption: true, describe: 'its name: a-z, 0-9 and "-" (also the LV, DRBD resource and domain name)' })
    .option('pm', { alias: 'p', type: 'string', requiresArg: true, describe: 'a node for it, once or twice; the first is the primary (default: pmc chooses two)' })
    .option('size', { alias: 's', type: 'string', requiresArg: true, demandOption: true, describe: 'disk size: GiB, or with a unit (512M, 20G)' })
    .option('memory', { alias: 'm', type: 'string', requiresArg: true, demandOption: true, describe: 'memory: GiB, or with a unit (256M)' })
    .option('cpus', { alias: 'c', type: 'string', requiresArg: true, default: '1', describe: 'vCPUs (1 to 1024)' })
    .option('iso', { alias: 'i', type: 'string', requiresArg: true, describe: 'attach <name>.iso from the ISO store as a CD-ROM (copied to both nodes)' })
    .option('ip', { alias: 'a', type: 'string', requiresArg: true, describe: 'the VM\'s IP address (gives the MAC when network.macFromIp is on)' })
    .option('mac', { type: 'string', requiresArg: true, describe: 'its MAC address (default: network.macPrefix and three random bytes)' })
    .option('clone', { type: 'string', requiresArg: true, describe: 'copy the disk of this VM (only crash-consistent if it runs)' })
    .option('from', { type: 'string', requiresArg: true, describe: 'with --clone: read the source disk on this node (default: its primary)' })
    .option('image', { type: 'string', requiresArg: true, describe: 'write this raw or qcow2 disk image of the image store onto the disk, and boot from it' })
    .option('start', { type: 'boolean', default: true, describe: 'start it once created (--no-start: only define it)' })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'create it even when memory, disk space or CPUs look short' })
    .option('shared', { type: 'boolean', default: false, describe: 'keep the disk as a raw file on storage.shared (pmc.yaml) and define the VM on every node; one -p at most' })
    .epilogue('A one-node VM (a single -p, or a one-node cluster) has no DRBD: its LV is its disk, and it cannot migrate.\nA shared-storage VM (--shared) runs on any node, never on two: it starts only when every node answers and none runs it.\nAny failure undoes, on every node, what the run had created, and says what it undid.'),
  examples: [
    ['pmc vm add -p pm-1 -p pm-2 -s 20 -m 2 web-1', '20 GiB disk, 2 GiB memory, on pm-1 with pm-2 as standby'],
    ['pmc vm add -s 10 -m 512M -i debian-12 db-1', 'pmc picks the nodes; boots the Debian installer from the ISO store'],
    ['pmc vm add -s 20 -m 2 --clone web-1 web-2', 'a copy of web-1\'s disk'],
    ['pmc vm add -s 10 -m 1 --image debian-12.qcow2 web-3', 'boots from a copy of that image (imageStore in pmc.yaml)'],
    ['pmc vm add --shared -s 10 -m 1 --image debian-12.qcow2 web-4', 'its disk a file on the shared file system; it can run on any node'],
    ['pmc vm add --dry-run -s 1 -m 256M test-1', 'every command it would run, on which node'],
  ],
  check: (args) => { parseVmAddArgs(vmAddArgs(args)); },
  nodes: (args) => [...vmAddArgs(args).pm ?? [], args.from],
  run: async (ctx, args) => (await import('../../ops/vm/add.js')).addVm(ctx, vmAddArgs(args)),
  view: applyView,
});

/** `--yes-node-is-down PM`, shared with pm failover. */
export const nodeIsDownOption = {
  type: 'string', describe: 'confirm without typing that this node is powered off (for scripts; a fence command in pmc.yaml replaces it)',
} as const;

export const FAILOVER_EPILOGUE = 'Refused while the node answers SSH (use pmc vm mv), and when the survivor\'s disk may lack the dead node\'s last writes '
  + '(not UpToDate, StandAlone, or disconnected on purpose before). Proof the node is down: its fence command (nodes[].fence in pmc.yaml) '
  + 'exiting 0, else typing its name (or --yes-node-is-down). The survivor records that its copy is the current one until pmc pm rejoin.';

const failover = defineCommand<{ vm: string; yesNodeIsDown?: string; dryRun: boolean }, ApplyResult>({
  command: 'failover <vm>',
  describe: 'the node that ran a VM is dead: start the VM on its DRBD peer from the peer\'s disk',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('yes-node-is-down', nodeIsDownOption)
    .epilogue(FAILOVER_EPILOGUE),
  examples: [
    ['pmc vm failover web-1', 'asks you to type the dead node\'s name (or fences it with its fence command)'],
    ['pmc vm failover --dry-run web-1', 'the checks and the commands, nothing changes'],
    ['pmc vm failover --yes-node-is-down pm-1 web-1', 'for scripts: you state that pm-1 is off'],
  ],
  check: checkVm,
  nodes: (args) => [args.yesNodeIsDown],
  run: async (ctx, args) => (await import('../../ops/vm/failover.js')).failoverVm(ctx, args.vm, { dryRun: args.dryRun, yesNodeIsDown: args.yesNodeIsDown }),
  view: applyView,
});

const peerRecreateCommand = defineCommand<{ first: string; second?: string; dryRun: boolean }, ApplyResult>({
  command: 'peer-recreate <first> [second]',
  describe: 'replace a VM\'s standby copy while it runs: pmc vm peer-recreate [NEWPM] VM (without NEWPM: rebuild it on the same node)',
  builder: (y) => dryRunOption(y)
    .positional('first', { type: 'string', demandOption: true, describe: 'NEWPM, or the VM when no node is given' })
    .positional('second', { type: 'string', describe: 'the VM, when NEWPM is given' })
    .epilogue('The new copy is resynced in full from the primary; only when it is UpToDate are the old secondary\'s domain, LV and resource file removed. A failure before that puts the old secondary back.'),
  examples: [
    ['pmc vm peer-recreate pm-3 web-1', 'web-1\'s standby copy moves to pm-3'],
    ['pmc vm peer-recreate web-1', 'rebuild the standby copy on the same node (its disk was replaced)'],
    ['pmc vm peer-recreate --dry-run pm-3 web-1', 'every command, nothing changes'],
  ],
  check: (args) => { assertVmReference(args.second ?? args.first); },
  nodes: (args) => [args.second === undefined ? undefined : args.first],
  run: async (ctx, args) => (await import('../../ops/vm/peer-recreate.js')).peerRecreate(ctx, args.second ?? args.first, args.second === undefined ? undefined : args.first, { dryRun: args.dryRun }),
  view: applyView,
});


/** `-p` given once is a string, twice an array. */
function vmAddArgs<T extends { pm?: string | string[] }>(args: T): T & { pm?: string[] } {
  return { ...args, pm: args.pm === undefined ? undefined : [args.pm].flat() };
}

/** `vm mv` prints the migrations' outcomes, `vm mv --cleanup` the cleanup plan's result. */
type MoveData = ({ kind: 'move' } & MoveReport) | { kind: 'cleanup'; result: ApplyResult };

const mv = defineCommand<{ vms: string[]; pm?: string; to?: string; cleanup: boolean; parallel: number; keepGoing: boolean; timeout: number; dryRun: boolean }, MoveData>({
  command: 'mv [vms..]',
  aliases: ['migrate'],
  describe: 'live-migrate running VMs to their DRBD peer; --cleanup repairs after an interrupted migration',
  builder: (y) => dryRunOption(y)
    .positional('vms', { type: 'string', array: true, default: [], describe: 'the VMs to migrate' })
    .option('pm', { alias: 'p', type: 'string', describe: 'migrate every VM running on this node' })
    .option('to', { type: 'string', requiresArg: true, describe: 'the node to migrate to: any node for a shared-storage VM (default: the most free memory); a DRBD VM\'s peer only' })
    .option('cleanup', { type: 'boolean', default: false, describe: 'after an interrupted migration: make the node that runs the VM its only Primary, resume it if paused, two primaries off' })
    .option('parallel', { type: 'number', default: 1, describe: 'how many migrations run at once' })
    .option('keep-going', { type: 'boolean', default: false, describe: 'go on with the next VMs after a failure (and after a refused check)' })
    .option('timeout', { alias: 't', type: 'number', default: DEFAULT_MIGRATE_TIMEOUT_S, describe: 'seconds after which a migration is aborted (virsh domjobabort)' })
    .epilogue('Checked on both nodes before anything changes: runs on exactly one node; Connected and UpToDate/UpToDate; same UUID, disks, NICs and CPU model;\n'
      + 'memory for every VM defined on the target; its bridges; attached ISOs with the same sha256. Two primaries are allowed only while it migrates.\n'
      + 'If anything fails, pmc reads where the VM runs, makes that node its only Primary and turns two primaries off again.\n'
      + 'A shared-storage VM (vm add --shared) migrates to any node, without DRBD: defined there first if it is not, then checked to run there only.'),
  examples: [
    ['pmc vm mv web-1', 'to its DRBD peer, with progress'],
    ['pmc vm mv -p pm-1', 'every VM running on pm-1, one after another'],
    ['pmc vm mv --parallel 2 --keep-going a b c', 'two at a time, past failures'],
    ['pmc vm mv web-4 --to pm-3', 'a shared-storage VM, to pm-3'],
    ['pmc vm mv --dry-run web-1', 'the checks run, then every command it would run'],
    ['pmc vm mv --cleanup web-1', 'after a migration was interrupted'],
  ],
  check: (args) => { for (const vm of args.vms) assertVmReference(vm); },
  nodes: (args) => [args.pm, args.to],
  run: async (ctx, args): Promise<Report<MoveData>> => {
    const { cleanupVm, moveVms } = await import('../../ops/vm/mv.js');
    if (args.cleanup) {
      if (args.vms.length !== 1 || args.pm !== undefined) {
        throw new PmcError('PMC_E_USAGE', '--cleanup takes exactly one VM and no -p', 'pmc vm mv --cleanup web-1');
      }
      const report = await cleanupVm(ctx, args.vms[0]!, args);
      return { ...report, data: { kind: 'cleanup', result: report.data } };
    }
    const report = await moveVms(ctx, { vms: args.vms, pm: args.pm, to: args.to, parallel: args.parallel, keepGoing: args.keepGoing, timeoutSeconds: args.timeout, dryRun: args.dryRun });
    return { ...report, data: { kind: 'move', ...report.data } };
  },
  view: async () => {
    const [{ applyView: apply }, { moveView }] = await Promise.all([import('../../render/views/plan.js'), import('../../render/views/migrate.js')]);
    return (data: MoveData, opts) => (data.kind === 'cleanup' ? apply(data.result, opts) : moveView(data, opts));
  },
});

const backup = defineCommand<{ vms: string[]; base: boolean; zstd: boolean; pm?: string; dryRun: boolean }, BackupRun[]>({
  command: 'backup <vms..>',
  describe: 'back up VM disks: a full image (-b) or an xdelta3 increment against the newest full image, read from an LVM snapshot on the standby node',
  builder: (y) => dryRunOption(y)
    .positional('vms', { type: 'string', array: true, demandOption: true, describe: 'the VMs, backed up one after the other' })
    .option('base', { alias: 'b', type: 'boolean', default: false, describe: 'a full image (default: an increment against the newest full image on that node)' })
    .option('zstd', { type: 'boolean', default: false, describe: 'with -b: compress the full image with zstd (.base.zst; the node needs zstd)' })
    .option('pm', { alias: 'p', type: 'string', describe: 'read the disk on this node (default: the standby; a one-node VM\'s own node)' })
    .epilogue('Files: <backups.directory>/<vm>/<YYYY-MM-DD-HH-MM-SS>.base (.base.zst with --zstd) or .xdelta3 (UTC), with a .json manifest beside each.\nNo DRBD role changes: the disk is read from an LVM snapshot while DRBD is Connected UpToDate/UpToDate.\nA failed or interrupted backup leaves no complete-looking file and no snapshot.'),
  examples: [
    ['pmc vm backup -b web-1', 'a full image, on the node that stands by for web-1'],
    ['pmc vm backup web-1 db-1', 'an increment of each, against its newest full image'],
    ['pmc vm backup -b --zstd web-1', 'a full image compressed with zstd (.base.zst)'],
    ['pmc vm backup -b -p pm-2 --dry-run web-1', 'every command it would run on pm-2'],
  ],
  check: (args) => { for (const vm of args.vms) assertVmReference(vm); },
  nodes: (args) => [args.pm],
  run: async (ctx, args) => (await import('../../ops/backup/backup.js')).backupVms(ctx, args),
  view: async () => (await import('../../render/views/backups.js')).backupRunsView,
});

const restore = defineCommand<{ vm: string; at: string; to?: string; pm?: string; memory?: string; cpus?: number; force: boolean; dryRun: boolean }, RestoreData>({
  command: 'restore <vm>',
  describe: 'rebuild a VM\'s disk from a backup (full image, or full image + increment), onto its own disk or into a new VM',
  builder: (y) => dryRunOption(y)
    .positional('vm', vmArgument)
    .option('at', { type: 'string', demandOption: true, describe: 'the backup\'s time (as pmc backup ls shows it), or the newest at or before a time: 2026-12-02T08:30, 2026-12-02, latest' })
    .option('to', { type: 'string', describe: 'restore into a new VM of this name (created as vm add does, not started) instead of VM\'s own disk' })
    .option('pm', { alias: 'p', type: 'string', describe: 'use the backups on this node (default: any node that has the chosen time)' })
    .option('memory', { alias: 'm', type: 'string', describe: 'with --to: memory of the new VM (default: as the backup recorded)' })
    .option('cpus', { alias: 'c', type: 'number', describe: 'with --to: vCPUs of the new VM (default: as the backup recorded)' })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'do not ask to type the name before overwriting VM\'s own disk; with --to, create the new VM even when memory or disk space look short' })
    .epilogue('Onto its own disk, the VM must be off: the data is written through DRBD on its primary, so both copies get it.\nAfterwards the disk is read back and its sha256 compared with the manifest (old-tool backups: xdelta3\'s checksums).'),
  examples: [
    ['pmc vm restore web-1 --at 2026-12-02-03-00-00 --to web-1-old', 'a new VM web-1-old with that day\'s disk, beside web-1'],
    ['pmc vm restore web-1 --at latest', 'overwrite web-1\'s disk with its newest backup (asks you to type "web-1")'],
    ['pmc vm restore web-1 --at 2026-12-01 --dry-run', 'which backup, and every command, on which node'],
  ],
  check: (args) => { assertVmReference(args.vm); if (args.to !== undefined) assertVmReference(args.to); },
  nodes: (args) => [args.pm],
  run: async (ctx, args) => (await import('../../ops/backup/restore.js')).restoreVm(ctx, args),
  view: async () => (await import('../../render/views/backups.js')).restoreView,
});

export const vmCommands = [ls, info, add, start, stop, reboot, destroy, rm, mv, consoleCommand, failover, peerRecreateCommand, backup, restore];
