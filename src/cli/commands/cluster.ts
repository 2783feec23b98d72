import { defineCommand, dryRunOption } from '../command.js';
import type { ClusterStartResult } from '../../ops/cluster/start.js';
import type { HealResult } from '../../ops/cluster/heal.js';
import type { RebalanceReport } from '../../ops/cluster/rebalance.js';
import { MAX_MOVES, parseRebalanceArgs } from '../../ops/cluster/rebalance-args.js';
import { MAX_PARALLEL } from '../../ops/pm/evacuate-args.js';
import { DEFAULT_MIGRATE_TIMEOUT_S } from '../../ops/vm/defaults.js';
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

const rebalanceCommand = defineCommand<{ maxMoves?: string; parallel: string; timeout: string; dryRun: boolean; secondaries: boolean }, RebalanceReport>({
  command: 'rebalance',
  describe: 'spread the running VMs over the nodes (memory first, then vCPUs) by live-migrating some to their DRBD peers',
  builder: (y) => dryRunOption(y)
    .option('max-moves', { type: 'string', requiresArg: true, describe: `at most this many moves, copies and migrations together (1 to ${MAX_MOVES}; default: every one that lowers the score)` })
    .option('secondaries', { type: 'boolean', default: false, describe: 'first move standby copies to emptier nodes (as pmc vm peer-recreate NEWPM VM), so a new node takes its share' })
    .option('parallel', { type: 'string', requiresArg: true, default: '1', describe: `how many migrations run at once (1 to ${MAX_PARALLEL})` })
    .option('timeout', { alias: 't', type: 'string', requiresArg: true, default: String(DEFAULT_MIGRATE_TIMEOUT_S), describe: 'seconds after which a migration is aborted (virsh domjobabort)' })
    .epilogue('Score: the standard deviation of the share of each node\'s memory used by running VMs, plus a quarter of that of its CPUs\' share in vCPUs (0: every node carries the same share).\n'
      + 'Moves, best first: a running, replicated VM (not ignored) live-migrates to its DRBD peer when the peer has the memory for it beside every VM that would run there;\n'
      + 'each VM moves at most once. Each migration is checked and run as pmc vm mv runs it; a VM vm mv refuses stays where it is and the plan is made without it.\n'
      + 'With --secondaries, standby copies move first, one at a time, to spread the replicated disks (disk score: the standard deviation of each\n'
      + 'node\'s share of its volume group in use); the migrations are then planned on the pairs as they will be, so a VM may move to a new node.\n'
      + 'The first failure stops the run; the output says what moved, and running it again plans again.'),
  examples: [
    ['pmc cluster rebalance --dry-run', 'the score, each move with its reason, and every command; nothing changes'],
    ['pmc cluster rebalance --max-moves 2', 'only the two moves that lower the score most'],
    ['pmc cluster rebalance --parallel 2', 'two migrations at a time'],
    ['pmc cluster rebalance --secondaries --dry-run', 'also the standby copies that move to emptier nodes (a node just added), then the migrations'],
  ],
  check: (args) => { parseRebalanceArgs(args); },
  run: async (ctx, args) => (await import('../../ops/cluster/rebalance.js')).rebalanceCluster(ctx, parseRebalanceArgs(args)),
  view: async () => (await import('../../render/views/rebalance.js')).rebalanceView,
});

const healCommand = defineCommand<{ dryRun: boolean }, HealResult>({
  command: 'heal',
  describe: 'unattended (timer or cron): fail the VMs of a dead, fenced node over to their peers; rejoin a node that is back',
  builder: (y) => dryRunOption(y)
    .epilogue('A node that does not answer and has a fence command in pmc.yaml (nodes[].fence) is fenced; only if that exits 0 do its VMs\n'
      + 'start on their peers, checked as pmc pm failover checks them. Without a fence command nothing changes for it: heal never asks.\n'
      + 'A node that answers and holds copies a failover made stale rejoins as pmc pm rejoin does. Ignored VMs are left alone.\n'
      + 'Exit 0: healthy, or healed; 1: a node needs the operator (no fence command, a failed fence or step); 3: done what could be done, a node still does not answer.'),
  examples: [
    ['pmc cluster heal --dry-run', 'what heal would do now, and every command'],
    ['pmc cluster heal', 'do it (from a systemd timer: see README)'],
  ],
  run: async (ctx, args) => (await import('../../ops/cluster/heal.js')).healCluster(ctx, { dryRun: args.dryRun }),
  view: async () => (await import('../../render/views/heal.js')).healView,
});

export const clusterCommands = [verifyCommand, startCommand, rebalanceCommand, healCommand];
