import type { ApplyResult } from '../../ops/engine/execute.js';
import { describePlan } from '../../ops/engine/plan.js';
import type { ViewOptions } from '../output.js';

/** Dry run: the plan. Applied: one line. Failed: where, why, and what was undone. */
export function applyView(result: ApplyResult, opts: ViewOptions): string {
  const s = opts.style;
  if (result.status === 'dry-run') return `${s.bold('dry run, nothing changed:')} ${describePlan(result.plan)}`;
  if (result.status === 'applied') {
    const notes = result.plan.notes.map((n) => `note: ${n}`);
    return [...notes, s.ok(`done: ${result.title} (${result.done.length} steps)`)].join('\n');
  }
  const lines = [s.bad(`failed: ${result.title}`)];
  const failed = result.failed!;
  lines.push(`  step ${result.done.length + 1} on ${failed.step.node}: ${failed.step.why}`);
  lines.push(`  $ ${failed.step.command}`);
  lines.push(`  ${failed.error}`);
  if (result.undone.length === 0) {
    lines.push(result.done.length === 0 ? '  nothing had changed yet' : '  nothing to undo');
  } else {
    lines.push('  undone:');
    for (const u of result.undone) {
      lines.push(`    ${u.ok ? s.ok('ok') : s.bad('FAILED')} ${u.step.node}: ${u.step.why}${u.ok ? '' : ` (${u.error}): fix by hand, then run pmc cluster verify`}`);
    }
  }
  return lines.join('\n');
}
