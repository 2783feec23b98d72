/**
 * Plan, then apply. A mutating operation first computes, as a pure function of the live
 * cluster state, the list of steps it would run; `--dry-run` prints exactly that list, and
 * the executor runs it, undoing the completed steps in reverse order of completion if one
 * fails or the operator interrupts.
 *
 * Order: a step runs after the steps it names in `after`; a step without `after` runs after
 * every earlier step, so a plan that declares nothing keeps its plain sequential meaning.
 * Steps whose dependencies are done run at the same time (on different nodes, typically:
 * both nodes' LV and DRBD setup in `vm add`). The list order is always one that could run.
 */
export interface Step {
  /** A name other steps use in `after` (unique within the plan). */
  id?: string;
  /**
   * Ids of the earlier steps this one needs done first; [] for none. Undefined: every earlier
   * step (sequential).
   */
  after?: string[];
  /** The node the command runs on. */
  node: string;
  /** The exact shell command (every value in it already quoted). */
  command: string;
  /** Why this step exists, in words an operator understands. */
  why: string;
  /** How to take this step back if a later one fails (run on the same node). */
  undo?: { command: string; why: string };
  /**
   * Why an interruption must not fall right before this step (a migration's role changes:
   * stopping between them leaves two primaries). When Ctrl-C comes while the step before it
   * runs, this step runs too, and the output says why.
   */
  uninterruptible?: string;
  /**
   * Data sent to the command's stdin: the output of a command on another node, a local file,
   * or text the plan carries (a file's content is never pasted into the command line).
   */
  input?: { fromNode: string; command: string } | { localFile: string } | { text: string };
  /**
   * A long step (a copy, a resync wait): while it runs, the newest line it prints, or how much
   * of a local input file has been sent, is reported every few seconds. With `totalBytes`, the
   * bytes dd reports copied are also shown as a share of it, with the time left at the rate so far.
   */
  progress?: boolean | { totalBytes: number };
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

/**
 * For each step (by index), the indexes of the steps it waits for. Throws on an `after` that
 * names an unknown or later step, or a duplicate id: a planner bug, caught by every test that
 * plans.
 */
export function dependencies(plan: Plan): number[][] {
  const index = new Map<string, number>();
  return plan.steps.map((step, i) => {
    const deps = step.after === undefined ? [...Array(i).keys()] : step.after.map((id) => {
      const at = index.get(id);
      if (at === undefined) throw new Error(`plan "${plan.title}": step ${i + 1} runs after "${id}", which is not an earlier step`);
      return at;
    });
    if (step.id !== undefined) {
      if (index.has(step.id)) throw new Error(`plan "${plan.title}": two steps have the id "${step.id}"`);
      index.set(step.id, i);
    }
    return deps;
  });
}

/** The nodes a plan changes or reads from (a step's input may come from another node). */
export function planNodes(plan: Plan): string[] {
  const nodes = plan.steps.flatMap((s) => [s.node, ...(s.input && 'fromNode' in s.input ? [s.input.fromNode] : [])]);
  return [...new Set(nodes)].sort();
}

/** The dry-run view: every command, the node it runs on, and why, in an order that can run. */
export function describePlan(plan: Plan): string {
  const deps = dependencies(plan);
  const parallel = plan.steps.some((s) => s.after !== undefined);
  const lines = [`${plan.title} (${plan.steps.length} steps${parallel ? '; a step runs once the steps it is after are done, at the same time as others' : ''})`];
  for (const note of plan.notes) lines.push(`note: ${note}`);
  plan.steps.forEach((step, i) => {
    const after = !parallel ? '' : step.after === undefined ? (i > 0 ? ' (after every step above)' : '')
      : ` (after ${deps[i]!.length ? deps[i]!.map((d) => d + 1).join(', ') : 'nothing'})`;
    lines.push(`${String(i + 1).padStart(3)}. [${step.node}] ${step.why}${after}`);
    if (step.uninterruptible) lines.push(`       not interrupted before this step: ${step.uninterruptible}`);
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
