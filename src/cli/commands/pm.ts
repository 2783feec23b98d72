import { dryRunOption, listOptions, defineCommand } from '../command.js';
import { listNodes } from '../../ops/pm/list.js';
import { pmDrbdUp, type DrbdUpResult } from '../../ops/pm/drbd-up.js';
import { pmInit, type InitResult } from '../../ops/pm/init.js';
import { drbdUpView } from '../../render/views/drbd-up.js';
import { nodesView, PM_COLUMNS } from '../../render/views/nodes.js';
import { initView } from '../../render/views/pm-init.js';

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
  run: (ctx, args) => listNodes(ctx, args.nodes),
  view: nodesView,
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
  run: (ctx, args) => pmInit(ctx, { nodes: args.all ? [] : args.nodes, fix: args.fix, dryRun: args.dryRun }),
  view: initView,
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
  run: (ctx, args) => pmDrbdUp(ctx, { nodes: args.all ? [] : args.nodes, resources: args.only, dryRun: args.dryRun }),
  view: drbdUpView,
});

export const pmCommands = [ls, init, drbdUp];
