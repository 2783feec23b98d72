// main's drbd-config parser as of 58ae3de, kept verbatim as the oracle the
// rewritten parser in src/probe/parsers/drbd-config.ts is compared with (test/unit/probe/same-as-main.test.ts).
import type { DrbdHost, DrbdResourceConfig, Parsed } from '../../../../src/probe/types.js';

/**
 * DRBD configuration text: `drbdadm dump all` (8.4 and 9 layouts), raw `/etc/drbd.d/*.res`
 * files and `drbdsetup show`. All of them are the same grammar: words ended by `;` and named
 * blocks in braces, `#` comments, `"quoted"` words. They differ in where things sit:
 *
 * - the old bash tool writes `device /dev/drbdN minor N; disk ...; meta-disk internal;` at the
 *   top of the resource and only `address IP:PORT;` inside each `on <host> { }`;
 * - drbdadm 8.4-style dump repeats device/disk inside every `on` block;
 * - DRBD 9 adds `node-id`, `volume N { }` blocks, and may give addresses in
 *   `connection { host A address ipv4 IP:PORT; ... }` instead of in the `on` blocks.
 *
 * So every host takes the resource-level values and overrides them with its own, per volume.
 */

interface Statement {
  words: string[];
  /** Present for `name words { ... }`, absent for `name words;`. */
  block: Statement[] | undefined;
  line: number;
}

interface VolumeValues {
  device?: string;
  minor?: number;
  disk?: string;
}

export function parseDrbdConfig(text: string, sourceFile?: string): Parsed<DrbdResourceConfig[]> {
  const where = sourceFile ?? 'drbdadm dump';
  const problems: string[] = [];
  const statements = parseStatements(text, problems, where);
  const definedIn = dumpedConfigFiles(text);

  const common = statements.find((s) => s.words[0] === 'common' && s.block);
  const commonAllowTwoPrimaries = common ? allowTwoPrimariesIn(common.block!) : undefined;

  const resources: DrbdResourceConfig[] = [];
  for (const statement of statements) {
    const keyword = statement.words[0];
    if (keyword === 'resource' && statement.block && statement.words[1] !== undefined) {
      const name = statement.words[1];
      resources.push(interpretResource(
        name, statement.block, commonAllowTwoPrimaries, definedIn.get(name) ?? sourceFile, problems, where));
    } else if (!['common', 'global', 'include', 'skip'].includes(keyword ?? '')) {
      problems.push(`${where}:${statement.line}: unexpected ${JSON.stringify(statement.words.join(' '))} at top level`);
    }
  }
  return { value: resources, problems };
}

/**
 * `drbdsetup show` prints what the kernel runs with (non-default options only). Returns, per
 * resource, whether allow-two-primaries is on in any of its net sections.
 */
export function parseDrbdsetupShow(text: string): Parsed<Map<string, boolean>> {
  const problems: string[] = [];
  const live = new Map<string, boolean>();
  for (const statement of parseStatements(text, problems, 'drbdsetup show')) {
    if (statement.words[0] === 'resource' && statement.words[1] !== undefined && statement.block) {
      live.set(statement.words[1], allowTwoPrimariesIn(statement.block) ?? false);
    }
  }
  return { value: live, problems };
}

function interpretResource(
  name: string,
  body: Statement[],
  commonAllowTwoPrimaries: boolean | undefined,
  configFile: string | undefined,
  problems: string[],
  where: string,
): DrbdResourceConfig {
  const resourceVolumes = volumesIn(body);
  const volumeNumbers = new Set(resourceVolumes.keys());
  const hosts: DrbdHost[] = [];

  for (const statement of body) {
    const keyword = statement.words[0];
    if (keyword === 'on' && statement.block) {
      const hostVolumes = volumesIn(statement.block);
      for (const n of hostVolumes.keys()) volumeNumbers.add(n);
      const volume0 = inherit(resourceVolumes.get(0), hostVolumes.get(0));
      const address = statement.block.find((s) => s.words[0] === 'address');
      const nodeId = statement.block.find((s) => s.words[0] === 'node-id')?.words[1];
      hosts.push({
        name: statement.words[1] ?? '',
        nodeId: nodeId !== undefined && /^\d+$/.test(nodeId) ? Number(nodeId) : undefined,
        ...parseAddress(address?.words.slice(1) ?? []),
        ...deviceAndMinor(volume0),
        disk: volume0.disk,
      });
    } else if (keyword === 'floating' || keyword === 'stacked-on-top-of') {
      problems.push(`${where}:${statement.line}: resource ${name}: "${keyword}" sections are not supported`);
    }
  }

  for (const connection of body.filter((s) => s.words[0] === 'connection' && s.block)) {
    applyConnectionAddresses(connection.block!, hosts);
  }

  if (hosts.length === 0) problems.push(`${where}: resource ${name} has no "on <host>" section`);
  if (volumeNumbers.size > 1) {
    problems.push(`${where}: resource ${name} has ${volumeNumbers.size} volumes; pmc uses volume 0 only`);
  }
  return {
    name,
    configFile,
    hosts,
    allowTwoPrimaries: allowTwoPrimariesIn(body) ?? commonAllowTwoPrimaries ?? false,
    volumeCount: volumeNumbers.size,
  };
}

/** DRBD 9 `connection { host A address ipv4 IP:PORT; host B port P; }`, also inside `path { }`. */
function applyConnectionAddresses(connection: Statement[], hosts: DrbdHost[]): void {
  const hostLines = connection.flatMap((s) =>
    s.words[0] === 'path' && s.block ? s.block.filter((p) => p.words[0] === 'host') : s.words[0] === 'host' ? [s] : []);
  for (const line of hostLines) {
    const host = hosts.find((h) => h.name === line.words[1]);
    if (!host) continue;
    const rest = line.words.slice(2);
    if (rest[0] === 'address') {
      const { address, port } = parseAddress(rest.slice(1));
      host.address ??= address;
      host.port ??= port;
    } else if (rest[0] === 'port' && /^\d+$/.test(rest[1] ?? '')) {
      host.port ??= Number(rest[1]);
    }
  }
}

/** Volume 0 is implicit: device/disk written directly in a resource or `on` block. */
function volumesIn(body: Statement[]): Map<number, VolumeValues> {
  const volumes = new Map<number, VolumeValues>();
  const implicit = volumeValues(body);
  if (Object.keys(implicit).length > 0) volumes.set(0, implicit);
  for (const statement of body) {
    if (statement.words[0] === 'volume' && statement.block && /^\d+$/.test(statement.words[1] ?? '')) {
      const number = Number(statement.words[1]);
      volumes.set(number, { ...volumes.get(number), ...volumeValues(statement.block) });
    }
  }
  return volumes;
}

/** A host's own device (path or minor) replaces the resource's as a whole, never half of it. */
function inherit(resource: VolumeValues | undefined, host: VolumeValues | undefined): VolumeValues {
  const deviceFrom = host?.device !== undefined || host?.minor !== undefined ? host : resource;
  return { device: deviceFrom?.device, minor: deviceFrom?.minor, disk: host?.disk ?? resource?.disk };
}

function volumeValues(body: Statement[]): VolumeValues {
  const values: VolumeValues = {};
  for (const statement of body) {
    if (statement.block) continue; // `disk { options }` is not the backing disk
    const [keyword, ...rest] = statement.words;
    if (keyword === 'device') {
      const minorAt = rest.indexOf('minor');
      if (minorAt >= 0 && /^\d+$/.test(rest[minorAt + 1] ?? '')) values.minor = Number(rest[minorAt + 1]);
      const path = rest.find((word, i) => word !== 'minor' && (minorAt < 0 || i !== minorAt + 1));
      if (path !== undefined) values.device = path;
    } else if (keyword === 'disk' && rest[0] !== undefined && rest[0] !== 'none') {
      values.disk = rest[0];
    }
  }
  return values;
}

/** `device /dev/drbd10` implies minor 10 and `device minor 10` implies /dev/drbd10. */
function deviceAndMinor(volume: VolumeValues): { device: string | undefined; minor: number | undefined } {
  const minorFromPath = /^\/dev\/drbd(\d+)$/.exec(volume.device ?? '')?.[1];
  const minor = volume.minor ?? (minorFromPath !== undefined ? Number(minorFromPath) : undefined);
  const device = volume.device ?? (minor !== undefined ? `/dev/drbd${minor}` : undefined);
  return { device, minor };
}

/** `address [ipv4|ipv6|...] 10.99.0.11:7788` or `[fd00::1]:7788`. */
function parseAddress(words: string[]): { address: string | undefined; port: number | undefined } {
  const spec = words.at(-1) ?? '';
  const m = /^\[(.+)\]:(\d+)$/.exec(spec) ?? /^([^:]+):(\d+)$/.exec(spec);
  return m ? { address: m[1], port: Number(m[2]) } : { address: undefined, port: undefined };
}

/**
 * `allow-two-primaries;` (8.4 flag form) and `allow-two-primaries yes;` both mean yes. Looks into
 * nested sections too (DRBD 9 connections, drbdsetup show's connection blocks); undefined when
 * no net section says anything, so the caller can fall back to `common`.
 */
function allowTwoPrimariesIn(body: Statement[]): boolean | undefined {
  let result: boolean | undefined;
  for (const statement of body) {
    if (!statement.block) continue;
    if (statement.words[0] === 'net') {
      const option = statement.block.find((s) => s.words[0] === 'allow-two-primaries');
      if (option) result = (result ?? false) || option.words[1] === undefined || option.words[1] === 'yes';
    } else if (statement.words[0] !== 'on' && statement.words[0] !== 'disk') {
      const nested = allowTwoPrimariesIn(statement.block);
      if (nested !== undefined) result = (result ?? false) || nested;
    }
  }
  return result;
}

/** drbdadm dump writes `# defined at /etc/drbd.d/x.res:1` right before each `resource x {`. */
function dumpedConfigFiles(text: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of text.matchAll(/^# defined at (.+):\d+\s*\n\s*resource\s+"?([^\s"{]+)"?/gm)) {
    files.set(m[2]!, m[1]!);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Tokens and statements

function parseStatements(text: string, problems: string[], where: string): Statement[] {
  const tokens = tokenize(text, problems, where);
  let position = 0;

  const block = (depth: number): Statement[] => {
    const statements: Statement[] = [];
    let words: string[] = [];
    let line = 0;
    while (position < tokens.length) {
      const token = tokens[position++]!;
      if (token.kind === 'word') {
        if (words.length === 0) line = token.line;
        words.push(token.text);
      } else if (token.kind === ';') {
        if (words.length > 0) statements.push({ words, block: undefined, line });
        words = [];
      } else if (token.kind === '{') {
        if (words.length === 0) line = token.line;
        statements.push({ words, block: block(depth + 1), line });
        words = [];
      } else if (depth > 0) {
        if (words.length > 0) problems.push(`${where}:${line}: missing ";" after ${JSON.stringify(words.join(' '))}`);
        return statements;
      } else {
        problems.push(`${where}:${token.line}: unmatched "}"`);
      }
    }
    if (words.length > 0) problems.push(`${where}:${line}: missing ";" after ${JSON.stringify(words.join(' '))}`);
    if (depth > 0) problems.push(`${where}: missing "}" at end of input`);
    return statements;
  };
  return block(0);
}

interface Token {
  kind: 'word' | '{' | '}' | ';';
  text: string;
  line: number;
}

function tokenize(text: string, problems: string[], where: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === '{' || c === '}' || c === ';') {
      tokens.push({ kind: c, text: c, line });
      i++;
      continue;
    }
    if (c === '"') {
      const start = line;
      let value = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        if (text[i] === '\n') line++;
        value += text[i++];
      }
      if (i >= text.length) problems.push(`${where}:${start}: unterminated string`);
      i++;
      tokens.push({ kind: 'word', text: value, line: start });
      continue;
    }
    let word = '';
    while (i < text.length && !/[\s{};#"]/.test(text[i]!)) word += text[i++];
    tokens.push({ kind: 'word', text: word, line });
  }
  return tokens;
}
