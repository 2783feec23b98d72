// main's splitSections as of 99bf34b, kept verbatim as the oracle the
// rewritten one in src/probe/sections.ts is compared with (test/unit/probe/same-as-main.test.ts).
import { ESCAPE, MARKER } from '../../../../src/probe/script.js';

export interface Section {
  name: string;
  stdout: string;
  stderr: string;
  /** undefined when the output stopped before the section's end marker (truncated). */
  exitCode: number | undefined;
}

export interface SplitOutput {
  /** In output order; a name seen twice keeps the last. */
  sections: Map<string, Section>;
  problems: string[];
}

const BEGIN = `${MARKER} begin `;
const STDERR = `${MARKER} stderr `;
const END = new RegExp(`^${MARKER} end (.*) (\\d+)$`);

/**
 * Splits probe output (see script.ts for the framing) into sections. Output cut off anywhere
 * (a timeout, a dropped connection) still yields every section up to the cut, the last one
 * without an exit code.
 */
export function splitSections(output: string): SplitOutput {
  const sections = new Map<string, Section>();
  const problems: string[] = [];
  let current: { name: string; stdout: string[]; stderr: string[] | undefined } | undefined;
  let stray = 0;

  const close = (exitCode: number | undefined): void => {
    if (!current) return;
    sections.set(current.name, {
      name: current.name,
      stdout: current.stdout.join('\n'),
      stderr: current.stderr?.join('\n') ?? '',
      exitCode,
    });
    current = undefined;
  };

  for (const line of output.split('\n')) {
    if (line.startsWith(BEGIN)) {
      close(undefined);
      current = { name: line.slice(BEGIN.length), stdout: [], stderr: undefined };
      continue;
    }
    // The newline printed before these markers is the line break that join() puts back, so
    // a body is reproduced exactly, with or without its own final newline.
    if (current && line === STDERR + current.name) {
      current.stderr = [];
      continue;
    }
    const end = END.exec(line);
    if (end && current && end[1] === current.name) {
      close(Number(end[2]));
      continue;
    }
    if (line.startsWith(MARKER)) {
      problems.push(`probe output: unexpected marker ${JSON.stringify(line)}`);
      continue;
    }
    const text = line.startsWith(ESCAPE) ? line.slice(ESCAPE.length) : line;
    if (current) (current.stderr ?? current.stdout).push(text);
    else if (text.trim() !== '') stray++;
  }
  close(undefined);
  if (stray > 0) problems.push(`probe output: ${stray} line(s) outside any section ignored`);
  return { sections, problems };
}
