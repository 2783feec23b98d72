/**
 * Start-up: `pmc --help`, `pmc help vm add` and a config error (`pmc vm ls` without a
 * pmc.yaml) beside `node -e 0`, as processes with their output read through a pipe, as a
 * user's shell or script reads it. The runs are interleaved (one of each per round), so a
 * machine whose load changes during the benchmark slows all of them alike; the medians of 10
 * rounds and their ratio to Node's own start are printed.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, type Build } from './fleet.js';

const ROUNDS = 10;

interface Command {
  label: string;
  args: string[];
  /** The exit code the run must end with. */
  status: number;
  env?: NodeJS.ProcessEnv;
}

const PMC_RUNS: Array<Omit<Command, 'args'> & { words: string[] }> = [
  { label: 'pmc --help', words: ['--help'], status: 0 },
  { label: 'pmc help vm add', words: ['help', 'vm', 'add'], status: 0 },
  { label: 'pmc vm ls (no pmc.yaml)', words: ['vm', 'ls'], status: 1, env: { PMC_CONFIG: '/nonexistent/pmc.yaml' } },
];

function wallMs(command: Command): number {
  const t0 = performance.now();
  const run = spawnSync(process.execPath, command.args, { encoding: 'utf8', env: { ...process.env, ...command.env } });
  const ms = performance.now() - t0;
  if (run.status !== command.status) throw new Error(`node ${command.args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return ms;
}

export function startupBench(builds: Build[]): void {
  const commands: Command[] = [
    { label: 'node -e 0', args: ['-e', '0'], status: 0 },
    ...builds.flatMap((build) => PMC_RUNS.map((run) => ({
      label: `${builds.length > 1 ? `${build.label}: ` : ''}${run.label}`,
      args: [join(build.dir, 'bin/pmc'), ...run.words],
      status: run.status,
      env: run.env,
    }))),
  ];
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`\n# start-up: median wall of ${ROUNDS} runs each, interleaved (load average ${load})`);
  const walls = commands.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    commands.forEach((command, i) => walls[i]!.push(wallMs(command)));
  }
  const node = median(walls[0]!);
  commands.forEach((command, i) => {
    const ms = median(walls[i]!);
    console.log(`${command.label.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms   ${(ms / node).toFixed(2)}x node -e 0`);
  });
}
