/**
 * What one fake node of the fleet benchmark answers: the output of a build's REAL probe script
 * (its buildProbeScript), run once locally against a directory of stub tools on PATH that
 * print what a node with 20 VMs prints (virsh with 20 domains, 20 DRBD 8.4 resources, their
 * LVs), built from real captured output (test/fixtures/real, and its lab-20-domains/). So the
 * benchmark follows the probe script wherever it goes: a new section or a batched virsh
 * session is run against the same stubs, and two builds with different probes (--before) are
 * each answered what their own script prints on the same node. The stubs answer both forms
 * the probe has had: one virsh per command, vgs and lvs (before the constant-cost probe), and
 * virsh sessions with `echo --err` markers, `lvm fullreport` (since).
 *
 * The files the script reads itself (/proc/drbd, /proc/sys/kernel/hostname, /etc/drbd.d, ...)
 * come from a stub root: the script's paths under /proc, /sys, /etc, /var and the backup directory
 * are prefixed with it, and the prefix is taken out of the output again. A path the stub root
 * lacks makes its section fail, which the benchmark's check of every answer reports.
 *
 * Every stub is a POSIX sh script made of builtins only: one stub call is one process, like
 * the real tool, so `strace -f` on the probe counts the node-side process starts as a real
 * node would see them.
 *
 * A node pair (A, B) shares its 20 VMs: each runs on one side (even ones on A) with DRBD
 * Primary there and Secondary on the other. The answer is generated once per side with the
 * placeholder names below and then given to every pair by text replacement.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ProbeOptions } from '../../src/probe/types.js';
import { splitSections } from '../../src/probe/sections.js';
import { fixture, real } from '../unit/probe/helpers.js';

const execFileAsync = promisify(execFile);

export const VMS_PER_NODE = 20;
export const PROBE_OPTIONS: ProbeOptions = { volumeGroup: 'vg-pmc', bridge: 'br0', backupDir: '/pmc-vm-backup' };

/** Placeholders in the generated answers: this node, its pair partner, the pair's number. */
const SELF = 'PMCSELFNODE';
const PEER = 'PMCPEERNODE';
/** As wide as the 4-digit number it stands for: virsh list aligns its columns to the names. */
const PAIR = 'PMCP';
/** 8 characters where a UUID needs 8 hex digits of the pair's number. */
const PAIR_HEX = 'HEXPAIRX';

export type Side = 'a' | 'b';

export interface NodeAnswers {
  /** The answer of side A and side B of a pair, with placeholders. */
  template: Record<Side, string>;
  /** What the probe started on the node (strace -f), or why it could not be counted. */
  processes: ProcessCount | string;
}

export interface ProcessCount {
  /** Processes started, the probe's own shell and forked subshells included. */
  starts: number;
  /** Programs executed (execve), by name, the probe's own shell included. */
  programs: Map<string, number>;
}

/** The answer of node `self` in pair `pair` (0, 1, ...), whose partner is `peer`. */
export function answerFor(answers: NodeAnswers, side: Side, self: string, peer: string, pair: number): string {
  return answers.template[side]
    .replaceAll(SELF, self).replaceAll(PEER, peer).replaceAll(PAIR_HEX, pair.toString(16).padStart(8, '0'))
    .replaceAll(PAIR, String(pair).padStart(PAIR.length, '0'));
}

/** `vm-<pair>-NN`: unique in the fleet, defined on both nodes of its pair. */
function vmName(j: number): string {
  return `vm-${PAIR}-${String(j).padStart(2, '0')}`;
}

function minor(j: number): number {
  return 10 + j;
}

/** The lab's 20 real `virsh dumpxml --inactive` documents, renamed for the fleet. */
function domainXmls(): string[] {
  const documents = fixture('real/lab-20-domains/dumpxml.txt').split(/^=== .*\n/m).slice(1);
  return documents.map((xml, i) => {
    const j = i + 1;
    const nn = String(j).padStart(2, '0');
    return xml
      .replace(/<name>cap-fx-\d+<\/name>/, `<name>${vmName(j)}</name>`)
      .replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${PAIR_HEX}-0000-4000-8000-0000000000${nn}</uuid>`)
      .replace(/\/dev\/drbd9\d\d/, `/dev/drbd${minor(j)}`)
      .replace(/52:54:00:ca:00:\d\d/, `52:54:00:ca:${String(j).padStart(2, '0')}:00`);
  });
}

/** A section body of the lab node's real probe output. */
function labSection(name: string): string {
  const section = splitSections(fixture('real/lab-20-domains/probe.pm-1.txt')).sections.get(name);
  if (!section) throw new Error(`lab probe fixture has no ${name} section`);
  return section.stdout;
}

function runsOn(side: Side, j: number): boolean {
  return (j % 2 === 0) === (side === 'a');
}

/** The stub root: where the files the probe script reads itself live on a stub node. */
const ROOT = 'root';
/** The directories the probe script reads files from, besides the backup directory. */
const NODE_DIRS = ['/proc', '/sys', '/etc', '/var'];

const LV_BYTES = 268435456;
const EXTENT_BYTES = 4194304;
/** The lab's volume group (probe.new.pm-1.txt). */
const VG_BYTES = 8585740288;

/**
 * A JSON report laid out as LVM 2.03 prints it (`vgs`, `lvs` and `lvm fullreport` with
 * `--reportformat json`; see the lvm section of test/fixtures/real/probe.new.pm-1.txt).
 */
function lvmJson(arrays: [string, Record<string, string>[]][]): string {
  const row = (r: Record<string, string>) => `{${Object.entries(r).map(([k, v]) => `"${k}":"${v}"`).join(', ')}}`;
  const body = arrays.map(([key, rows]) => `              "${key}": [\n${rows.map((r) => `                  ${row(r)}`).join(',\n')}\n              ]\n`);
  return `  {\n      "report": [\n          {\n${body.join('              ,\n')}          }\n      ]\n  }\n`;
}

/** The files the stubs print, for one side of a pair (node files under ROOT). */
function stubData(side: Side): Map<string, string> {
  const files = new Map<string, string>();
  const js = Array.from({ length: VMS_PER_NODE }, (_, i) => i + 1);
  const xmls = domainXmls();
  const addressOf = (node: string) => (node === SELF ? (side === 'a' ? '10.0.0.1' : '10.0.0.2') : (side === 'a' ? '10.0.0.2' : '10.0.0.1'));
  const [aNode, bNode] = side === 'a' ? [SELF, PEER] : [PEER, SELF];

  const kernelRelease = `${labSection('kernel-release').trim()}\n`;
  files.set('uname-n', `${SELF}\n`);
  files.set('uname-r', kernelRelease);
  files.set(`${ROOT}/proc/sys/kernel/hostname`, `${SELF}\n`);
  files.set(`${ROOT}/proc/sys/kernel/osrelease`, kernelRelease);
  files.set(`${ROOT}/proc/meminfo`, real('proc-meminfo.txt'));
  files.set('ip-link', labSection('bridge'));
  files.set('virsh-version', real('virsh-version.txt'));
  files.set('virsh-nodeinfo', real('virsh-nodeinfo.txt'));
  files.set('drbdadm-version', labSection('drbdadm-version'));
  files.set('dmesg', '');

  const nameWidth = Math.max(...js.map((j) => vmName(j).length)) + 3;
  let id = 0;
  files.set('virsh-list', [` Id   ${'Name'.padEnd(nameWidth)}State`, '-'.repeat(nameWidth + 15),
    ...js.map((j) => ` ${(runsOn(side, j) ? String(++id) : '-').padEnd(5)}${vmName(j).padEnd(nameWidth)}${runsOn(side, j) ? 'running' : 'shut off'}`),
    '', ''].join('\n'));
  files.set('virsh-names', `${js.map(vmName).join('\n')}\n\n`);
  const dominfo = real('virsh-dominfo.running.txt');
  id = 0;
  for (const j of js) {
    const running = runsOn(side, j);
    const uuid = /<uuid>([^<]*)<\/uuid>/.exec(xmls[j - 1]!)![1]!;
    files.set(`dumpxml/${vmName(j)}`, xmls[j - 1]!);
    files.set(`dominfo/${vmName(j)}`, dominfo
      .replace(/^Id:.*$/m, `Id:             ${running ? ++id : '-'}`)
      .replace(/^Name:.*$/m, `Name:           ${vmName(j)}`)
      .replace(/^UUID:.*$/m, `UUID:           ${uuid}`)
      .replace(/^State:.*$/m, `State:          ${running ? 'running' : 'shut off'}`)
      .replace(/^CPU time:.*\n/m, running ? 'CPU time:       3.8s\n' : ''));
    files.set(`domstate/${vmName(j)}`, running ? 'running (booted)\n\n' : 'shut off (shutdown)\n\n');
  }

  // DRBD 8.4: drbdadm dump (config), drbdsetup show (kernel), events2 and /proc/drbd (state).
  const dump = real('drbdadm-dump.txt');
  const show = real('drbdsetup-show.84.txt');
  const events = real('drbdsetup-events2-now-statistics.84.txt').split('\n').filter((l) => l && l !== 'exists -');
  const proc = real('proc-drbd.connected-primary.txt').split('\n');
  const resource = (j: number) => vmName(j);
  const perResource = (text: string, j: number) => text
    .replaceAll('test-vm', resource(j)).replaceAll('drbd10', `drbd${minor(j)}`).replaceAll('minor 10', `minor ${minor(j)}`)
    .replaceAll('minor:10', `minor:${minor(j)}`).replaceAll(':7788', `:${7788 + j}`);
  files.set('drbdadm-dump', js.map((j) => perResource(dump, j)
    .replaceAll('pm-1', aNode).replaceAll('pm-2', bNode).replace('on pm-2:', `on ${SELF}:`)
    .replaceAll('10.99.0.11', addressOf(aNode)).replaceAll('10.99.0.12', addressOf(bNode))).join('\n'));
  files.set('drbdsetup-show', js.map((j) => perResource(show, j)
    .replace('10.99.0.11', addressOf(PEER)).replace('10.99.0.12', addressOf(SELF))).join('\n'));
  files.set('drbd-events2', `${js.flatMap((j) => events.map((line) => {
    const primaryHere = runsOn(side, j);
    return perResource(line, j)
      .replace(/ role:Primary/, ` role:${primaryHere ? 'Primary' : 'Secondary'}`)
      .replace(/ connection:Connected role:Secondary/, ` connection:Connected role:${primaryHere ? 'Secondary' : 'Primary'}`);
  })).join('\n')}\nexists -\n`);
  files.set(`${ROOT}/proc/drbd`, `${proc.slice(0, 3).join('\n')}\n${js.map((j) => {
    const roles = runsOn(side, j) ? 'Primary/Secondary' : 'Secondary/Primary';
    return `${String(minor(j)).padStart(2)}: cs:Connected ro:${roles} ds:UpToDate/UpToDate C r-----\n${proc[4]}`;
  }).join('\n')}\n`);
  for (const j of js) files.set(`${ROOT}/etc/drbd.d/${resource(j)}.res`, perResource(dump, j).split('\n').slice(2).join('\n'));

  // LVM: the VG holds the 20 LVs on one PV, each LV one segment, the rest one free segment.
  const vg = { vg_name: PROBE_OPTIONS.volumeGroup, vg_size: String(VG_BYTES), vg_free: String(VG_BYTES - VMS_PER_NODE * LV_BYTES), vg_extent_size: String(EXTENT_BYTES) };
  const lvs = js.map((j) => ({ lv_name: vmName(j), vg_name: PROBE_OPTIONS.volumeGroup, lv_attr: '-wi-ao----', lv_size: String(LV_BYTES), origin: '' }));
  files.set('vgs', lvmJson([['vg', [vg]]]));
  files.set('lvs', lvmJson([['lv', lvs]]));
  files.set('lvm-fullreport', lvmJson([
    ['vg', [vg]], ['pv', [{ pv_name: '/dev/vdb' }]], ['lv', lvs],
    ['pvseg', [...js, js.length + 1].map((j) => ({ pvseg_start: String(((j - 1) * LV_BYTES) / EXTENT_BYTES) }))],
    ['seg', js.map(() => ({ seg_start: '0' }))],
  ]));
  return files;
}

/**
 * The stub tools: each prints a data file chosen by its arguments, with shell builtins
 * only (a `while read` loop instead of `cat`), and fails like the real tool on anything
 * it does not know. virsh, like the real one, also takes several `;`-separated commands in one
 * argument (a virsh session: its words split as a shell would, which is how virsh splits
 * them), goes on after a failed command and exits with the last command's status; after every
 * command of a session it prints a newline, so a command prints what it prints alone, `echo
 * --err` an empty line (and its text as an error on stderr), `echo` its text
 * (test/unit/probe/stand-in-virsh.mjs, test/fixtures/real/probe.new.pm-1.txt).
 */
function stubScripts(data: string): Map<string, string> {
  const print = `pmc_print() {
  if [ ! -f "${data}/$1" ]; then echo "error: no stub output for $1" >&2; return 1; fi
  while IFS= read -r pmc_line || [ -n "$pmc_line" ]; do printf '%s\\n' "$pmc_line"; done <"${data}/$1"
}`;
  const stub = (body: string) => `#!/bin/sh\n${print}\n${body}\n`;
  return new Map([
    ['uname', stub(`case "$1" in -n) pmc_print uname-n ;; -r) pmc_print uname-r ;; *) echo Linux ;; esac`)],
    ['ip', stub(`pmc_print ip-link`)],
    ['dmesg', stub(`pmc_print dmesg`)],
    ['vgs', stub(`pmc_print vgs`)],
    ['lvs', stub(`pmc_print lvs`)],
    ['lvm', stub(`case "$1" in fullreport) pmc_print lvm-fullreport ;; *) echo "  No such command '$1'.  Try 'help'." >&2; exit 3 ;; esac`)],
    ['drbdadm', stub(`case "$*" in --version) pmc_print drbdadm-version ;; "dump all"|dump) pmc_print drbdadm-dump ;; *) echo "drbdadm stub: $* unknown" >&2; exit 20 ;; esac`)],
    ['drbdsetup', stub(`case "$1" in events2) pmc_print drbd-events2 ;; show) pmc_print drbdsetup-show ;; *) echo "drbdsetup stub: $* unknown" >&2; exit 20 ;; esac`)],
    ['virsh', stub(`pmc_virsh_one() {
  pmc_cmd=$1
  shift
  pmc_dom=
  pmc_name=no
  for pmc_arg in "$@"; do
    case "$pmc_arg" in --name) pmc_name=yes ;; --*) ;; *) pmc_dom=$pmc_arg ;; esac
  done
  case "$pmc_cmd" in
    version) pmc_print virsh-version ;;
    nodeinfo) pmc_print virsh-nodeinfo ;;
    list) if [ "$pmc_name" = yes ]; then pmc_print virsh-names; else pmc_print virsh-list; fi ;;
    dumpxml|dominfo|domstate)
      if [ -f "${data}/$pmc_cmd/$pmc_dom" ]; then pmc_print "$pmc_cmd/$pmc_dom"
      else echo "error: failed to get domain '$pmc_dom'" >&2; return 1; fi ;;
    echo)
      if [ "$1" = --err ]; then shift; printf 'error: %s\\n' "$*" >&2; echo
      else printf '%s\\n' "$*"; fi ;;
    *) echo "error: unknown command: '$pmc_cmd'" >&2; return 1 ;;
  esac
}
if [ "$1" = -c ]; then shift 2; fi
if [ "$1" = -q ]; then shift; fi
case "$*" in
  *';'*)
    pmc_rc=0
    pmc_session=$*
    set -f
    pmc_ifs=$IFS
    IFS=';'
    for pmc_part in $pmc_session; do
      IFS=$pmc_ifs
      eval "set -- $pmc_part"
      if [ $# -gt 0 ]; then pmc_virsh_one "$@"; pmc_rc=$?; fi
    done
    exit $pmc_rc ;;
  *) pmc_virsh_one "$@" ;;
esac`)],
  ]);
}

/**
 * The probe script with the files it reads itself moved into the stub root `root`: every path
 * under NODE_DIRS or the backup directory, wherever the script names one.
 */
function stubbedScript(script: string, root: string): string {
  const dirs = [...NODE_DIRS, PROBE_OPTIONS.backupDir].map((d) => d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const moved = script.replace(new RegExp(`(?<=^|[\\s'"=])(?=(?:${dirs.join('|')})(?:/|[\\s'";]|$))`, 'gm'), root);
  if (moved === script) throw new Error('the probe script reads no node file any more: update test/bench/fleet-node.ts');
  return moved;
}

/** Writes the stubs into `dir` and runs the probe script `script` against them once per side. */
export async function generateAnswers(dir: string, script: string): Promise<NodeAnswers> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  for (const side of ['a', 'b'] as const) {
    const data = join(dir, `data-${side}`);
    for (const [name, text] of stubData(side)) {
      await mkdir(join(data, name, '..'), { recursive: true });
      await writeFile(join(data, name), text);
    }
    await mkdir(join(data, ROOT, PROBE_OPTIONS.backupDir), { recursive: true });
  }
  // The stubs find their side's data through PMC_BENCH_DATA, exported by the probe's caller.
  for (const [name, text] of stubScripts('$PMC_BENCH_DATA')) {
    await writeFile(join(bin, name), text);
    await chmod(join(bin, name), 0o755);
  }
  const template = {} as Record<Side, string>;
  let processes: ProcessCount | string = 'not counted';
  for (const side of ['a', 'b'] as const) {
    const data = join(dir, `data-${side}`);
    const root = join(data, ROOT);
    const scriptFile = join(dir, `probe-${side}.sh`);
    await writeFile(scriptFile, stubbedScript(script, root));
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, PMC_BENCH_DATA: data };
    const run = async (program: string, args: string[]) =>
      (await execFileAsync(program, args, { env, maxBuffer: 64 * 1024 * 1024 })).stdout.replaceAll(root, '');
    if (side === 'a') {
      // Side A runs under `strace -ff` (when there is one) to count what the probe starts.
      const traces = join(dir, 'strace');
      await mkdir(traces, { recursive: true });
      try {
        template.a = await run('strace', ['-ff', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', join(traces, 'pid'), 'sh', scriptFile]);
        processes = await countProcesses(traces);
        continue;
      } catch (err) {
        processes = `not counted (strace: ${(err as Error).message.split('\n')[0]})`;
      }
    }
    template[side] = await run('sh', [scriptFile]);
  }
  return { template, processes };
}

/**
 * From `strace -ff -e trace=execve`: one trace file per process (the probe's shell, forked
 * subshells and the programs they run), so the files are the processes started; the
 * successful execve calls in them are the programs run (a failed one is the shell trying
 * the next PATH directory).
 */
async function countProcesses(traceDir: string): Promise<ProcessCount> {
  const files = await readdir(traceDir);
  const programs = new Map<string, number>();
  for (const file of files) {
    for (const line of (await readFile(join(traceDir, file), 'utf8')).split('\n')) {
      const program = /^execve\("(?:[^"]*\/)?([^"/]+)".* = 0$/.exec(line)?.[1];
      if (program) programs.set(program, (programs.get(program) ?? 0) + 1);
    }
  }
  return { starts: files.length, programs };
}
