/**
 * The fleet benchmark (`npm run bench -- --nodes 100`): N real OpenSSH servers on loopback
 * addresses 127.90.x.y, each answering with a realistic 20-VM node's probe output (see
 * fleet-node.ts), and pmc run against 1, 10 and N of them. Printed, never asserted:
 *  - `pmc vm ls` and `pmc pm ls` as real CLI processes: wall time, pmc's own CPU (user+sys)
 *    in all and per node, peak memory (max RSS);
 *  - pmc's CPU per node split into SSH (connect + probe round trip, through SshPool) and
 *    parsing (parseProbeOutput), measured in this process on the same build;
 *  - the SSH phases of one connection (wall and CPU), from the connection's phase hook;
 *  - the node-side process starts of one probe run.
 * `--sizes 100` measures at those sizes only (default 1, 10 and N). With PMC_BENCH_CPU_PROF=DIR
 * each pmc process writes a V8 CPU profile into DIR (`--cpu-prof`; its CPU figures then include
 * the profiler's), named by build, command and size; cpu-profile.ts summarizes one.
 * With `--before DIR` (a built checkout, e.g. main's) every figure is also taken for that
 * build, in the same run on the same servers. Each build is answered what its OWN probe script
 * prints on the same stub node (the probe changed: one virsh per command and vgs/lvs before,
 * virsh sessions and lvm fullreport since): the nodes replay the answers of the build being
 * measured. Every answer is parsed with that build's parser before anything is measured, and
 * the benchmark stops when one does not read as its node with 20 VMs.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { generateKey, knownHostsLine, sshdUnavailable, startSshd, tempDir, type Sshd } from '../ssh/sshd.js';
import { answerFor, generateAnswers, PROBE_OPTIONS, VMS_PER_NODE, type ProcessCount } from './fleet-node.js';

export interface Build {
  label: string;
  /** A checkout with dist/ built (npm run build). */
  dir: string;
}

interface CliRun {
  wallMs: number;
  cpuMs: number;
  maxRssMiB: number;
  exitCode: number | null;
  stdoutLines: number;
}

/** Loaded into the pmc process under test: writes its own resource usage when it exits. */
const USAGE_HOOK = `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(process.env.PMC_BENCH_USAGE, JSON.stringify({ cpuUs: u.userCPUTime + u.systemCPUTime, maxRssKiB: u.maxRSS }));
});
`;

function nodeName(i: number): string {
  return `pm-${i + 1}`;
}

function nodeAddress(i: number): string {
  return `127.90.${i >> 8}.${(i & 255) + 1}`;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

export interface FleetOptions {
  /** Fleet sizes measured; default 1, 10 and maxNodes. */
  sizes?: readonly number[];
  /** Runs of each pmc command, their median shown; default 3, and 1 at 50 nodes and more. */
  runs?: number;
}

export async function fleetBench(maxNodes: number, builds: Build[], options: FleetOptions = {}): Promise<void> {
  console.log(`\n# fleet: up to ${maxNodes} real sshd nodes on 127.90.0.0/16, ${VMS_PER_NODE} VMs each`);
  if (sshdUnavailable) {
    console.log(`skipped: ${sshdUnavailable}`);
    return;
  }
  const dir = await tempDir('fleet');
  const servers: Sshd[] = [];
  const cleanUp = async (): Promise<void> => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  const onSignal = (): void => { void cleanUp().then(() => process.exit(130)); };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    await run(dir, servers, maxNodes, builds, options);
  } finally {
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
    await cleanUp();
  }
}

async function run(dir: string, servers: Sshd[], maxNodes: number, builds: Build[], options: FleetOptions): Promise<void> {
  for (const build of builds) {
    const t0 = performance.now();
    const m = await modules(build);
    const answers = await generateAnswers(join(dir, `node-${build.label}`), m.buildProbeScript(PROBE_OPTIONS));
    console.log(`${build.label}: node answer: its probe script run once against stub tools (${((performance.now() - t0) / 1000).toFixed(1)} s), `
      + `${(answers.template.a.length / 1024).toFixed(1)} KiB per node; node-side per probe (strace -ff): ${describeProcesses(answers.processes)}`);
    const answerDir = join(dir, `answers-${build.label}`);
    await mkdir(answerDir);
    for (let i = 0; i < maxNodes; i++) {
      const side = i % 2 === 0 ? 'a' : 'b';
      const peer = side === 'a' ? nodeName(i + 1) : nodeName(i - 1);
      const answer = answerFor(answers, side, nodeName(i), peer, Math.floor(i / 2));
      checkAnswer(build, nodeName(i), m.parseProbeOutput(answer, PROBE_OPTIONS));
      await writeFile(join(answerDir, `${nodeName(i)}.txt`), answer);
    }
  }
  console.log(`every node's answer read by its build's own parser as that node with ${VMS_PER_NODE} VMs, LVs and DRBD resources, no problems`);

  const client = await generateKey(dir, 'client');
  const authorized = join(dir, 'authorized_keys');
  await writeFile(authorized, `${client.publicLine}\n`);
  const t0 = performance.now();
  await startServers(dir, servers, maxNodes, authorized);
  console.log(`${servers.length} sshd started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, servers.map((s) => `${knownHostsLine(s, 'ed25519')}\n`).join(''));
  const hook = join(dir, 'usage-hook.mjs');
  await writeFile(hook, USAGE_HOOK);

  const sizes = [...new Set((options.sizes ?? [1, 10, maxNodes]).filter((n) => n <= maxNodes))].sort((a, b) => a - b);
  const configs = new Map<number, string>();
  for (const size of sizes) {
    const file = join(dir, `pmc-${size}.yaml`);
    await writeFile(file, [
      'nodes:',
      ...servers.slice(0, size).map((s, i) => `  - { name: ${nodeName(i)}, address: ${s.host}, ssh: { port: ${s.port} } }`),
      'ssh:', `  identityFiles: [${client.privateFile}]`, '  agent: false', `  knownHosts: ${knownHosts}`,
      'storage:', `  volumeGroup: ${PROBE_OPTIONS.volumeGroup}`, 'backups:', `  directory: ${PROBE_OPTIONS.backupDir}`, '',
    ].join('\n'));
    configs.set(size, file);
  }

  const runsOf = (size: number): number => options.runs ?? (size >= 50 ? 1 : 3);
  console.log(`\n## pmc as a process (median of ${options.runs ?? '3'} runs${options.runs ? '' : ', 1 at 50 nodes and more'}): wall, own CPU in all and per node, peak RSS`);
  for (const size of sizes) {
    for (const command of [['vm', 'ls'], ['pm', 'ls']]) {
      // The builds take turns, so that a change in the machine's load weighs on each alike.
      const runs = new Map<Build, CliRun[]>(builds.map((build) => [build, []]));
      for (let i = 0; i < runsOf(size); i++) {
        for (const build of builds) {
          await answerAs(dir, build);
          const profile = `pmc-${build.label}-${command.join('-')}-${size}n-${i + 1}.cpuprofile`;
          runs.get(build)!.push(await runCli(build, command, configs.get(size)!, hook, join(dir, 'usage.json'), profile));
        }
      }
      for (const [build, done] of runs) {
        const cpu = median(done.map((r) => r.cpuMs));
        const failed = done.find((r) => r.exitCode !== 0);
        console.log(`${`pmc ${command.join(' ')}`.padEnd(10)} ${String(size).padStart(3)} nodes ${build.label.padEnd(7)} `
          + `wall ${median(done.map((r) => r.wallMs)).toFixed(0).padStart(6)} ms  cpu ${cpu.toFixed(0).padStart(6)} ms `
          + `(${(cpu / size).toFixed(1).padStart(6)} ms/node)  peak RSS ${Math.max(...done.map((r) => r.maxRssMiB)).toFixed(0).padStart(4)} MiB  `
          + `${done[0]!.stdoutLines} lines${failed ? `  EXIT ${failed.exitCode}` : ''}`
          + (options.runs ? `  (cpu of each run: ${done.map((r) => r.cpuMs.toFixed(0)).join(', ')} ms)` : ''));
      }
    }
  }

  console.log('\n## pmc\'s CPU per node, split: SSH (SshPool: connect, probe, close) and parsing (parseProbeOutput), in this process');
  for (const size of sizes.filter((s) => s > 1)) {
    for (const build of builds) {
      await answerAs(dir, build);
      const split = await splitCpu(build, configs.get(size)!, size);
      console.log(`${String(size).padStart(3)} nodes ${build.label.padEnd(7)} ssh ${(split.sshMs / size).toFixed(1).padStart(6)} ms/node  `
        + `parse ${(split.parseMs / size).toFixed(1).padStart(6)} ms/node  (ssh ${split.sshMs.toFixed(0)} ms + parse ${split.parseMs.toFixed(0)} ms in all)`);
    }
  }

  const withPhases = builds.at(-1)!;
  const phaseNodes = Math.min(10, sizes.at(-1)!);
  console.log(`\n## SSH phases, ${withPhases.label} build: ${phaseNodes} nodes one at a time (median wall, mean CPU per node)`);
  await answerAs(dir, withPhases);
  const phases = await phaseTimes(withPhases, configs.get(sizes.find((s) => s >= phaseNodes)!)!, phaseNodes);
  if (!phases) console.log('this build has no phase hook');
  // hostkey runs inside kex: its CPU is counted there.
  else for (const [phase, t] of phases) console.log(`${phase.padEnd(9)} wall ${t.wallMs.toFixed(1).padStart(7)} ms  cpu ${Number.isNaN(t.cpuMs) ? '  (in kex)' : `${t.cpuMs.toFixed(1).padStart(6)} ms`}`);
}

/** Makes every node replay the answers of `build`'s probe script from now on. */
async function answerAs(dir: string, build: Build): Promise<void> {
  const link = join(dir, 'answers');
  await symlink(`answers-${build.label}`, `${link}.new`);
  await rename(`${link}.new`, link);
}

async function startServers(dir: string, servers: Sshd[], count: number, authorized: string): Promise<void> {
  for (let from = 0; from < count; from += 10) {
    const batch = Array.from({ length: Math.min(10, count - from) }, (_, k) => from + k);
    const started = await Promise.all(batch.map((i) => startSshd({
      dir, host: nodeAddress(i), authorizedKeysFile: authorized,
      // Whatever pmc asks, the node replays its probe answer for the build being measured.
      config: ['MaxSessions 10', `ForceCommand cat ${join(dir, 'answers', `${nodeName(i)}.txt`)}`],
    })));
    servers.push(...started);
  }
}

/** What a probe answer must read as (NodeFacts, as far as every build has it). */
interface FleetFacts {
  hostname: string;
  vg: unknown;
  lvs: unknown[];
  drbdResources: unknown[];
  domains: { state: string }[];
  problems: string[];
}

/** Stops the benchmark when a build does not read a node's answer as that node with its VMs. */
function checkAnswer(build: Build, node: string, facts: FleetFacts): void {
  const running = facts.domains.filter((d) => d.state === 'running').length;
  const wrong = [
    facts.hostname === node ? '' : `hostname ${JSON.stringify(facts.hostname)}`,
    facts.vg ? '' : 'no volume group',
    facts.domains.length === VMS_PER_NODE ? '' : `${facts.domains.length} VMs`,
    running === VMS_PER_NODE / 2 ? '' : `${running} VMs running`,
    facts.lvs.length === VMS_PER_NODE ? '' : `${facts.lvs.length} LVs`,
    facts.drbdResources.length === VMS_PER_NODE ? '' : `${facts.drbdResources.length} DRBD resources`,
    ...facts.problems,
  ].filter(Boolean);
  if (wrong.length > 0) {
    throw new Error(`fleet: the ${build.label} build reads ${node}'s probe answer wrong (expected ${node}, ${VMS_PER_NODE} VMs, `
      + `${VMS_PER_NODE / 2} of them running, ${VMS_PER_NODE} LVs and DRBD resources, no problems): ${wrong.join('; ')}`);
  }
}

function describeProcesses(processes: ProcessCount | string): string {
  if (typeof processes === 'string') return processes;
  const programs = [...processes.programs].sort(([a], [b]) => a.localeCompare(b));
  const runs = programs.reduce((sum, [, count]) => sum + count, 0);
  return `${processes.starts} processes, ${runs} programs executed (${programs.map(([name, count]) => `${name} ${count}`).join(', ')})`;
}

function runCli(build: Build, command: string[], config: string, hook: string, usageFile: string, profileName: string): Promise<CliRun> {
  const profileDir = process.env.PMC_BENCH_CPU_PROF;
  const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', resolve(profileDir), '--cpu-prof-name', profileName] : [];
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...profile, '--import', pathToFileURL(hook).href, join(build.dir, 'bin/pmc'), ...command], {
      env: { ...process.env, PMC_CONFIG: config, PMC_BENCH_USAGE: usageFile, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.once('error', reject);
    child.once('close', async (exitCode) => {
      const wallMs = performance.now() - started;
      try {
        const usage = JSON.parse(await readFile(usageFile, 'utf8')) as { cpuUs: number; maxRssKiB: number };
        if (exitCode !== 0) console.log(`  (${build.label} ${command.join(' ')} exit ${exitCode}: ${stderr.trim().split('\n')[0]})`);
        resolvePromise({ wallMs, cpuMs: usage.cpuUs / 1000, maxRssMiB: usage.maxRssKiB / 1024, exitCode, stdoutLines: stdout.split('\n').filter(Boolean).length });
      } catch (err) {
        reject(new Error(`${command.join(' ')} wrote no usage (exit ${exitCode}): ${stderr}`, { cause: err }));
      }
    });
  });
}

/** The build's own modules, loaded from its dist/. */
async function modules(build: Build) {
  const load = (path: string) => import(pathToFileURL(resolve(build.dir, 'dist', path)).href);
  const [config, targets, pool, script, gather] = await Promise.all([
    load('config/load.js'), load('config/targets.js'), load('ssh/pool.js'), load('probe/script.js'), load('probe/gather.js'),
  ]);
  return {
    loadConfig: config.loadConfig as (file: string) => { ssh: { concurrency: number }; nodes: { name: string }[] },
    sshTargets: targets.sshTargets as (config: unknown) => unknown[],
    SshPool: pool.SshPool as new (targets: unknown[], options: Record<string, unknown>) => {
      run(node: string, command: string, options?: { timeoutMs?: number }): Promise<{ stdout: string }>;
      forEachNode<T>(nodes: readonly string[], task: (node: string) => Promise<T>): Promise<({ ok: true; value: T } | { ok: false })[]>;
      close(): Promise<void>;
    },
    buildProbeScript: script.buildProbeScript as (opts: typeof PROBE_OPTIONS) => string,
    parseProbeOutput: gather.parseProbeOutput as (stdout: string, opts: typeof PROBE_OPTIONS) => FleetFacts,
  };
}

async function splitCpu(build: Build, configFile: string, size: number): Promise<{ sshMs: number; parseMs: number }> {
  const m = await modules(build);
  const config = m.loadConfig(configFile);
  const nodes = config.nodes.map((n) => n.name);
  const script = m.buildProbeScript(PROBE_OPTIONS);
  // One warm-up node first, so module loading and JIT warm-up are not counted per node.
  const warm = new m.SshPool(m.sshTargets(config), { concurrency: config.ssh.concurrency });
  m.parseProbeOutput((await warm.run(nodes[0]!, script, { timeoutMs: 120_000 })).stdout, PROBE_OPTIONS);
  await warm.close();

  const pool = new m.SshPool(m.sshTargets(config), { concurrency: config.ssh.concurrency });
  const sshStart = process.cpuUsage();
  const outcomes = await pool.forEachNode(nodes, async (node) => (await pool.run(node, script, { timeoutMs: 120_000 })).stdout);
  await pool.close();
  const sshMs = cpuMsSince(sshStart);
  const outputs = outcomes.flatMap((o) => (o.ok ? [o.value] : []));
  if (outputs.length !== size) console.log(`  (${build.label}: ${size - outputs.length} of ${size} nodes did not answer)`);
  const parseStart = process.cpuUsage();
  for (const output of outputs) m.parseProbeOutput(output, PROBE_OPTIONS);
  return { sshMs, parseMs: cpuMsSince(parseStart) };
}

async function phaseTimes(build: Build, configFile: string, size: number): Promise<Map<string, { wallMs: number; cpuMs: number }> | undefined> {
  const m = await modules(build);
  const config = m.loadConfig(configFile);
  const script = m.buildProbeScript(PROBE_OPTIONS);
  const walls = new Map<string, number[]>();
  const cpus = new Map<string, number>();
  let cpuMark = process.cpuUsage();
  let seen = false;
  const pool = new m.SshPool(m.sshTargets(config), {
    concurrency: 1,
    onPhase: (_node: string, phase: string, startedAt: number, endedAt: number) => {
      seen = true;
      // One node at a time: the CPU since the previous phase ended is this phase's (hostkey is inside kex).
      if (phase !== 'hostkey') {
        cpus.set(phase, (cpus.get(phase) ?? 0) + cpuMsSince(cpuMark));
        cpuMark = process.cpuUsage();
      }
      walls.set(phase, [...(walls.get(phase) ?? []), endedAt - startedAt]);
    },
  });
  for (const node of config.nodes.slice(0, size)) {
    cpuMark = process.cpuUsage();
    await pool.run(node.name, script, { timeoutMs: 120_000 });
  }
  await pool.close();
  if (!seen) return undefined;
  return new Map([...walls].map(([phase, values]) => [phase, { wallMs: median(values), cpuMs: (cpus.get(phase) ?? Number.NaN) / size }]));
}
