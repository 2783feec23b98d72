import { ESCAPE, MARKER } from './script.js';

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

/** One part (stdout or stderr) of the section being read. */
class Part {
  /**
   * While every line so far is plain and follows the one before, the part is the output
   * between `start` and `end`, and no line is copied; `lines` takes over after the first
   * escaped or left-out line.
   */
  private start = -1;
  private end = -1;
  private lines: string[] | undefined;

  constructor(private readonly output: string) {}

  /** A line taken as it is: the output from `from` to `to`. */
  plain(from: number, to: number): void {
    if (this.lines) this.lines.push(this.output.slice(from, to));
    else {
      if (this.start < 0) this.start = from;
      this.end = to;
    }
  }

  /** A line that is not the output as it stands: an escaped one, unescaped. */
  text(line: string): void {
    this.copied().push(line);
  }

  /** A line of the output that is not part of the body (an unexpected marker). */
  gap(): void {
    this.copied();
  }

  body(): string {
    if (this.lines) return this.lines.join('\n');
    return this.start < 0 ? '' : this.output.slice(this.start, this.end);
  }

  private copied(): string[] {
    this.lines ??= this.start < 0 ? [] : this.output.slice(this.start, this.end).split('\n');
    return this.lines;
  }
}

/** The first character of MARKER and of ESCAPE: a line that starts otherwise is a plain body line. */
const AT = 0x40;

/**
 * Splits probe output (see script.ts for the framing) into sections. Output cut off anywhere
 * (a timeout, a dropped connection) still yields every section up to the cut, the last one
 * without an exit code. A body is a slice of the output (no copy per line) unless it holds
 * escaped lines.
 */
export function splitSections(output: string): SplitOutput {
  const sections = new Map<string, Section>();
  const problems: string[] = [];
  let current: { name: string; stdout: Part; stderr: Part | undefined } | undefined;
  let stray = 0;

  const close = (exitCode: number | undefined): void => {
    if (!current) return;
    sections.set(current.name, {
      name: current.name,
      stdout: current.stdout.body(),
      stderr: current.stderr?.body() ?? '',
      exitCode,
    });
    current = undefined;
  };

  // Line by line as output.split('\n') would cut it: a final newline ends in an empty line.
  for (let from = 0; from <= output.length;) {
    const newline = output.indexOf('\n', from);
    const to = newline === -1 ? output.length : newline;
    const lineFrom = from;
    from = to + 1;
    if (output.charCodeAt(lineFrom) !== AT) {
      if (current) (current.stderr ?? current.stdout).plain(lineFrom, to);
      else if (output.slice(lineFrom, to).trim() !== '') stray++;
      continue;
    }
    const line = output.slice(lineFrom, to);
    if (line.startsWith(BEGIN)) {
      close(undefined);
      current = { name: line.slice(BEGIN.length), stdout: new Part(output), stderr: undefined };
      continue;
    }
    // The newline printed before these markers is the line break that join() puts back, so
    // a body is reproduced exactly, with or without its own final newline.
    if (current && line === STDERR + current.name) {
      current.stderr = new Part(output);
      continue;
    }
    const end = END.exec(line);
    if (end && current && end[1] === current.name) {
      close(Number(end[2]));
      continue;
    }
    if (line.startsWith(MARKER)) {
      problems.push(`probe output: unexpected marker ${JSON.stringify(line)}`);
      if (current) (current.stderr ?? current.stdout).gap();
      continue;
    }
    const escaped = line.startsWith(ESCAPE);
    const text = escaped ? line.slice(ESCAPE.length) : line;
    if (current) {
      if (escaped) (current.stderr ?? current.stdout).text(text);
      else (current.stderr ?? current.stdout).plain(lineFrom, to);
    } else if (text.trim() !== '') stray++;
  }
  close(undefined);
  if (stray > 0) problems.push(`probe output: ${stray} line(s) outside any section ignored`);
  return { sections, problems };
}
