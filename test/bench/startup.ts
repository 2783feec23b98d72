/**
 * Start-up: `pmc --help` and `pmc help vm add` beside `node -e 0`, as processes with their
 * output read through a pipe, as a user's shell or script reads it. The runs are interleaved
 * (one of each per round), so a machine whose load changes during the benchmark slows all of
 * them alike; the medians of 10 rounds and their ratio to Node's own start are printed.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, type Build } from './fleet.js';

const ROUNDS = 10;

function wallMs(args: string[]): number {
  const t0 = performance.now();
  const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (run.status !== 0) throw new Error(`node ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return ms;
}

export function startupBench(builds: Build[]): void {
  const commands: { label: string; args: string[] }[] = [
    { label: 'node -e 0', args: ['-e', '0'] },
    ...builds.flatMap((build) => [['--help'], ['help', 'vm', 'add']].map((words) => ({
      label: `${builds.length > 1 ? `${build.label}: ` : ''}pmc ${words.join(' ')}`,
      args: [join(build.dir, 'bin/pmc'), ...words],
    }))),
  ];
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`\n# start-up: median wall of ${ROUNDS} runs each, interleaved (load average ${load})`);
  const walls = commands.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    commands.forEach((command, i) => walls[i]!.push(wallMs(command.args)));
  }
  const node = median(walls[0]!);
  commands.forEach((command, i) => {
    const ms = median(walls[i]!);
    console.log(`${command.label.padEnd(34)} ${ms.toFixed(0).padStart(6)} ms   ${(ms / node).toFixed(2)}x node -e 0`);
  });
}
