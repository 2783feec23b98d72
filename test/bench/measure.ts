import { performance } from 'node:perf_hooks';

/** Runs `fn` `rounds` times and prints the mean time per run and the heap it left grown. */
export function measure<T>(label: string, rounds: number, fn: () => T): T {
  let result!: T;
  const before = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) result = fn();
  const ms = (performance.now() - t0) / rounds;
  const heapMiB = (process.memoryUsage().heapUsed - before) / 1024 ** 2;
  console.log(`${label.padEnd(58)} ${ms.toFixed(2).padStart(9)} ms/run   heap +${heapMiB.toFixed(1)} MiB`);
  return result;
}
