import { dryRunOption, listOptions, defineCommand } from '../command.js';
import type { listNodes } from '../../ops/pm/list.js';
import type { DrbdUpResult } from '../../ops/pm/drbd-up.js';
import type { InitResult } from '../../ops/pm/init.js';
import { PM_COLUMNS } from '../../render/views/nodes.js';
import { assertVmReference } from '../../util/validate.js';
import type { ApplyResult } from '../../ops/engine/execute.js';
import { FAILOVER_EPILOGUE, nodeIsDownOption } from './vm.js';
import type { EvacuateReport } from '../../ops/pm/evacuate.js';
import { MAX_PARALLEL, parseEvacuateArgs } from '../../ops/pm/evacuate-args.js';
import { DEFAULT_MIGRATE_TIMEOUT_S } from '../../ops/vm/defaults.js';

/** The view of the commands that run a plan. */
const applyView = async () => (await import('../../render/views/plan.js')).applyView;

const ls = defineCommand<{ nodes: string[] }, Awaited<ReturnType<typeof listNodes>>['data']>({
  command: 'ls [nodes..]',
  aliases: ['list'],
  describe: 'list the nodes: reachable or why not, VMs and their memory, memory, VG, DRBD disks',
  builder: (y) => listOptions(y)
    .positional('nodes', { type: 'string', array: true, default: [], describe: 'nodes to show (default: all)' })
    .epilogue(`Fields for -o: ${PM_COLUMNS.map((c) => c.field).join(', ')}`),
  examples: [
    ['pmc pm ls', 'every node of pmc.yaml'],
    ['pmc pm ls -o name,memfree,vgfree --no-headers', 'chosen fields, for scripts'],
    ['pmc pm ls --json', 'everything, as JSON'],
  ],
  nodes: (args) => args.nodes,
  run: async (ctx, args) => (await import('../../ops/pm/list.js')).listNodes(ctx, args.nodes),
  view: async () => (await import('../../render/views/nodes.js')).nodesView,
});

const init = defineCommand<{ nodes: string[]; all: boolean; fix: boolean; dryRun: boolean }, InitResult>({
  command: 'init [nodes..]',
  describe: 'check that nodes are ready for VMs (PASS/FAIL with the fix each) and make them trust each other over SSH; --fix applies the safe fixes',
  builder: (y) => dryRunOption(y)
    .positional('nodes', { type: 'string', array: true, default: [], describe: 'nodes to check (default: all)' })
    .option('all', { type: 'boolean', default: false, describe: 'every node (the default without node names)' })
    .option('fix', { type: 'boolean', default: false, describe: 'apply the safe fixes (backup directory, modprobe drbd, start libvirtd, root SSH key and node-to-node trust), then check again' })
    .epilogue('Without --fix nothing changes. Volume groups, bridges and packages are never created by pmc: their checks print the command to run.\nExit code 1 while any check fails.'),
  examples: [
    ['pmc pm init pm-3', 'check pm-3, and SSH trust between pm-3 and every other node'],
    ['pmc pm init --fix --dry-run', 'show what --fix would run on which node'],
    ['pmc pm init --fix', 'fix what is safe to fix on every node, then check again'],
  ],
  nodes: (args) => args.nodes,
  run: async (ctx, args) => (await import('../../ops/pm/init.js')).pmInit(ctx, { nodes: args.all ? [] : args.nodes, fix: args.fix, dryRun: args.dryRun }),
  view: async () => (await import('../../render/views/pm-init.js')).initView,
});

const drbdUp = defineCommand<{ nodes: string[]; all: boolean; only: string[]; dryRun: boolean }, DrbdUpResult>({
  command: 'drbd-up [nodes..]',
  aliases: ['ready-drbd'],
  describe: 'after a node boots: activate the VG, load drbd, bring up every DRBD resource that is not up, and show their state',
  builder: (y) => dryRunOption(y)
    .positional('nodes', { type: 'string', array: true, default: [], describe: 'nodes (default: all)' })
    .option('all', { type: 'boolean', default: false, describe: 'every node (the default without node names)' })
    .option('only', { type: 'string', array: true, default: [], describe: 'only these resources' }),
  examples: [
    ['pmc pm drbd-up pm-2', 'bring DRBD up on pm-2 after it booted'],
    ['pmc pm drbd-up pm-2 --dry-run', 'show the commands, change nothing'],
  ],
  check: (args) => { args.only.forEach(assertVmReference); },
  nodes: (args) => args.nodes,
  run: async (ctx, args) => (await import('../../ops/pm/drbd-up.js')).pmDrbdUp(ctx, { nodes: args.all ? [] : args.nodes, resources: args.only, dryRun: args.dryRun }),
  view: async () => (await import('../../render/views/drbd-up.js')).drbdUpView,
});

const nodeArgument = { type: 'string', demandOption: true, describe: 'the node' } as const;

const evacuate = defineCommand<{ node: string; secondaries: boolean; to?: string; parallel: string; timeout: string; dryRun: boolean }, EvacuateReport>({
  command: 'evacuate <node>',
  describe: 'empty a node before switching it off: its VMs live-migrate to their peers, it is demoted for its shut-off ones; --secondaries also moves its standby copies',
  builder: (y) => dryRunOption(y)
    .positional('node', nodeArgument)
    .option('secondaries', { type: 'boolean', default: false, describe: 'also move every standby copy the node holds to another node (resynced in full), so every VM stays mirrored' })
    .option('to', { type: 'string', requiresArg: true, describe: 'with --secondaries: the node the copies go to (default: placed by free memory, then disk)' })
    .option('parallel', { type: 'string', requiresArg: true, default: '1', describe: `how many migrations (and copy moves) run at once (1 to ${MAX_PARALLEL})` })
    .option('timeout', { alias: 't', type: 'string', requiresArg: true, default: String(DEFAULT_MIGRATE_TIMEOUT_S), describe: 'seconds after which a migration is aborted (virsh domjobabort)' })
    .epilogue('Every VM is checked first, as pmc vm mv and pmc vm peer-recreate check it; any VM that cannot move refuses the whole command.\n'
      + 'Order: migrations, then demotions, then the standby copies (each resynced in full before the node\'s copy goes).\n'
      + 'The first failure stops the run; the output says what moved and what did not, and running it again moves the rest.'),
  examples: [
    ['pmc pm evacuate --dry-run pm-1 --secondaries', 'what would move where, and every command'],
    ['pmc pm evacuate pm-1', 'its VMs migrate to their peers; pm-1 keeps standby copies'],
    ['pmc pm evacuate pm-1 --secondaries --to pm-3', 'and every copy pm-1 holds moves to pm-3: pm-1 can be switched off, every VM mirrored'],
  ],
  check: (args) => { parseEvacuateArgs(args); },
  nodes: (args) => [args.node, args.to],
  run: async (ctx, args) => (await import('../../ops/pm/evacuate.js')).evacuateNode(ctx, parseEvacuateArgs(args)),
  view: async () => (await import('../../render/views/evacuate.js')).evacuateView,
});

const failover = defineCommand<{ node: string; yesNodeIsDown?: string; dryRun: boolean }, ApplyResult>({
  command: 'failover <node>',
  describe: 'a node is dead: start every VM that ran on it on its DRBD peer',
  builder: (y) => dryRunOption(y)
    .positional('node', nodeArgument)
    .option('yes-node-is-down', nodeIsDownOption)
    .epilogue(`${FAILOVER_EPILOGUE}\nThe VMs taken are those whose peer's kernel log says the node was their DRBD Primary when the link was lost; the others are listed with the reason.`),
  examples: [
    ['pmc pm failover pm-1', 'asks you to type "pm-1" (or runs its fence command), then starts its VMs on their peers'],
    ['pmc pm failover --dry-run pm-1', 'which VMs, and every command'],
  ],
  nodes: (args) => [args.node, args.yesNodeIsDown],
  run: async (ctx, args) => (await import('../../ops/pm/failover.js')).failoverNode(ctx, args.node, { dryRun: args.dryRun, yesNodeIsDown: args.yesNodeIsDown }),
  view: applyView,
});

const rejoin = defineCommand<{ node: string; dryRun: boolean }, ApplyResult>({
  command: 'rejoin <node>',
  describe: 'a node is back after a failover: resync its stale copies from the survivors (discarding its data), bring the rest up',
  builder: (y) => dryRunOption(y)
    .positional('node', nodeArgument)
    .epilogue('Stale: a VM failed over away from it, or a split brain where the other side runs the VM. Its domain is powered off if it booted, it becomes Secondary and connects with --discard-my-data; never the other way round.'),
  examples: [
    ['pmc pm rejoin pm-1', 'after pm-1 is back: its copies resync from the peers, with progress'],
    ['pmc pm rejoin --dry-run pm-1', 'which copies are stale, and every command'],
  ],
  nodes: (args) => [args.node],
  run: async (ctx, args) => (await import('../../ops/pm/rejoin.js')).rejoinNode(ctx, args.node, { dryRun: args.dryRun }),
  view: applyView,
});

export const pmCommands = [ls, init, drbdUp, evacuate, failover, rejoin];
