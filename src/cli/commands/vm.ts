import { listOptions, defineCommand } from '../command.js';
import { listVms, showVm } from '../../ops/list.js';
import { vmDetailsView, vmsView, VM_COLUMNS } from '../../render/views/vms.js';

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
  run: (ctx, args) => listVms(ctx, args.vms),
  view: vmsView,
});

const info = defineCommand<{ vm: string }, Awaited<ReturnType<typeof showVm>>['data']>({
  command: 'info <vm>',
  aliases: ['show'],
  describe: 'everything known about one VM, node by node',
  builder: (y) => y.positional('vm', { type: 'string', demandOption: true, describe: 'the VM' }),
  examples: [['pmc vm info test-vm', 'domain, DRBD and LV on each of its nodes']],
  run: (ctx, args) => showVm(ctx, args.vm),
  view: vmDetailsView,
});

export const vmCommands = [ls, info];
