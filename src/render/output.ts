import { isPmcError } from '../util/errors.js';
import type { Report } from '../ops/engine/context.js';
import type { Style } from './style.js';


export interface ViewOptions {
  style: Style;
  fields?: readonly string[];
  headers: boolean;
  verbose: boolean;
}

/** Renders a report's data for a person. */
export type View<T> = (data: T, opts: ViewOptions) => string;

export const EXIT = { ok: 0, failed: 1, usage: 2, partial: 3 } as const;

export interface Streams {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processStreams: Streams = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

export function emitReport<T>(report: Report<T>, view: View<T>, opts: ViewOptions & { json: boolean }, streams: Streams): number {
  if (opts.json) {
    streams.out(`${JSON.stringify(report.data, null, 2)}\n`);
  } else {
    const text = view(report.data, opts);
    if (text) streams.out(text.endsWith('\n') ? text : `${text}\n`);
  }
  for (const w of report.warnings) streams.err(`${opts.style.warn('warning:')} ${w}\n`);
  return EXIT[report.status];
}

/**
 * A user error is one line with its code, then the hint. Anything else is a bug in pmc
 * and keeps its stack so it can be reported.
 */
export function emitError(err: unknown, style: Style, verbose: boolean, streams: Streams): number {
  if (isPmcError(err)) {
    const [first, ...rest] = err.message.split('\n');
    streams.err(`${style.bad('pmc: error:')} ${first} [${err.code}]\n`);
    for (const line of rest) streams.err(`  ${line}\n`);
    if (err.hint) streams.err(`  ${style.dim('hint:')} ${err.hint}\n`);
    if (verbose && err.details) streams.err(`${err.details}\n`);
    return err.code === 'PMC_E_USAGE' ? EXIT.usage : EXIT.failed;
  }
  streams.err(`pmc: internal error (this is a bug in pmc, please report it):\n${(err as Error)?.stack ?? String(err)}\n`);
  return 70;
}
