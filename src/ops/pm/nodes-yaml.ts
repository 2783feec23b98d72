/**
 * Edits the node list of pmc.yaml as text: the YAML document only says where the list and its
 * entries are, and the change is spliced into the operator's text, so every other byte (comments,
 * order, quoting, flow lists, spacing) stays as they wrote it: only the added entry's lines are
 * new, only the removed entry's lines (and the comment right above it) go.
 */
import { isMap, isScalar, isSeq, parseDocument, stringify, type YAMLSeq } from 'yaml';
import { PmcError } from '../../util/errors.js';

export interface NewNode {
  name: string;
  address?: string | undefined;
}

function nodeList(text: string, file: string): YAMLSeq {
  const doc = parseDocument(text);
  const seq = doc.get('nodes', true);
  if (doc.errors.length > 0 || !isSeq(seq) || seq.flow || seq.items.length === 0 || !seq.range) {
    throw new PmcError('PMC_E_CONFIG_INVALID', `${file}: no "nodes:" list to edit`, 'pmc edits the block list under "nodes:" ("- name: ..." lines); edit the file by hand');
  }
  return seq;
}

function entryName(item: unknown): unknown {
  if (!isMap(item)) return undefined;
  const name = item.get('name', true);
  return isScalar(name) ? name.value : undefined;
}

const lineStart = (text: string, offset: number) => text.lastIndexOf('\n', offset - 1) + 1;
/** The offset just past the end of the line holding `offset` (its newline included). */
const nextLine = (text: string, offset: number) => {
  const nl = text.indexOf('\n', offset);
  return nl < 0 ? text.length : nl + 1;
};
/** An item's text range: from its "- " line (and the comment lines right above it) to the end of its last line. */
function itemRange(text: string, item: { range?: [number, number, number] | null | undefined }): [number, number] {
  let start = lineStart(text, item.range![0]);
  while (start > 0) {
    const above = lineStart(text, start - 1);
    if (!text.slice(above, start).trim().startsWith('#')) break;
    start = above;
  }
  return [start, nextLine(text, item.range![1] - 1)];
}

/** The text with `node` appended to the node list, in the layout of its first entry; everything else is kept. */
export function addNodeToYaml(text: string, file: string, node: NewNode): string {
  const seq = nodeList(text, file);
  const first = seq.items[0] as { range?: [number, number, number] };
  const firstLine = text.slice(lineStart(text, first.range![0]), first.range![0]);
  const dash = firstLine.indexOf('-');
  const keyIndent = ' '.repeat(firstLine.length);
  const scalar = (value: string) => stringify(value).trimEnd();
  const entry = `${' '.repeat(dash)}-${' '.repeat(firstLine.length - dash - 1)}name: ${scalar(node.name)}\n`
    + (node.address === undefined ? '' : `${keyIndent}address: ${scalar(node.address)}\n`);
  const last = seq.items.at(-1) as { range?: [number, number, number] };
  const at = nextLine(text, last.range![1] - 1);
  const before = text.slice(0, at);
  return `${before}${before.endsWith('\n') || before === '' ? '' : '\n'}${entry}${text.slice(at)}`;
}

/** The text without the entry of node `name` (and the comment right above it); everything else is kept. */
export function removeNodeFromYaml(text: string, file: string, name: string): string {
  const seq = nodeList(text, file);
  const item = seq.items.find((i) => entryName(i) === name) as { range?: [number, number, number] } | undefined;
  if (!item) throw new PmcError('PMC_E_NODE_UNKNOWN', `node ${JSON.stringify(name)} is not in ${file}`, 'pmc pm ls lists the nodes');
  const [start, end] = itemRange(text, item);
  return text.slice(0, start) + text.slice(end);
}
