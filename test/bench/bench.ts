/**
 * `npm run bench`: how pmc's read path scales toward a hundred nodes. Speed and memory are
 * measured here, never asserted in tests. Its parts:
 *  1. CPU: joining 100 nodes x 20 VMs each (2000 VMs) into the cluster model, verifying and
 *     rendering it, parsing real probe output for 100 nodes, and planning `cluster rebalance`
 *     on an uneven cluster of that size (rebalance.ts).
 *  2. SSH fan-out: one pmc run against 100 node entries on a real OpenSSH server on
 *     loopback (one connection each, capped concurrency), as `readCluster` does.
 *  3. known_hosts lookups for 10, 100 and 1000 nodes (known-hosts.ts).
 *  4. Start-up: `pmc --help` and `pmc help vm add` beside `node -e 0` (startup.ts), on this
 *     checkout's build (`npm run build`, which runs first).
 *  5. With `--nodes N`: the fleet benchmark (fleet.ts), N real sshd nodes with 20 VMs each,
 *     `pmc vm ls` / `pmc pm ls` at 1, 10 and N nodes.
 *     `--before DIR` adds the figures of 4 and 5 for another built checkout, e.g. main's:
 *       git -C /work/main archive main | tar -x -C /tmp/pmc-before && ln -s /work/main/node_modules /tmp/pmc-before/
 *       (cd /tmp/pmc-before && npm run build) && npm run bench -- --nodes 100 --before /tmp/pmc-before
 *     `--sizes 100` (or 10,100) takes the fleet figures at those sizes only; `--runs 3` runs each
 *     pmc command that many times at every size; `--fleet-only` skips parts 1 to 3. To profile pmc
 *     under the fleet (fleet.ts, cpu-profile.ts):
 *       PMC_BENCH_CPU_PROF=/tmp/prof npm run bench -- --nodes 100 --sizes 100 --fleet-only
 */
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../../src/config/load.js';
import { sshTargets } from '../../src/config/targets.js';
import { buildCluster } from '../../src/model/cluster.js';
import { summarizeNode } from '../../src/ops/pm/list.js';
import { summarizeVm } from '../../src/ops/vm/list.js';
import { verifyCluster } from '../../src/ops/cluster/verify.js';
import { parseProbeOutput } from '../../src/probe/gather.js';
import { plainStyle } from '../../src/render/style.js';
import { vmsView } from '../../src/render/views/vms.js';
import { SshPool } from '../../src/ssh/pool.js';
import { pairedVm, probes } from '../unit/model/factory.js';
import { frame, lvmFullreport, real } from '../unit/probe/helpers.js';
import { generateKey, knownHostsLine, sshdUnavailable, startSshd, tempDir, type Sshd } from '../ssh/sshd.js';
import { fleetBench, type Build } from './fleet.js';
import { knownHostsBench } from './known-hosts.js';
import { measure } from './measure.js';
import { rebalanceBench } from './rebalance.js';
import { startupBench } from './startup.js';

const NODES = 100;
const VMS_PER_NODE = 20;

function realNodeOutput(hostname: string): string {
  const sections: [string, string][] = [
    ['hostname', `${hostname}\n`], ['meminfo', real('proc-meminfo.txt')], ['cpus', '2\n'],
    ['lvm', lvmFullreport()],
    ['proc-drbd', real('proc-drbd.connected-primary.txt')], ['drbdadm-version', real('drbdadm-version.txt')],
    ['drbd-events2', real('drbdsetup-events2-now-statistics.84.txt')], ['drbdsetup-show', real('drbdsetup-show.84.txt')],
    ['drbd-res-files', '/etc/drbd.d/test-vm.res\n'], ['drbdadm-dump', real('drbdadm-dump.txt')],
    ['virsh-version', real('virsh-version.txt')], ['virsh-nodeinfo', real('virsh-nodeinfo.txt')],
    ['virsh-list', real('virsh-list-all.pm-2.txt')], ['virsh-names', real('virsh-list-all-name.txt')],
    ['domain-xml:test-vm', real('virsh-dumpxml.inactive.xml')], ['domain-info:test-vm', real('virsh-dominfo.running.txt')],
    ['domain-state:test-vm', real('virsh-domstate-reason.running.txt')],
  ];
  return sections.map(([name, body]) => frame(name, body)).join('');
}

function cpuBench(): void {
  console.log(`\n# model, verify and render: ${NODES} nodes, ${NODES * VMS_PER_NODE} VMs`);
  const names = Array.from({ length: NODES }, (_, i) => `pm-${i + 1}`);
  const parts = names.flatMap((home, i) => Array.from({ length: VMS_PER_NODE }, (_, j) =>
    pairedVm(`vm-${i}-${j}`, home, names[(i + 1) % NODES]!, 10 + i * VMS_PER_NODE + j)));
  const nodeProbes = probes(names, ...parts);
  const config = { nodes: names.map((name) => ({ name })), ignorePrefix: 'ignore' };
  const state = measure('buildCluster', 5, () => buildCluster(config, nodeProbes));
  measure('verifyCluster', 5, () => verifyCluster(state));
  measure('pm ls + vm ls summaries', 5, () => [state.nodes.map((n) => summarizeNode(n, state)), state.vms.map(summarizeVm)]);
  const rows = state.vms.map(summarizeVm);
  measure('vm ls table (2000 rows)', 5, () => vmsView(rows, { style: plainStyle, headers: true, verbose: false }));

  console.log(`\n# parsing real probe output`);
  const outputs = names.map(realNodeOutput);
  const opts = { volumeGroup: 'vg-pmc', bridge: 'br0', backupDir: '/pmc-vm-backup' };
  measure(`parseProbeOutput x ${NODES} nodes (${(outputs[0]!.length / 1024).toFixed(1)} KiB each)`, 3, () => outputs.map((o) => parseProbeOutput(o, opts)));

  rebalanceBench(NODES, NODES * VMS_PER_NODE);
}

async function sshBench(): Promise<void> {
  console.log(`\n# SSH fan-out: ${NODES} node entries against one real sshd on 127.0.0.1`);
  if (sshdUnavailable) {
    console.log(`skipped: ${sshdUnavailable}`);
    return;
  }
  const dir = await tempDir('bench');
  let sshd: Sshd | undefined;
  try {
    const client = await generateKey(dir, 'client');
    const authorized = join(dir, 'authorized_keys');
    await writeFile(authorized, `${client.publicLine}\n`);
    // Real nodes each run their own sshd; one sshd standing in for 100 must accept them all at once.
    sshd = await startSshd({ dir, host: '127.0.0.1', authorizedKeysFile: authorized, config: ['MaxStartups 200', 'MaxSessions 10'] });
    const known = join(dir, 'known_hosts');
    await writeFile(known, `${knownHostsLine(sshd, 'ed25519')}\n`);
    const yaml = ['nodes:', ...Array.from({ length: NODES }, (_, i) => `  - { name: pm-${i + 1}, address: 127.0.0.1 }`),
      'ssh:', `  port: ${sshd.port}`, `  identityFiles: [${client.privateFile}]`, '  agent: false', `  knownHosts: ${known}`].join('\n');
    const config = parseConfig(yaml, join(dir, 'pmc.yaml'));
    for (const concurrency of [8, 32]) {
      const pool = new SshPool(sshTargets(config), { concurrency });
      const t0 = performance.now();
      const outcomes = await pool.forEachNode(config.nodes.map((n) => n.name), async (node) => (await pool.run(node, 'cat /proc/meminfo /proc/loadavg')).exitCode);
      const ms = performance.now() - t0;
      await pool.close();
      const ok = outcomes.filter((o) => o.ok && o.value === 0).length;
      console.log(`concurrency ${String(concurrency).padStart(2)}: ${ok}/${NODES} nodes answered in ${ms.toFixed(0)} ms (${(ms / NODES).toFixed(1)} ms per node)`);
    }
  } finally {
    await sshd?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string' }, before: { type: 'string' }, sizes: { type: 'string' }, runs: { type: 'string' }, 'fleet-only': { type: 'boolean' },
  },
});
const fleetNodes = args.nodes === undefined ? undefined : Number(args.nodes);
if (fleetNodes !== undefined && (!Number.isInteger(fleetNodes) || fleetNodes < 1 || fleetNodes > 1000)) {
  console.error(`--nodes must be a whole number from 1 to 1000, not ${args.nodes}`);
  process.exit(2);
}
const sizes = args.sizes?.split(',').map(Number);
if (sizes && (fleetNodes === undefined || !sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= fleetNodes))) {
  console.error(`--sizes takes whole numbers from 1 to --nodes, separated by commas, not ${args.sizes}`);
  process.exit(2);
}
const runs = args.runs === undefined ? undefined : Number(args.runs);
if (runs !== undefined && (fleetNodes === undefined || !Number.isInteger(runs) || runs < 1 || runs > 20)) {
  console.error(`--runs takes a whole number from 1 to 20, with --nodes, not ${args.runs}`);
  process.exit(2);
}
if (args['fleet-only'] && fleetNodes === undefined) {
  console.error('--fleet-only needs --nodes');
  process.exit(2);
}

const repo = join(import.meta.dirname, '../..');
const builds: Build[] = [...(args.before ? [{ label: 'before', dir: args.before }] : []), { label: args.before ? 'after' : 'this', dir: repo }];
execFileSync(process.execPath, [join(repo, 'scripts/build.mjs')], { stdio: 'inherit' });

if (!args['fleet-only']) {
  cpuBench();
  await sshBench();
  await knownHostsBench();
  startupBench(builds);
}
if (fleetNodes !== undefined) {
  // The fleet benchmark also loads the build's modules one by one: tsc writes them beside the bundle.
  execFileSync(join(repo, 'node_modules/.bin/tsc'), ['-p', join(repo, 'tsconfig.json')], { stdio: 'inherit' });
  await fleetBench(fleetNodes, builds, { sizes, runs });
}
