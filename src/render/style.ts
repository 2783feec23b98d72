/**
 * Colour is used only on a terminal, and never when NO_COLOR is set (no-color.org) or
 * --no-color is given. Everything that colours text takes the Style, so output written to a
 * pipe or compared in tests is plain.
 */
export interface Style {
  enabled: boolean;
  ok(text: string): string;
  warn(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

export function colorWanted(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv, flag: boolean | undefined): boolean {
  if (flag === false) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (flag === true) return true;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

const plain = (t: string): string => t;

export const plainStyle: Style = { enabled: false, ok: plain, warn: plain, bad: plain, dim: plain, bold: plain };

/** chalk is loaded only for colour, so `pmc --help` and output to a pipe never load it. */
export async function makeStyle(enabled: boolean): Promise<Style> {
  if (!enabled) return plainStyle;
  const { Chalk } = await import('chalk');
  const c = new Chalk({ level: 1 });
  return {
    enabled,
    ok: (t) => c.green(t),
    warn: (t) => c.yellow(t),
    bad: (t) => c.red(t),
    dim: (t) => c.dim(t),
    bold: (t) => c.bold(t),
  };
}
