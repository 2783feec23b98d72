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
import type { PmAddResult } from '../../ops/pm/add.js';
import type { DiscoverResult } from '../../ops/pm/discover.js';
import { MAX_SCAN_ADDRESSES, parseSubnetOption } from '../../ops/pm/discover-args.js';
import { isHostAddress } from '../../util/validate.js';
import { isNodeName } from '../../util/names.js';
import { PmcError } from '../../util/errors.js';

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

/** A fingerprint as ssh-keygen -l prints it: SHA256 and unpadded base64 of 32 bytes. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

const add = defineCommand<{ node: string; address?: string; fingerprint?: string; dryRun: boolean }, PmAddResult>({
  command: 'add <node>',
  describe: 'add a node: confirm its host key, check it and set up SSH trust with every node (as pm init --fix), then list it in pmc.yaml',
  builder: (y) => dryRunOption(y)
    .positional('node', { type: 'string', demandOption: true, describe: 'the new node\'s name (its host name: DRBD names nodes by it)' })
    .option('address', { type: 'string', requiresArg: true, describe: 'the address pmc and the other nodes reach it at (default: its name)' })
    .option('fingerprint', { type: 'string', requiresArg: true, describe: 'the SHA256 fingerprint of its host key (ssh-keygen -lf on its console): no question, and any other key is refused' })
    .epilogue('Without --fingerprint pmc shows the key it was offered and asks you to confirm it, as ssh does at first contact; without a terminal it refuses and prints the command to run with the fingerprint.\n'
      + 'The key is appended to the first known_hosts file of ssh.knownHosts. pmc.yaml keeps its comments and layout; the node is listed only once every check passes.'),
  examples: [
    ['pmc pm add pm-4 --address 10.0.0.14', 'shows pm-4\'s host key fingerprint and asks you to confirm it'],
    ['pmc pm add pm-4 --fingerprint SHA256:...', 'for scripts: the fingerprint read on pm-4\'s console'],
    ['pmc pm add --dry-run pm-4', 'shows the key and what would be written, changes nothing'],
  ],
  check: (args) => {
    if (!isNodeName(args.node)) throw new PmcError('PMC_E_NAME_INVALID', `node name ${JSON.stringify(args.node)}: must be a host name (letters, digits, "-" and ".")`, 'e.g. pmc pm add pm-4');
    if (args.address !== undefined && !isHostAddress(args.address)) {
      throw new PmcError('PMC_E_ADDRESS_INVALID', `--address ${JSON.stringify(args.address)}: not a host name or an IP address`, 'e.g. --address 10.0.0.14');
    }
    if (args.fingerprint !== undefined && !FINGERPRINT.test(args.fingerprint)) {
      throw new PmcError('PMC_E_USAGE', `--fingerprint ${JSON.stringify(args.fingerprint)}: not a SHA256 fingerprint`, 'give it as ssh-keygen -lf prints it: SHA256: and 43 characters');
    }
  },
  run: async (ctx, args) => (await import('../../ops/pm/add.js')).addNode(ctx, { name: args.node, address: args.address, fingerprint: args.fingerprint, dryRun: args.dryRun }),
  view: async () => (await import('../../render/views/pm-add.js')).pmAddView,
});

const discover = defineCommand<{ subnet?: string }, DiscoverResult>({
  command: 'discover',
  describe: 'list machines that could become nodes: DRBD peers and mDNS hosts the nodes know, and hosts on their subnet that answer SSH, each with its host key',
  builder: (y) => y
    .option('subnet', { type: 'string', requiresArg: true, describe: `the IPv4 subnet to scan for SSH (at most a /${32 - Math.log2(MAX_SCAN_ADDRESSES)}; default: the /24 of each node's address)` })
    .epilogue('Nothing changes anywhere: no node, no pmc.yaml, no known_hosts is written. The scan runs from this machine to pmc.yaml\'s SSH port, '
      + '32 addresses at a time, 2 s each, and ends every connection at the host key: no credential is sent. The nodes\' own addresses are left out.\n'
      + 'Being found trusts nothing: compare a candidate\'s fingerprint with ssh-keygen -lf on its console before pmc pm add.'),
  examples: [
    ['pmc pm discover', 'candidates from the nodes\' DRBD resources, their mDNS, and the /24 around each node'],
    ['pmc pm discover --subnet 10.0.1.0/24', 'scan another subnet'],
    ['pmc pm discover --json', 'everything, as JSON'],
  ],
  check: (args) => { if (args.subnet !== undefined) parseSubnetOption(args.subnet); },
  run: async (ctx, args) => (await import('../../ops/pm/discover.js')).discoverNodes(ctx, {
    subnet: args.subnet === undefined ? undefined : parseSubnetOption(args.subnet),
    configArg: args.config,
  }),
  view: async () => (await import('../../render/views/pm-discover.js')).pmDiscoverView,
});

const rm = defineCommand<{ node: string; force: boolean; dryRun: boolean }, ApplyResult>({
  command: 'rm <node>',
  aliases: ['remove'],
  describe: 'remove a node that holds no VM: the other nodes stop trusting it over SSH, and it leaves pmc.yaml',
  builder: (y) => dryRunOption(y)
    .positional('node', nodeArgument)
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'do not ask to type the name' })
    .epilogue('Refused while the node holds a copy of any VM (move them first: pmc pm evacuate --secondaries). A node that does not answer may go when no other node names it as a DRBD peer.\n'
      + 'pmc.yaml keeps its comments and layout. Nothing is changed on the removed node itself.'),
  examples: [
    ['pmc pm rm pm-4', 'asks you to type "pm-4" first'],
    ['pmc pm rm --dry-run pm-4', 'what would change on which node'],
    ['pmc pm rm -f pm-4', 'no question (for scripts)'],
  ],
  nodes: (args) => [args.node],
  run: async (ctx, args) => (await import('../../ops/pm/rm.js')).removeNode(ctx, args.node, args),
  view: applyView,
});

export const pmCommands = [ls, discover, add, rm, init, drbdUp, evacuate, failover, rejoin];
