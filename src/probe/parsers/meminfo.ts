import type { MemoryFacts, Parsed } from '../types.js';

/**
 * Parses /proc/meminfo (`MemTotal:  2027016 kB`; the kernel's kB are KiB). Kernels before 3.14
 * have no MemAvailable; free + buffers + page cache is the usual stand-in there.
 */
export function parseMeminfo(text: string): Parsed<MemoryFacts | undefined> {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (m) kib.set(m[1]!, Number(m[2]));
  }
  const total = kib.get('MemTotal');
  if (total === undefined) return { value: undefined, problems: ['meminfo: no MemTotal line'] };
  const available = kib.get('MemAvailable')
    ?? (kib.get('MemFree') ?? 0) + (kib.get('Buffers') ?? 0) + (kib.get('Cached') ?? 0);
  return { value: { totalBytes: total * 1024, availableBytes: available * 1024 }, problems: [] };
}
