import { listOptions, defineCommand } from '../command.js';
import { listNodes } from '../../ops/list.js';
import { nodesView, PM_COLUMNS } from '../../render/views/nodes.js';

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

export const pmCommands = [ls];
