#!/usr/bin/env node
// A stand-in for `virsh -c URI "cmd; cmd; ..."` printing what the real one printed on the lab
// (test/fixtures/real/probe.new.pm-1.txt): it splits the command string as virsh does
// (vshCommandStringGetArg: '...', "...", \x, ';' or newline between commands), and like virsh
// ends every command's output with a newline, echo --err's included, goes on after a failed
// command and exits with the last command's status.
//
// What it knows lives in $PMC_STAND_IN_VIRSH: version, nodeinfo, list (the --all table), and
// domains/<name>/{xml,dominfo,domstate}, each holding exactly what `virsh CMD` alone prints.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.PMC_STAND_IN_VIRSH ?? '';
const args = process.argv.slice(2);
if (args[0] === '-c') args.splice(0, 2);

function commands(text) {
  const list = [];
  let words = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t') { i++; continue; }
    if (c === ';' || c === '\n') { if (words.length) list.push(words); words = []; i++; continue; }
    let word = '';
    let single = false;
    let double = false;
    while (i < text.length) {
      const ch = text[i];
      if (!single && !double && (ch === ' ' || ch === '\t' || ch === ';' || ch === '\n')) break;
      if (!double && ch === "'") { single = !single; i++; continue; }
      if (!single && ch === '\\') { word += text[i + 1] ?? ''; i += 2; continue; }
      if (!single && ch === '"') { double = !double; i++; continue; }
      word += ch;
      i++;
    }
    words.push(word);
  }
  if (words.length) list.push(words);
  return list;
}

const read = (...path) => readFileSync(join(dir, ...path), 'utf8');
const names = () => readdirSync(join(dir, 'domains')).sort();

/** Runs one command: [stdout, stderr, ok]. stdout is without virsh's newline after it. */
function run([name, ...rest]) {
  const flags = new Set(rest.filter((w) => w.startsWith('--')));
  const domain = rest[rest.indexOf('--domain') + 1];
  const domainFile = (file) => (existsSync(join(dir, 'domains', domain ?? '', file))
    ? [read('domains', domain, file).replace(/\n$/, ''), '', true]
    : ['', `error: failed to get domain '${domain}'\n`, false]);
  switch (name) {
    case 'echo': {
      const text = rest.filter((w) => w !== '--err').join(' ');
      return flags.has('--err') ? ['', `error: ${text}\n`, true] : [text, '', true];
    }
    case 'version': return [read('version').replace(/\n$/, ''), '', true];
    case 'nodeinfo': return [read('nodeinfo').replace(/\n$/, ''), '', true];
    case 'list': return flags.has('--name') ? [names().map((n) => `${n}\n`).join(''), '', true] : [read('list').replace(/\n$/, ''), '', true];
    case 'dumpxml': return domainFile('xml');
    case 'dominfo': return domainFile('dominfo');
    case 'domstate': return domainFile('domstate');
    default: return ['', `error: unknown command: '${name}'\n`, false];
  }
}

let ok = true;
for (const command of commands(args.join(' '))) {
  const [out, err, fine] = run(command);
  process.stderr.write(err);
  process.stdout.write(`${out}\n`);
  ok = fine;
}
process.exitCode = ok ? 0 : 1;
