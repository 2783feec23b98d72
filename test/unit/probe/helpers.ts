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
