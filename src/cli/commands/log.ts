import { defineCommand } from '../command.js';
import type { LogEntry } from '../../ops/log/read.js';

export const logCommand = defineCommand<{ vm?: string; node: string[]; since?: string }, LogEntry[]>({
  command: 'log [vm]',
  describe: 'what pmc changed, read from the nodes\' journals: who ran which command, each step\'s command and exit code, the outcome',
  builder: (y) => y
    .positional('vm', { type: 'string', describe: 'only what was done to this VM' })
    .option('node', { alias: 'p', type: 'string', array: true, default: [], describe: 'only from these nodes (default: all)' })
    .option('since', { type: 'string', describe: 'from this time on, as journalctl takes it ("2026-12-01 14:00", today, or --since=-2h)' })
    .epilogue('Every changing command writes there with "logger -t pmc" (journalctl -t pmc on the node shows the same).\nColumns: time (UTC), node, run id (the same on every node of one run), VM, who, what.'),
  examples: [
    ['pmc log web-1', 'everything pmc did to web-1, on all its nodes'],
    ['pmc log --node pm-2 --since today', 'today\'s changes on pm-2'],
    ['pmc log --since=-1h --json', 'the last hour, as JSON (a relative time needs the "=")'],
  ],
  run: async (ctx, args) => (await import('../../ops/log/read.js')).readLog(ctx, { vm: args.vm, nodes: args.node, since: args.since }),
  view: async () => (await import('../../render/views/log.js')).logView,
});
