/**
 * Edits the node list of pmc.yaml as text, through the YAML document (not the parsed config),
 * so the operator's comments, order, quoting and layout stay as they wrote them: only the
 * added entry is new, only the removed entry's lines go.
 */
import { isMap, isScalar, isSeq, parseDocument, type YAMLSeq } from 'yaml';
import { PmcError } from '../../util/errors.js';

export interface NewNode {
  name: string;
  address?: string | undefined;
}

function nodeList(text: string, file: string): { doc: ReturnType<typeof parseDocument>; seq: YAMLSeq } {
  const doc = parseDocument(text);
  const seq = doc.get('nodes', true);
  if (doc.errors.length > 0 || !isSeq(seq)) {
    throw new PmcError('PMC_E_CONFIG_INVALID', `${file}: no "nodes:" list to edit`, 'pmc edits the block list under "nodes:"; edit the file by hand');
  }
  return { doc, seq };
}

function entryName(item: unknown): unknown {
  if (!isMap(item)) return undefined;
  const name = item.get('name', true);
  return isScalar(name) ? name.value : undefined;
}

/** The text with `node` appended to the node list; everything else is kept. */
export function addNodeToYaml(text: string, file: string, node: NewNode): string {
  const { doc, seq } = nodeList(text, file);
  seq.add(doc.createNode(node.address === undefined ? { name: node.name } : { name: node.name, address: node.address }));
  return String(doc);
}

/** The text without the entry of node `name`; everything else is kept, comments on other entries too. */
export function removeNodeFromYaml(text: string, file: string, name: string): string {
  const { doc, seq } = nodeList(text, file);
  const index = seq.items.findIndex((item) => entryName(item) === name);
  if (index < 0) throw new PmcError('PMC_E_NODE_UNKNOWN', `node ${JSON.stringify(name)} is not in ${file}`, 'pmc pm ls lists the nodes');
  seq.items.splice(index, 1);
  return String(doc);
}
