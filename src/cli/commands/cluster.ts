import { defineCommand, dryRunOption } from '../command.js';
import type { ClusterStartResult } from '../../ops/cluster/start.js';
import type { verify } from '../../ops/cluster/verify.js';
import { assertVmReference, parseSeconds } from '../../util/validate.js';

const verifyCommand = defineCommand<object, Awaited<ReturnType<typeof verify>>['data']>({
  command: 'verify',
  describe: 'check the whole cluster; every finding has a stable code and a fix; exit 1 on errors',
  examples: [
    ['pmc cluster verify', 'all checks on all nodes'],
    ['pmc cluster verify --json | jq \'.findings[] | select(.severity=="error")\'', 'errors only'],
  ],
  run: async (ctx) => (await import('../../ops/cluster/verify.js')).verify(ctx),
  view: async () => (await import('../../render/views/verify.js')).verifyView,
});

const startCommand = defineCommand<{ only: string[]; wait: number; dryRun: boolean }, ClusterStartResult>({
  command: 'start',
  describe: 'after a power loss: DRBD up on every reachable node, then every VM on the node with its current data (never on two)',
  builder: (y) => dryRunOption(y)
    .option('only', { type: 'string', array: true, default: [], describe: 'only these VMs (and their DRBD resources)' })
    .option('wait', {
      type: 'string', requiresArg: true, default: '60',
      describe: 'seconds to wait for DRBD resources to connect (0 to 86400)',
    })
    .epilogue('A VM already running is left alone; an ignored one too. When the two copies of a VM diverged (split brain),\nor both claim current data but cannot connect, that VM is refused with the fix; exit code 1.'),
  examples: [
    ['pmc cluster start --dry-run', 'show the plan: which VM starts where, and why'],
    ['pmc cluster start', 'bring everything back'],
    ['pmc cluster start --only web-1 db-1', 'just these VMs'],
  ],
  check: (args) => { args.only.forEach(assertVmReference); return { wait: parseSeconds(args.wait, '--wait', 0) }; },
  run: async (ctx, args) => (await import('../../ops/cluster/start.js')).clusterStart(ctx, { only: args.only, waitSeconds: args.wait, dryRun: args.dryRun }),
  view: async () => (await import('../../render/views/cluster-start.js')).clusterStartView,
});

export const clusterCommands = [verifyCommand, startCommand];
