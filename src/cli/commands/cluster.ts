import { defineCommand, dryRunOption } from '../command.js';
import { clusterStart, type ClusterStartResult } from '../../ops/cluster/start.js';
import { verify } from '../../ops/cluster/verify.js';
import { clusterStartView } from '../../render/views/cluster-start.js';
import { verifyView } from '../../render/views/verify.js';

const verifyCommand = defineCommand<object, Awaited<ReturnType<typeof verify>>['data']>({
  command: 'verify',
  describe: 'check the whole cluster; every finding has a stable code and a fix; exit 1 on errors',
  examples: [
    ['pmc cluster verify', 'all checks on all nodes'],
    ['pmc cluster verify --json | jq \'.findings[] | select(.severity=="error")\'', 'errors only'],
  ],
  run: (ctx) => verify(ctx),
  view: verifyView,
});

const startCommand = defineCommand<{ only: string[]; wait: number; dryRun: boolean }, ClusterStartResult>({
  command: 'start',
  describe: 'after a power loss: DRBD up on every reachable node, then every VM on the node with its current data (never on two)',
  builder: (y) => dryRunOption(y)
    .option('only', { type: 'string', array: true, default: [], describe: 'only these VMs (and their DRBD resources)' })
    .option('wait', { type: 'number', default: 60, describe: 'seconds to wait for DRBD resources to connect' })
    .epilogue('A VM already running is left alone; an ignored one too. When the two copies of a VM diverged (split brain),\nor both claim current data but cannot connect, that VM is refused with the fix; exit code 1.'),
  examples: [
    ['pmc cluster start --dry-run', 'show the plan: which VM starts where, and why'],
    ['pmc cluster start', 'bring everything back'],
    ['pmc cluster start --only web-1 db-1', 'just these VMs'],
  ],
  run: (ctx, args) => clusterStart(ctx, { only: args.only, waitSeconds: args.wait, dryRun: args.dryRun }),
  view: clusterStartView,
});

export const clusterCommands = [verifyCommand, startCommand];
