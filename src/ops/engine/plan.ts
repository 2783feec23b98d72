/**
 * Plan, then apply. A mutating operation first computes, as a pure function of the live
 * cluster state, the list of steps it would run; `--dry-run` prints exactly that list, and
 * the executor runs it, undoing the completed steps in reverse order if one fails.
 */
export interface Step {
  /** The node the command runs on. */
  node: string;
  /** The exact shell command (every value in it already quoted). */
  command: string;
  /** Why this step exists, in words an operator understands. */
  why: string;
  /** How to take this step back if a later one fails (run on the same node). */
  undo?: { command: string; why: string };
  /**
   * Data sent to the command's stdin: the output of a command on another node, a local file,
   * or text the plan carries (a file's content is never pasted into the command line).
   */
  input?: { fromNode: string; command: string } | { localFile: string } | { text: string };
  /**
   * A long step (a copy, a resync wait): while it runs, the newest line it prints, or how much
   * of a local input file has been sent, is reported every few seconds.
   */
  progress?: boolean;
  /** Exit codes that count as success besides 0 (e.g. a probe that answers with 1). */
  okExitCodes?: number[];
  timeoutMs?: number;
}

export interface Plan {
  /** One line: what the plan achieves. */
  title: string;
  steps: Step[];
  /** Things the operator should know before applying (e.g. "the clone is only crash-consistent"). */
  notes: string[];
}

/** The dry-run view: every command, the node it runs on, and why, in order. */
export function describePlan(plan: Plan): string {
  const lines = [`${plan.title} (${plan.steps.length} steps)`];
  for (const note of plan.notes) lines.push(`note: ${note}`);
  plan.steps.forEach((step, i) => {
    lines.push(`${String(i + 1).padStart(3)}. [${step.node}] ${step.why}`);
    if (step.input && 'fromNode' in step.input) lines.push(`       [${step.input.fromNode}] $ ${step.input.command} |`);
    if (step.input && 'localFile' in step.input) lines.push(`       [manager] < ${step.input.localFile}`);
    if (step.input && 'text' in step.input) {
      lines.push('       stdin:', ...step.input.text.trimEnd().split('\n').map((line) => `       | ${line}`));
    }
    lines.push(`       $ ${step.command}`);
    if (step.undo) lines.push(`       undo: $ ${step.undo.command}`);
  });
  return lines.join('\n');
}
