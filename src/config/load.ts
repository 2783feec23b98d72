import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { core } from 'zod';
import { PmcError } from '../util/errors.js';
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

/** The install's own folder (two levels above this module, in src/ or dist/). */
export const INSTALL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where pmc looks for its configuration, in order. */
export function configCandidates(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit) return [resolve(explicit)];
  if (env.PMC_CONFIG) return [resolve(env.PMC_CONFIG)];
  return [
    resolve('pmc.yaml'),
    join(env.HOME ?? homedir(), '.config', 'pmc', 'pmc.yaml'),
    '/etc/pmc/pmc.yaml',
  ];
}

export function findConfig(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = configCandidates(explicit, env);
  const found = candidates.find((f) => existsSync(f));
  if (!found) {
    const source = explicit ? '--config' : env.PMC_CONFIG ? '$PMC_CONFIG' : undefined;
    throw new PmcError('PMC_E_CONFIG_NOT_FOUND',
      source ? `config file ${candidates[0]} (from ${source}) does not exist` : `no pmc.yaml found (looked at ${candidates.join(', ')})`,
      `copy ${join(INSTALL_DIR, 'etc', 'pmc.yaml')} to one of those places and list your nodes in it`);
  }
  return found;
}

export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const file = findConfig(explicit, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PmcError('PMC_E_CONFIG_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, 'check the file permissions');
  }
  return parseConfig(text, file, env);
}

/** Parses and validates config text; every error names file:line:column and the key. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
    });
    throw new PmcError('PMC_E_CONFIG_SYNTAX', lines.join('\n'), 'fix the YAML syntax at that line');
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    const lines = result.error.issues
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
