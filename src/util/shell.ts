/**
 * Quoting for POSIX shells. Every value placed in a remote command goes through `quote`,
 * so a name like `x;touch /tmp/p` can never become two commands.
 */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function quote(value: string | number): string {
  const s = String(value);
  if (s.length > 0 && SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Joins argv into one shell command line, quoting every word. */
export function commandLine(argv: ReadonlyArray<string | number>): string {
  return argv.map(quote).join(' ');
}
