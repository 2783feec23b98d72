import type { LogEntry } from '../../ops/log/read.js';
import type { ViewOptions } from '../output.js';

/** One line per entry: time (UTC), node, run id, who, what. */
export function logView(entries: LogEntry[], opts: ViewOptions): string {
  const s = opts.style;
  if (entries.length === 0) return s.dim('no pmc entries');
  return entries.map((e) => `${e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}  ${e.node}  ${s.dim(e.run)}  ${e.vm ?? '-'}  ${e.by}  ${e.text}`).join('\n');
}
