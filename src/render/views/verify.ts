import type { VerifyResult } from '../../ops/cluster/verify.js';
import type { ViewOptions } from '../output.js';

export function verifyView(result: VerifyResult, opts: ViewOptions): string {
  const s = opts.style;
  const lines = result.findings.map((f) => {
    const tag = f.severity === 'error' ? s.bad('ERROR') : s.warn('WARNING');
    const where = [f.node, f.vm].filter(Boolean).join('/');
    return `${tag} ${f.code}${where ? ` [${where}]` : ''}: ${f.message}\n  ${s.dim('fix:')} ${f.fix}`;
  });
  const summary = `${result.nodesChecked} nodes and ${result.vmsChecked} VMs checked: ${result.errors} errors, ${result.warnings} warnings`;
  lines.push(result.errors > 0 ? s.bad(summary) : result.warnings > 0 ? s.warn(summary) : s.ok(summary));
  return lines.join('\n');
}
