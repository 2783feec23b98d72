/**
 * Summarizes a V8 CPU profile (node --cpu-prof, e.g. the fleet benchmark's PMC_BENCH_CPU_PROF):
 * self time by function, by file and by package, the top N of each, as shares of the busy
 * samples ((idle) left out). Samples are counted, not their time deltas: on a loaded machine a
 * delta also holds the time the process waited for a core.
 *   npx tsx test/bench/cpu-profile.ts FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<package>, dist/<dir> of pmc, node:<internal>, or V8's (program), (garbage collector)... */
function area(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module) return module[1]!;
  const own = /\/dist\/([^/]+)\//.exec(url);
  if (own) return `pmc ${own[1]}`;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  return url;
}

function top(title: string, totals: Map<string, number>, busy: number, count: number): void {
  console.log(`\n## ${title}`);
  for (const [key, samples] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    console.log(`${String(samples).padStart(6)} ${(100 * samples / busy).toFixed(1).padStart(5)}%  ${key}`);
  }
}

function add(totals: Map<string, number>, key: string, samples: number): void {
  totals.set(key, (totals.get(key) ?? 0) + samples);
}

const [file, countArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpu-profile.ts FILE.cpuprofile [N]');
  process.exit(2);
}
const count = countArg === undefined ? 30 : Number(countArg);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfSamples = new Map<number, number>();
for (const id of profile.samples) selfSamples.set(id, (selfSamples.get(id) ?? 0) + 1);

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
const byArea = new Map<string, number>();
let busy = 0;
for (const [id, samples] of selfSamples) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (functionName === '(idle)') continue;
  const short = url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/');
  add(byFunction, `${functionName || '(anonymous)'}  ${short}${url ? `:${lineNumber + 1}` : ''}`, samples);
  add(byFile, short || functionName, samples);
  add(byArea, area(url, functionName), samples);
  busy += samples;
}
console.log(`${file}: ${busy} busy samples of ${profile.samples.length}`);
top('self samples by package', byArea, busy, count);
top('self samples by file', byFile, busy, count);
top('self samples by function', byFunction, busy, count);
