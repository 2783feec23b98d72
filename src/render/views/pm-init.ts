import type { CheckStatus, InitCheck, InitResult } from '../../ops/pm/init.js';
import { describePlan } from '../../ops/engine/plan.js';
import type { ViewOptions } from '../output.js';
import type { Style } from '../style.js';

function paint(status: CheckStatus, s: Style): string {
  const text = status.padEnd(5);
  if (status === 'FAIL') return s.bad(text);
  if (status === 'WARN') return s.warn(text);
  return s.ok(text);
}

/** The checks node by node, each with its fix; then the fix plan (dry run) or what the fixes did. */
export function initView(result: InitResult, opts: ViewOptions): string {
  const s = opts.style;
  const lines: string[] = [];
  const width = Math.max(...result.checks.map((c) => c.check.length));
  for (const node of [...new Set(result.checks.map((c) => c.node))]) {
    lines.push(s.bold(node));
    for (const c of result.checks.filter((x) => x.node === node)) {
      lines.push(`  ${paint(c.status, s)} ${c.check.padEnd(width)}  ${c.detail}`);
      if (c.fix && (c.status === 'FAIL' || c.status === 'WARN')) lines.push(`  ${' '.repeat(6 + width)}  ${s.dim('fix:')} ${fixText(c, result)}`);
    }
  }
  const failedSteps = result.applied.filter((r) => !r.ok);
  if (result.mode === 'dry-run') lines.push('', `${s.bold('dry run, nothing changed:')} ${describePlan(result.plan)}`);
  for (const r of failedSteps) lines.push(s.bad(`fix failed on ${r.step.node}: ${r.step.why}: ${r.error}`));
  lines.push(summary(result.checks, s));
  return lines.join('\n');
}

function fixText(c: InitCheck, result: InitResult): string {
  if (c.steps.length === 0 || c.status === 'WARN') return c.fix!;
  return result.mode === 'fix' ? `${c.fix} (--fix did not repair it)` : `${c.fix} (pmc pm init --fix does this)`;
}

function summary(checks: readonly InitCheck[], s: Style): string {
  const count = (status: CheckStatus) => checks.filter((c) => c.status === status).length;
  const nodes = new Set(checks.map((c) => c.node)).size;
  const text = `${nodes} node${nodes === 1 ? '' : 's'}: ${count('PASS')} passed, ${count('FIXED')} fixed, ${count('WARN')} warnings, ${count('FAIL')} failed`;
  return count('FAIL') ? s.bad(text) : count('WARN') ? s.warn(text) : s.ok(text);
}
