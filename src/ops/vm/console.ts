/**
 * `pmc vm console`: the VM's serial console through the system's OpenSSH client (a raw
 * terminal passthrough is what ssh does best), connecting exactly as pmc does: same user,
 * port, keys, known_hosts files with strict checking, and jump host.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { OpContext, Report } from '../engine/context.js';
import { sshTargets } from '../../config/targets.js';
import { isActive } from '../../model/cluster.js';
import { readCluster } from '../../model/read.js';
import type { Domain } from '../../probe/types.js';
import { hostLookupName, knownKeyTypes, loadKnownHosts } from '../../ssh/known-hosts.js';
import type { SshTarget } from '../../ssh/types.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { findVm } from './list.js';
import { virshCommand } from './lifecycle.js';

export interface ConsoleData {
  vm: string;
  node: string;
  /** The ssh command that opens the serial console. */
  argv: string[];
  command: string;
  /** How to reach the graphical console (VNC), or why there is none. */
  graphical: string;
  /** Whether the console was opened (a terminal, no --dry-run) and how ssh ended. */
  opened: boolean;
  exitCode: number | undefined;
}

/**
 * A file name as one word of an ssh_config value (`ssh -o`): OpenSSH splits values on
 * whitespace unless double-quoted (inside, \\ and \" stand for \ and "), then expands
 * %-tokens (%% is a literal %) and ${VAR} in file names. "${" has no escape, so such a
 * path is refused rather than silently read as another file.
 */
export function sshConfigPath(file: string): string {
  if (file.includes('${')) {
    throw new PmcError('PMC_E_CONFIG_INVALID', `known_hosts file ${JSON.stringify(file)}: OpenSSH would read "\${...}" in its name as an environment variable`,
      'rename the file (or its directory) and update ssh.knownHosts in the config');
  }
  return `"${file.replace(/[\\"]/g, '\\$&').replace(/%/g, '%%')}"`;
}

/** A ProxyCommand is %-expanded by ssh before the shell runs it: a literal % is written %%. */
function proxyCommandWords(argv: readonly string[]): string {
  return commandLine(argv).replace(/%/g, '%%');
}

/** ssh options that reproduce pmc's own connection to a target. */
export function sshOptions(target: SshTarget, hostKeyAlias?: string): string[] {
  const options = [
    '-p', String(target.port), '-l', target.user,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${target.knownHostsFiles.map(sshConfigPath).join(' ')}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `ConnectTimeout=${Math.ceil(target.connectTimeoutMs / 1000)}`,
  ];
  if (hostKeyAlias) options.push('-o', `HostKeyAlias=${hostKeyAlias}`);
  for (const file of target.identityFiles) options.push('-i', file);
  if (!target.agentSocket) options.push('-o', 'IdentityAgent=none');
  // Not -J: options given on the command line would not apply to the jump host's own connection.
  if (target.jump) {
    options.push('-o', `ProxyCommand=${proxyCommandWords(['ssh', ...sshOptions(target.jump), '-W'])} %h:%p ${proxyCommandWords([target.jump.host])}`);
  }
  return options;
}

/** `ssh -t ... virsh console <uuid>` for the node that runs the domain. */
export function consoleArgv(target: SshTarget, domain: Domain, hostKeyAlias?: string): string[] {
  const remote = virshCommand('console', domain);
  return ['ssh', '-t', ...sshOptions(target, hostKeyAlias), target.host, target.sudo ? `sudo -n -- ${remote}` : remote];
}

/**
 * Explains the VNC route from `virsh vncdisplay` output (`127.0.0.1:0`, `:1`): a tunnel to
 * the display's port on the node, and a viewer on the manager's end of it.
 */
export function graphicalHint(vm: string, target: SshTarget, vncDisplay: string | undefined, hostKeyAlias?: string): string {
  const match = /^(.*):(\d+)$/.exec(vncDisplay?.trim() ?? '');
  if (!match) return `no graphical console: ${vm} has no VNC display (add <graphics type='vnc'/> to its domain for one)`;
  const address = match[1] === '' || match[1] === '0.0.0.0' ? '127.0.0.1' : match[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = 5900 + Number(match[2]);
  const tunnel = commandLine(['ssh', '-N', '-L', `5900:${address.includes(':') ? `[${address}]` : address}:${port}`, ...sshOptions(target, hostKeyAlias), target.host]);
  return `graphical console (VNC ${address}:${port} on ${target.name}): run "${tunnel}", then point a VNC viewer at localhost:5900`;
}

export async function openConsole(ctx: OpContext, name: string, opts: { dryRun: boolean }): Promise<Report<ConsoleData>> {
  const state = await readCluster(ctx);
  const vm = findVm(state, name);
  const running = vm.replicas.filter((r) => r.domain && isActive(r.domain));
  if (running.length !== 1) {
    throw new PmcError('PMC_E_STATE', running.length === 0 ? `${vm.name} is not running: its console has nothing to show`
      : `${vm.name} runs on ${running.map((r) => r.node).join(' and ')} at once`,
    running.length === 0 ? `pmc vm start ${quote(vm.name)}` : 'keep the copy with the newer data and destroy the other by hand');
  }
  const { node, domain } = running[0]!;
  const configured = sshTargets(ctx.config).find((t) => t.name === node)!;
  const target = { ...configured, identityFiles: configured.identityFiles.filter((f) => existsSync(f)) };
  const alias = await hostKeyAliasFor(target);
  const vnc = await ctx.pool.run(node, virshCommand('vncdisplay', domain!));
  const graphical = graphicalHint(vm.name, target, vnc.exitCode === 0 ? vnc.stdout : undefined, alias);
  const argv = consoleArgv(target, domain!, alias);
  const data: ConsoleData = { vm: vm.name, node, argv, command: commandLine(argv), graphical, opened: false, exitCode: undefined };
  if (opts.dryRun || !process.stdin.isTTY || !process.stdout.isTTY) return { data, status: 'ok', warnings: [] };

  ctx.log(`${graphical}\nserial console of ${vm.name} on ${node}; leave it with Ctrl+]`);
  const exitCode = await new Promise<number>((resolve, reject) => {
    spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' }).on('error', reject).on('close', (code) => resolve(code ?? 255));
  });
  return { data: { ...data, opened: true, exitCode }, status: exitCode === 0 ? 'ok' : 'failed', warnings: [] };
}

/**
 * pmc also accepts known_hosts entries under the node's name when it connects to an
 * address; OpenSSH needs HostKeyAlias for that.
 */
async function hostKeyAliasFor(target: SshTarget): Promise<string | undefined> {
  const { entries } = await loadKnownHosts(target.knownHostsFiles);
  const knownAs = (host: string) => knownKeyTypes(entries, [hostLookupName(host, target.port)]).length > 0;
  return !knownAs(target.host) && knownAs(target.name) ? target.name : undefined;
}
