import { MARKER, VIRSH_SESSION_PREFIX } from './script.js';
import type { Section } from './sections.js';

/**
 * The probe asks libvirt in virsh sessions (`virsh -c URI "cmd1; cmd2; ..."`) instead of one
 * virsh per command. Before every command the session runs `echo --err M NAME; echo M NAME`,
 * where M is `@@PMC@@.<random>`, so its stdout is, per section,
 *
 *     "\n"            (virsh ends every command's output with a newline, the echo --err's too)
 *     "M NAME\n"      (echo)
 *     OUTPUT "\n"     (the command; exactly what `virsh CMD` alone prints)
 *
 * and its stderr is "error: M NAME\n" followed by the command's error messages. virsh goes on
 * after a failed command and only exits with the last command's status, so a section's exit
 * code is 1 when virsh reported an error for it, else 0.
 */

interface Mark {
  name: string;
  /** Index of the marker line's first character. */
  start: number;
  /** Index just after the marker line's newline. */
  end: number;
}

/** Replaces every virsh session section by the sections it printed, in place. */
export function expandVirshSessions(sections: Map<string, Section>): Map<string, Section> {
  const expanded = new Map<string, Section>();
  for (const [name, section] of sections) {
    if (!name.startsWith(VIRSH_SESSION_PREFIX)) {
      expanded.set(name, section);
      continue;
    }
    for (const part of splitVirshSession(section, name.slice(VIRSH_SESSION_PREFIX.length))) expanded.set(part.name, part);
  }
  return expanded;
}

/**
 * The sections one session printed. When virsh printed no marker at all (not installed, did
 * not start), the session's failure is the failure of `firstName`, the section it was to begin
 * with. When virsh was stopped (timeout) or the output was cut, the section it was printing
 * gets the session's exit code and the ones it never reached are absent.
 */
export function splitVirshSession(session: Section, firstName: string): Section[] {
  const mark = FIRST_MARK.exec(session.stdout)?.[1];
  if (mark === undefined) return [{ ...session, name: firstName }];
  const outMarks = marks(session.stdout, `${mark} `);
  const errMarks = marks(session.stderr, `error: ${mark} `);
  const errors = new Map<string, string>();
  errMarks.forEach((m, i) => {
    // Anything virsh said before the first marker (while starting) belongs to the first section.
    const before = i === 0 ? session.stderr.slice(0, m.start) : '';
    errors.set(m.name, before + session.stderr.slice(m.end, errMarks[i + 1]?.start ?? session.stderr.length));
  });
  // virsh itself only ever exits 0 or 1; anything else means it was stopped mid-way.
  const completed = session.exitCode === 0 || session.exitCode === 1;
  return outMarks.map((m, i): Section => {
    const next = outMarks[i + 1];
    // The newline before the next marker is the one virsh printed after the echo --err.
    const stdout = session.stdout.slice(m.end, next ? next.start - 1 : session.stdout.length);
    const stderr = errors.get(m.name) ?? '';
    const reported = /^error: /m.test(stderr) ? 1 : 0;
    return { name: m.name, stdout, stderr, exitCode: next || completed ? reported : session.exitCode };
  });
}

const FIRST_MARK = new RegExp(`^\\n*(${MARKER}\\.\\S+) `);

/** The marker lines `<lead>NAME` in text, in order. */
function marks(text: string, lead: string): Mark[] {
  const found: Mark[] = [];
  let at = text.startsWith(lead) ? 0 : nextLine(text, lead, 0);
  while (at >= 0) {
    const newline = text.indexOf('\n', at);
    const lineEnd = newline < 0 ? text.length : newline;
    found.push({ name: text.slice(at + lead.length, lineEnd), start: at, end: Math.min(lineEnd + 1, text.length) });
    at = nextLine(text, lead, lineEnd);
  }
  return found;
}

/** Where the next line that starts with lead begins, searching from index from; -1 if none. */
function nextLine(text: string, lead: string, from: number): number {
  const at = text.indexOf(`\n${lead}`, from);
  return at < 0 ? -1 : at + 1;
}
