import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { emitError, emitReport, EXIT, processStreams, type Streams } from '../render/output.js';
import { colorWanted, makeStyle, type Style } from '../render/style.js';
import { PmcError } from '../util/errors.js';
import { pmcVersion } from '../util/install.js';
import { DEFAULT_WAIT_LOCK_S, type PmcCommand } from './command.js';
import type { Context, GlobalOptions } from './context.js';
import { StopToken } from '../ops/engine/context.js';
import { clusterCommands } from './commands/cluster.js';
import { pmCommands } from './commands/pm.js';
import { vmCommands } from './commands/vm.js';
import { backupCommands } from './commands/backup.js';
import { logCommand } from './commands/log.js';

interface Group {
  name: string;
  describe: string;
  commands: PmcCommand<any, any>[];
}

const GROUPS: Group[] = [
  { name: 'pm', describe: 'physical nodes: list, check, prepare', commands: pmCommands },
  { name: 'vm', describe: 'virtual machines: list, inspect, create, remove, start, stop', commands: vmCommands },
  { name: 'cluster', describe: 'the whole cluster: verify, start after a power loss', commands: clusterCommands },
  { name: 'backup', describe: 'backups on the nodes: list, verify, prune, copy (pmc vm backup / vm restore make and use them)', commands: backupCommands },
];

/** Runs pmc with the given arguments and returns the exit code (it never calls process.exit). */
export async function main(argv: string[], streams: Streams = processStreams, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const wantsColor = (flag: boolean | undefined) => makeStyle(colorWanted(process.stdout, env, flag));
  let exitCode: number = EXIT.ok;
  const parser = yargs(argv)
    .scriptName('pmc')
    .usage('$0 <group> <command> [options]')
    .option('config', { type: 'string', describe: 'pmc.yaml to use (default: $PMC_CONFIG, ./pmc.yaml, ~/.config/pmc/pmc.yaml, /etc/pmc/pmc.yaml)', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON', global: true })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'show every remote command and error details', global: true })
    .option('color', { type: 'boolean', describe: 'colour output (default: only on a terminal; NO_COLOR is honoured)', global: true })
    .option('wait-lock', { type: 'number', default: DEFAULT_WAIT_LOCK_S, describe: 'seconds a changing command waits for another pmc run that holds its nodes', global: true })
    .strict()
    .recommendCommands()
    .demandCommand(1, 'name a command group (pm, vm, cluster or backup) or log')
    .help()
    .alias('help', 'h')
    .version(pmcVersion())
    // pmc's own messages are English, and so are the yargs texts it reads ("Did you mean"); the
    // bundle does not carry yargs' translations either.
    .locale('en')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .completion('completion', 'print a bash/zsh completion script (pmc completion >> ~/.bashrc)')
    .epilogue('pmc, the poor man\'s cloud: highly available VMs on LVM, DRBD and libvirt, over SSH.\nRun "pmc help <group> <command>" for a command\'s options and examples.\nExit codes: 0 ok, 1 failed, 2 usage error, 3 some nodes could not be asked.')
    .fail((msg, err) => {
      // yargs' own refusals (a missing option value, a failed check) are YErrors: usage errors like the others.
      if (err && err.name !== 'YError') throw err;
      msg ??= err?.message ?? 'invalid arguments';
      const text = msg.startsWith('Did you mean') ? `unknown command; ${msg.replace(/^Did you mean (\S+)\?$/, 'did you mean "$1"?')}` : msg;
      throw new PmcError('PMC_E_USAGE', text, 'run "pmc --help" (or "pmc <group> --help") for the commands and options');
    })
    .exitProcess(false);

  const register = (y: Argv<GlobalOptions>, cmd: PmcCommand<any, any>): void => {
    y.command({
      command: cmd.command,
      describe: cmd.describe,
      aliases: cmd.aliases ?? [],
      builder: (yy: Argv<GlobalOptions>) => {
        const built = cmd.builder ? cmd.builder(yy) : yy;
        for (const [example, what] of cmd.examples ?? []) built.example(example, what);
        return built;
      },
      handler: async (args: any) => {
        exitCode = await runCommand(cmd, args, await wantsColor(args.color), streams, argv);
      },
    });
  };
  for (const group of GROUPS) {
    parser.command(group.name, group.describe, (y: Argv<GlobalOptions>) => {
      for (const cmd of group.commands) register(y, cmd);
      return y.demandCommand(1, `name a ${group.name} command: ${group.commands.map((c) => c.command.split(' ')[0]).join(', ')}`);
    });
  }
  register(parser as unknown as Argv<GlobalOptions>, logCommand);
  parser.command('help [command..]', 'show help for a command, e.g. pmc help vm add', {}, async (args: any) => {
    const words: string[] = (args.command ?? []).map(String);
    assertKnownCommand(words);
    exitCode = await main([...words, '--help'], streams, env);
  });

  try {
    if (argv.includes('--help') || argv.includes('-h')) assertKnownCommand(leadingWords(argv));
    await parser.parseAsync();
  } catch (err) {
    return emitError(err, await wantsColor(undefined), argv.includes('--verbose') || argv.includes('-v'), streams);
  }
  return exitCode;
}

async function runCommand(cmd: PmcCommand<any, any>, parsed: any, style: Style, streams: Streams, argv: readonly string[]): Promise<number> {
  let ctx: Context | undefined;
  let args = parsed;
  const stop = new StopToken();
  const removeHandlers = interruptHandlers(stop, streams);
  try {
    assertGivenOnce(parsed);
    assertNoExtraWords(parsed._);
    args = { ...parsed, ...cmd.check?.(parsed) };
    const nodes = (cmd.nodes?.(args) ?? []).filter((n): n is string => n !== undefined);
    const { openContext } = await import('./context.js');
    ctx = await openContext(args, style, streams, argv, stop, nodes);
    const report = await cmd.run(ctx, args);
    return emitReport(report, await cmd.view(), {
      json: args.json,
      style,
      fields: typeof args.output === 'string' ? args.output.split(',').map((f: string) => f.trim()).filter(Boolean) : undefined,
      headers: args.headers !== false,
      verbose: args.verbose,
    }, streams);
  } catch (err) {
    return emitError(err, style, args.verbose, streams);
  } finally {
    await ctx?.pool.close();
    removeHandlers();
  }
}

/** `pmc help WORDS`: the words must name a group, or a group and one of its commands. */
function assertKnownCommand(words: readonly string[]): void {
  const [groupName, commandName, ...rest] = words;
  // yargs shows help for "pmc bogus --help" and exits 0; a typo must not look like success.
  const topLevel = ['help', 'completion', logCommand.command.split(' ')[0]!];
  if (groupName === undefined || (topLevel.includes(groupName) && (commandName === undefined || groupName === 'log'))) return;
  const group = GROUPS.find((g) => g.name === groupName);
  const command = commandName === undefined ? undefined
    : group?.commands.find((c) => c.command.split(' ')[0] === commandName || c.aliases?.includes(commandName));
  if (!group || (commandName !== undefined && !command) || (rest.length > 0 && !command)) {
    const known = group
      ? `the ${group.name} commands are ${group.commands.map((c) => c.command.split(' ')[0]).join(', ')}`
      : `the groups are ${GROUPS.map((g) => g.name).join(', ')}`;
    throw new PmcError('PMC_E_USAGE', `no command ${JSON.stringify(words.join(" "))}`, `${known}; run "pmc --help"`);
  }
}

/** Options that may be given more than once (yargs collects them in an array), and positional lists. */
const REPEATABLE = new Set(['_', 'pm', 'p', 'only', 'nodes', 'node', 'vms']);

/** `--config a --config b` (or any other option twice): refused, rather than guessing which one was meant. */
function assertGivenOnce(args: Record<string, unknown>): void {
  const repeated = Object.keys(args).find((key) => !REPEATABLE.has(key) && Array.isArray(args[key]));
  if (repeated !== undefined) {
    const option = repeated.length === 1 ? `-${repeated}` : `--${repeated}`;
    throw new PmcError('PMC_E_USAGE', `${option} is given ${(args[repeated] as unknown[]).length} times`, `give ${option} once`);
  }
}

/**
 * The words yargs did not use: after the group and command, only words following "--" are
 * left (`pmc vm ls -- -x`); yargs' strict mode lets them pass, and they would be ignored.
 */
function assertNoExtraWords(words: ReadonlyArray<string | number>): void {
  const extra = words.slice(2);
  if (extra.length > 0) {
    throw new PmcError('PMC_E_USAGE', `unexpected argument ${JSON.stringify(String(extra[0]))}`,
      'names of VMs and nodes never start with "-"; run "pmc <group> <command> --help" for its arguments');
  }
}

/** The words before the first option: the group, the command and its positional arguments. */
function leadingWords(argv: readonly string[]): string[] {
  const firstOption = argv.findIndex((a) => a.startsWith('-'));
  return argv.slice(0, firstOption === -1 ? argv.length : firstOption);
}

/**
 * Ctrl-C and SIGTERM while a command runs: the first asks the engine to stop after the
 * running step and undo, the second to stop undoing; a third ends pmc at once (what remains
 * was already listed as it happened).
 */
function interruptHandlers(stop: StopToken, streams: Streams): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.level === 'halt') {
      streams.err(`pmc: ${signal} a third time: exiting now\n`);
      process.exit(130);
    }
    stop.request(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}

export function cliArgs(): string[] {
  return hideBin(process.argv);
}
