import type { ApplyResult } from '../../ops/engine/execute.js';
import { describePlan } from '../../ops/engine/plan.js';
import type { ViewOptions } from '../output.js';

/**
 * Dry run: the plan. Applied: one line. Failed or interrupted: where, why, what was undone,
 * and what remains on which node.
 */
export function applyView(result: ApplyResult, opts: ViewOptions): string {
  const s = opts.style;
  if (result.status === 'dry-run') return `${s.bold('dry run, nothing changed:')} ${describePlan(result.plan)}`;
  if (result.status === 'applied') {
    const notes = result.plan.notes.map((n) => `note: ${n}`);
    return [...notes, s.ok(`done: ${result.title} (${result.done.length} steps)`)].join('\n');
  }
  const lines: string[] = [];
  if (result.failed) {
    const failed = result.failed;
    lines.push(s.bad(`failed: ${result.title}`));
    lines.push(`  step ${failed.index + 1} on ${failed.step.node}: ${failed.step.why}`);
    lines.push(`  $ ${failed.step.command}`);
    lines.push(`  ${failed.error}`);
  } else {
    lines.push(s.bad(`interrupted (${result.interrupted}): ${result.title}`));
    lines.push(`  stopped after ${result.done.length} of ${result.plan.steps.length} steps`);
  }
  if (result.undone.length === 0 && result.remaining.length === 0) {
    lines.push(result.done.length === 0 ? '  nothing had changed yet' : '  nothing to undo');
  }
  if (result.undone.length > 0) {
    lines.push('  undone:');
    for (const u of result.undone) lines.push(`    ${u.ok ? s.ok('ok') : s.bad('FAILED')} ${u.step.node}: ${u.step.why}${u.ok ? '' : ` (${u.error})`}`);
  }
  if (result.remaining.length > 0) {
    lines.push(s.bad('  remains (fix by hand, then run pmc cluster verify):'));
    for (const r of result.remaining) lines.push(`    ${r.node}: ${r.done}; ${r.reason}; to undo: $ ${r.undo}`);
  }
  return lines.join('\n');
}
