import { Chalk, type ChalkInstance } from 'chalk';

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

export function makeStyle(enabled: boolean): Style {
  const c: ChalkInstance = new Chalk({ level: enabled ? 1 : 0 });
  return {
    enabled,
    ok: (t) => c.green(t),
    warn: (t) => c.yellow(t),
    bad: (t) => c.red(t),
    dim: (t) => c.dim(t),
    bold: (t) => c.bold(t),
  };
}

export const plainStyle = makeStyle(false);
