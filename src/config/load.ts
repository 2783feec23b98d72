import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { core } from 'zod';
import { PmcError } from '../util/errors.js';
import { INSTALL_DIR } from '../util/install.js';
import { findConfig } from './find.js';
import { configSchema, type ParsedConfig } from './schema.js';

type ParsedNode = ParsedConfig['nodes'][number];
type ParsedSsh = ParsedConfig['ssh'];

/** A node after loading: paths expanded, known_hosts always a list. */
export interface NodeConfig extends Omit<ParsedNode, 'ssh'> {
  ssh?: Omit<NonNullable<ParsedNode['ssh']>, 'knownHosts'> & { knownHosts?: string[] };
}

/** The loaded configuration: defaults applied, every path absolute. */
export interface Config extends Omit<ParsedConfig, 'ssh' | 'nodes' | 'isoStore' | 'imageStore'> {
  /** The file the configuration was read from. */
  file: string;
  nodes: NodeConfig[];
  ssh: Omit<ParsedSsh, 'knownHosts'> & { knownHosts: string[] };
  /** Absolute path of the ISO store on the manager. */
  isoStore: string;
  imageStore: string;
}

/**
 * pmc.yaml is a few KiB even for a hundred nodes; anything much larger is the wrong file, and
 * reading it whole could take the manager's memory (--config /dev/zero).
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** YAML alias expansions allowed: plenty for shared SSH settings, far too few for an alias bomb. */
export const MAX_CONFIG_ALIASES = 1000;

export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const file = findConfig(explicit, env);
  return parseConfig(readConfigFile(file), file, env);
}

/**
 * Reads the configuration file, refusing what is not a regular file (a FIFO would block, a
 * device could be endless) and what is larger than MAX_CONFIG_BYTES, before reading it whole.
 */
function readConfigFile(file: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new PmcError('PMC_E_CONFIG_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, 'check the file permissions');
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new PmcError('PMC_E_CONFIG_NOT_FILE', `${file} is ${describeFileType(stat)}, not a regular file`, 'give --config the path of your pmc.yaml');
    }
    const tooLarge = () => new PmcError('PMC_E_CONFIG_TOO_LARGE', `${file} is larger than ${MAX_CONFIG_BYTES / 1024} KiB: not a pmc.yaml`,
      'give --config the path of your pmc.yaml');
    if (stat.size > MAX_CONFIG_BYTES) throw tooLarge();
    // The file may grow after the check: read at most one byte more than allowed.
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > MAX_CONFIG_BYTES) throw tooLarge();
    return buffer.toString('utf8', 0, length);
  } catch (err) {
    if (err instanceof PmcError) throw err;
    throw new PmcError('PMC_E_CONFIG_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, 'check the file permissions');
  } finally {
    closeSync(fd);
  }
}

function describeFileType(stat: import('node:fs').Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Parses and validates config text; every error names file:line:column and the key. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // Warnings too: an unknown tag (!foo) would otherwise be dropped silently.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    // The first problem only: the ones after it usually follow from it (an unclosed bracket).
    const first = problems[0]!;
    const pos = lineCounter.linePos(first.pos[0]);
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more after it)` : '';
    throw new PmcError('PMC_E_CONFIG_SYNTAX', `${file}:${pos.line}:${pos.col}: ${first.message.split('\n')[0]}${more}`, 'fix the YAML syntax at that line');
  }
  const result = configSchema.safeParse(toPlainData(doc, file) ?? {});
  if (!result.success) {
    // One line per value: zod may report several issues for one (1e99 is too big for an int and for a port).
    const issues = result.error.issues.filter((issue, i, all) => all.findIndex((o) => o.path.map(String).join('\0') === issue.path.map(String).join('\0')) === i);
    const lines = issues
      .map((issue) => describeIssue(issue, doc, lineCounter, file))
      .sort((a, b) => a.line - b.line)
      .map((d) => d.text);
    throw new PmcError('PMC_E_CONFIG_INVALID', lines.join('\n'),
      `every key is documented in ${join(INSTALL_DIR, 'etc', 'pmc.yaml')}`);
  }
  const parsed = result.data;
  const base = dirname(file);
  const expand = (p: string) => expandPath(p, base, env);
  return {
    ...parsed,
    file,
    isoStore: parsed.isoStore ? expand(parsed.isoStore) : join(INSTALL_DIR, 'iso'),
    imageStore: parsed.imageStore ? expand(parsed.imageStore) : join(INSTALL_DIR, 'images'),
    ssh: {
      ...parsed.ssh,
      identityFiles: parsed.ssh.identityFiles.map(expand),
      knownHosts: [parsed.ssh.knownHosts].flat().map(expand),
    },
    nodes: parsed.nodes.map(({ ssh, ...n }) => (ssh ? {
      ...n,
      ssh: {
        ...ssh,
        identityFiles: ssh.identityFiles?.map(expand),
        knownHosts: ssh.knownHosts === undefined ? undefined : [ssh.knownHosts].flat().map(expand),
      },
    } : n)),
  };
}

/** The document as plain data; an alias without anchor or one that expands too much is refused. */
function toPlainData(doc: Document, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_CONFIG_ALIASES });
  } catch (err) {
    const message = (err as Error).message.split('\n')[0];
    throw new PmcError('PMC_E_CONFIG_ALIAS', `${file}: ${/excessive alias/i.test(message) ? `its YAML aliases expand to more than ${MAX_CONFIG_ALIASES} nodes` : message}`,
      'define each anchor (&name) before its aliases (*name), and do not nest aliases');
  }
}

export function expandPath(p: string, base: string, env: NodeJS.ProcessEnv = process.env): string {
  if (p === '~' || p.startsWith('~/')) return join(env.HOME ?? homedir(), p.slice(1));
  return isAbsolute(p) ? p : resolve(base, p);
}

function describeIssue(issue: core.$ZodIssue, doc: Document, lc: LineCounter, file: string): { line: number; text: string } {
  const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  let offset = nodeOffset(doc, path);
  let key = formatPath(path);
  let message: string;
  if (issue.code === 'unrecognized_keys') {
    const unknown = issue.keys[0]!;
    key = formatPath([...path, unknown]);
    offset = keyOffset(doc, path, unknown) ?? offset;
    message = `unknown key "${unknown}"${allowedKeys(path)}`;
  } else if (issue.code === 'invalid_type' && !doc.hasIn(path)) {
    message = `missing required key (expected ${issue.expected})`;
  } else {
    message = issue.message.replace(/^Invalid input: /, '');
  }
  const pos = offset === undefined ? undefined : lc.linePos(offset);
  return { line: pos?.line ?? 0, text: `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${key || '(top level)'}: ${message}` };
}

function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** Offset of the value at path, or of its nearest existing parent. */
function nodeOffset(doc: Document, path: ReadonlyArray<string | number>): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return range[0];
  }
  return undefined;
}

function keyOffset(doc: Document, path: ReadonlyArray<string | number>, key: string): number | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === key);
  return isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
}

/** The keys allowed where an unknown key was found, so the fix is obvious. */
function allowedKeys(path: ReadonlyArray<string | number>): string {
  let schema: unknown = configSchema;
  for (const k of path) {
    schema = unwrap(schema);
    const def = (schema as { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } }).def;
    if (def?.type === 'object' && typeof k === 'string') schema = def.shape?.[k];
    else if (def?.type === 'array' && typeof k === 'number') schema = def.element;
    else return '';
  }
  const shape = (unwrap(schema) as { def?: { shape?: Record<string, unknown> } }).def?.shape;
  return shape ? ` (allowed: ${Object.keys(shape).join(', ')})` : '';
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { type?: string; innerType?: unknown; in?: unknown; schema?: unknown } };
  for (let i = 0; i < 10 && s?.def; i++) {
    const def = s.def;
    if (def.type === 'default' || def.type === 'optional' || def.type === 'nullable') s = def.innerType as typeof s;
    else if (def.type === 'pipe') s = def.in as typeof s;
    else break;
  }
  return s;
}
