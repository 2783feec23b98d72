import Table from 'cli-table3';
import { PmcError } from '../util/errors.js';
import type { Style } from './style.js';

/** One column of a table view: how to read a cell from a row, and optionally colour it. */
export interface Column<Row> {
  /** Name used with `-o FIELD,...` and as the JSON-free identifier of the column. */
  field: string;
  header: string;
  value(row: Row): string | number | undefined;
  paint?(row: Row, text: string, style: Style): string;
  align?: 'left' | 'right';
  /** Shown only when asked for with -o. */
  optional?: boolean;
}

export interface TableOptions {
  /** Fields chosen with -o; undefined shows the default columns. */
  fields?: readonly string[];
  headers: boolean;
  style: Style;
}

export function pickColumns<Row>(columns: readonly Column<Row>[], fields: readonly string[] | undefined): Column<Row>[] {
  if (!fields || fields.length === 0) return columns.filter((c) => !c.optional);
  return fields.map((f) => {
    const col = columns.find((c) => c.field === f);
    if (!col) {
      throw new PmcError('PMC_E_USAGE', `unknown field "${f}"`, `fields: ${columns.map((c) => c.field).join(', ')}`);
    }
    return col;
  });
}

const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
  'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
};

/** A plain, borderless table like `virsh list` or `gnt-instance list`: easy to read and to grep. */
export function renderTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[], opts: TableOptions): string {
  const chosen = pickColumns(columns, opts.fields);
  const table = new Table({
    ...(opts.headers ? { head: chosen.map((c) => opts.style.bold(c.header)) } : {}),
    chars: BORDERLESS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
    colAligns: chosen.map((c) => c.align ?? 'left'),
  });
  for (const row of rows) {
    table.push(chosen.map((c) => {
      const raw = c.value(row);
      const text = raw === undefined || raw === '' ? '-' : String(raw);
      return c.paint ? c.paint(row, text, opts.style) : text;
    }));
  }
  if (rows.length === 0) return opts.headers ? chosen.map((c) => c.header).join('  ') : '';
  return table.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}
