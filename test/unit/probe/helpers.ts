import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

export function fixture(path: string): string {
  return readFileSync(FIXTURES + path, 'utf8');
}

/** A file copied verbatim from the real cluster (test/fixtures/real). */
export function real(name: string): string {
  return fixture(`real/${name}`);
}

export function fixturePath(path: string): string {
  return FIXTURES + path;
}

/**
 * The real scenario files (disconnected.*, resync.*, splitbrain.*) hold /proc/drbd, then
 * `drbdadm status`, then events2, then (split brain only) kernel log lines.
 */
export function scenario(name: string): { procDrbd: string; status: string; events2: string; kernelLog: string } {
  const lines = real(name).split('\n');
  const statusAt = lines.findIndex((l) => /^\S+ role:/.test(l));
  const events2At = lines.findIndex((l) => l.startsWith('exists '));
  const pick = (from: number, to: number) => lines.slice(from, to).map((l) => `${l}\n`).join('');
  return {
    procDrbd: pick(0, statusAt),
    status: pick(statusAt, events2At),
    events2: lines.filter((l) => l.startsWith('exists ')).map((l) => `${l}\n`).join(''),
    kernelLog: lines.filter((l) => l.startsWith('[')).map((l) => `${l}\n`).join(''),
  };
}

/**
 * One section framed exactly as the probe script's pmc_section prints it (the script test
 * checks the real script against the same parser).
 */
export function frame(name: string, stdout: string, exitCode = 0, stderr = ''): string {
  const escape = (text: string) => text.split('\n').map((l) => (l.startsWith('@') ? `@-${l}` : l)).join('\n');
  const errorPart = stderr === '' ? '' : `\n@@PMC@@ stderr ${name}\n${escape(stderr)}`;
  return `@@PMC@@ begin ${name}\n${escape(stdout)}${errorPart}\n@@PMC@@ end ${name} ${exitCode}\n`;
}

/**
 * `lvm fullreport` as the probe asks for it, from the real separate vgs and lvs reports: one
 * report entry per VG holding both its "vg" and "lv" rows (the lab capture
 * probe.new.pm-1.txt has the real thing).
 */
export function lvmFullreport(vgsJson = real('vgs-json.txt'), lvsJson = real('lvs-json.txt')): string {
  const vg = (JSON.parse(vgsJson) as { report: { vg: unknown[] }[] }).report.flatMap((r) => r.vg);
  const lv = (JSON.parse(lvsJson) as { report: { lv: unknown[] }[] }).report.flatMap((r) => r.lv);
  return `${JSON.stringify({ report: [{ vg, pv: [], lv, pvseg: [], seg: [] }] }, null, 2)}\n`;
}

/** One command of a virsh session: its section name and what `virsh CMD` alone prints. */
export interface SessionCommand {
  name: string;
  stdout: string;
  stderr?: string;
}

/**
 * A virsh session's section as the probe script frames it (see src/probe/virsh-session.ts and
 * the real capture probe.new.pm-1.txt): before each command `echo --err M NAME; echo M NAME`,
 * and virsh's newline after every command's output, echo's included.
 */
export function virshSession(commands: SessionCommand[], exitCode = 0, mark = '@@PMC@@.tmp.Xy12Ab34Cd'): string {
  const stdout = commands.map((c) => `\n${mark} ${c.name}\n${c.stdout}`).join('');
  const stderr = commands.map((c) => `error: ${mark} ${c.name}\n${c.stderr ?? ''}`).join('');
  return frame(`virsh:${commands[0]!.name}`, stdout, exitCode, stderr);
}
