/**
 * The bad-input corpus: command lines and pmc.yaml contents that pmc must refuse with one
 * line naming the problem (plus its hint), a stable PMC_E_ code and the right exit code,
 * before it contacts any node. bad-inputs.test.ts drives every case through the CLI's entry
 * point. Cases marked `issue: 9` are the reproductions listed in issue 9.
 *
 * In `argv`, CONFIG stands for the case's pmc.yaml; without it, `--config CONFIG` is added.
 * `config` is the YAML text (PORT stands for a port where a listener counts connections), or
 * one of the special files: FIFO, DIRECTORY, BIG (larger than the cap), /dev/zero, MISSING.
 */
import type { PmcErrorCode } from '../../../src/util/errors.js';

export interface BadInput {
  argv: string[];
  config?: string;
  code: PmcErrorCode;
  exit: number;
  issue?: number;
}

/** A valid configuration whose nodes would answer on PORT (nothing there speaks SSH). */
export const BASE_CONFIG = [
  'nodes:',
  '  - { name: pm-1, address: 127.0.0.1 }',
  '  - { name: pm-2, address: 127.0.0.1 }',
  'ssh: { port: PORT, connectTimeout: 2, agent: false, identityFiles: [], knownHosts: /nonexistent/known_hosts }',
  '',
].join('\n');

/** BASE_CONFIG with one more top-level section (or a changed node list). */
const withSection = (yaml: string) => `${BASE_CONFIG}${yaml}\n`;
const withNodes = (nodes: string) => `nodes:\n${nodes}\nssh: { port: PORT, connectTimeout: 2 }\n`;

const usage = (...argv: string[]): BadInput => ({ argv, code: 'PMC_E_USAGE', exit: 2 });
const invalidConfig = (config: string): BadInput => ({ argv: ['vm', 'ls'], config, code: 'PMC_E_CONFIG_INVALID', exit: 1 });
const syntax = (config: string): BadInput => ({ argv: ['pm', 'ls'], config, code: 'PMC_E_CONFIG_SYNTAX', exit: 1 });

/** Names that cannot be a VM's (a leading "-" is refused by the parser first: see below). */
const BAD_VM_NAMES = ['a/b', 'a b', 'x;touch /tmp/p', '$(id)', '`id`', 'a\nb', 'é', '..', 'x'.repeat(128), 'a\'b', 'a|b', '*'];
const VM_NAME_COMMANDS: Array<(vm: string) => string[]> = [
  (vm) => ['vm', 'info', vm], (vm) => ['vm', 'start', vm], (vm) => ['vm', 'stop', vm], (vm) => ['vm', 'destroy', '-f', vm],
  (vm) => ['vm', 'reboot', vm], (vm) => ['vm', 'rm', '-f', vm], (vm) => ['vm', 'console', vm], (vm) => ['vm', 'ls', vm],
  (vm) => ['cluster', 'start', '--only', vm], (vm) => ['pm', 'drbd-up', '--only', vm],
  (vm) => ['vm', 'add', '-s', '1', '-m', '1', vm], (vm) => ['vm', 'add', '-s', '1', '-m', '1', '--clone', vm, 'new-1'],
];
const vmNameCases: BadInput[] = BAD_VM_NAMES.flatMap((name) => VM_NAME_COMMANDS.map((argv) => ({ argv: argv(name), code: 'PMC_E_NAME_INVALID' as const, exit: 1 })));

/** Options-looking names: the parser refuses them as unknown options, or as a missing argument after "--". */
const dashNameCases: BadInput[] = [
  usage('vm', 'stop', '-x'), usage('vm', 'stop', '--', '-x'), usage('vm', 'rm', '-f', '-oProxyCommand=touch /tmp/p'),
  usage('vm', 'info', '--', '--help-me'), usage('vm', 'start', '-ff'), usage('vm', 'add', '-s', '1', '-m', '1', '--', '-x'),
  usage('vm', 'add', '-s', '1', '-m', '1', '-rf'), usage('cluster', 'start', '--only', '-x'),
  { argv: ['vm', 'add', '-s', '1', '-m', '1', '--clone=-x', 'new-1'], code: 'PMC_E_NAME_INVALID', exit: 1 },
  { argv: ['cluster', 'start', '--only=-x'], code: 'PMC_E_NAME_INVALID', exit: 1 },
  usage('vm', 'ls', '--', '-x'), usage('vm', 'ls', 'web-1', '--', 'web-2'), usage('pm', 'init', '--', '-x'),
  { argv: ['vm', 'add', '-s', '1', '-m', '1', 'Web-1'], code: 'PMC_E_NAME_INVALID', exit: 1 },
  { argv: ['vm', 'add', '-s', '1', '-m', '1', 'all'], code: 'PMC_E_NAME_INVALID', exit: 1 },
  { argv: ['vm', 'add', '-s', '1', '-m', '1', 'a_b'], code: 'PMC_E_NAME_INVALID', exit: 1 },
  { argv: ['vm', 'add', '-s', '1', '-m', '1', 'x'.repeat(49)], code: 'PMC_E_NAME_INVALID', exit: 1 },
];

const BAD_TIMEOUTS = ['3000000', '1e99', 'abc', '0', '1.5', '0x10', '', 'NaN', 'Infinity', '86401', '1 2', '-1', '99999999999999999999'];
const timeoutCases: BadInput[] = BAD_TIMEOUTS.map((t) => ({ ...usage('vm', 'stop', `--timeout=${t}`, 'web-1'), ...(['3000000', '1e99'].includes(t) ? { issue: 9 } : {}) }));
const BAD_WAITS = ['abc', '1e99', '-5', '86401', '1.5', 'NaN', '3000000', ''];
const waitCases: BadInput[] = BAD_WAITS.map((w) => ({ ...usage('cluster', 'start', `--wait=${w}`), ...(w === 'abc' ? { issue: 9 } : {}) }));
const BAD_CPUS = ['0', 'abc', '1e3', '-1', '1.5', '1025', '99999999999999999999', ''];
const cpuCases: BadInput[] = BAD_CPUS.map((c) => usage('vm', 'add', '-s', '1', '-m', '1', `--cpus=${c}`, 'new-1'));

const BAD_SIZES = ['abc', '0', '-1', '1e99', '99999999999999999999T', '1X', '', '0.0000000000001', '5P', '2048T', 'NaN', '1..2', '١٢', '1 G B'];
const sizeCases: BadInput[] = BAD_SIZES.flatMap((size) => [
  { argv: ['vm', 'add', `--size=${size}`, '-m', '1', 'new-1'], code: 'PMC_E_SIZE_INVALID' as const, exit: 1 },
  { argv: ['vm', 'add', '-s', '1', `--memory=${size}`, 'new-1'], code: 'PMC_E_SIZE_INVALID' as const, exit: 1 },
]);

const addressCases: BadInput[] = [
  ...['300.1.1.1', 'abc', '-1', '1.2.3', '10.0.0.1; id', ''].map((ip) => ({ argv: ['vm', 'add', '-s', '1', '-m', '1', `--ip=${ip}`, 'new-1'], code: 'PMC_E_ADDRESS_INVALID' as const, exit: 1 })),
  ...['01:00:5e:00:00:01', 'zz:zz:zz:zz:zz:zz', '00:00:00:00:00:00', '52:54:00:12:34', '-x', ''].map((mac) => ({ argv: ['vm', 'add', '-s', '1', '-m', '1', `--mac=${mac}`, 'new-1'], code: 'PMC_E_ADDRESS_INVALID' as const, exit: 1 })),
];
const isoCases: BadInput[] = ['../etc/passwd', '-x', '/abs/x', 'a b', '.hidden', 'x;id', '$(id)'].map((iso) => ({ argv: ['vm', 'add', '-s', '1', '-m', '1', `--iso=${iso}`, 'new-1'], code: 'PMC_E_ISO_UNKNOWN' as const, exit: 1 }));

const nodeCases: BadInput[] = [
  ...[['pm', 'ls', 'pm-9'], ['pm', 'init', 'pm-9'], ['pm', 'init', '--fix', 'pm-9'], ['pm', 'drbd-up', 'pm-9'], ['pm', 'ls', 'pm-1', 'x;id'],
    ['vm', 'start', '-p', 'pm-9', 'web-1'], ['vm', 'add', '-p', 'pm-9', '-s', '1', '-m', '1', 'new-1'],
    ['vm', 'add', '-p', 'pm-1', '-p', 'nope', '-s', '1', '-m', '1', 'new-1'], ['vm', 'add', '--clone', 'web-1', '--from', 'pm-9', '-s', '1', '-m', '1', 'new-1'],
    ['vm', 'add', '-p', '127.0.0.1', '-s', '1', '-m', '1', 'new-1'], ['pm', 'ls', 'PM-1']]
    .map((argv) => ({ argv, code: 'PMC_E_NODE_UNKNOWN' as const, exit: 1 })),
  usage('vm', 'add', '-p', '-oProxyCommand=x', '-s', '1', '-m', '1', 'new-1'),
  usage('vm', 'add', '--from', 'pm-1', '-s', '1', '-m', '1', 'new-1'),
  usage('pm', 'drbd-up', '--', '-x'),
];

/** pm evacuate's flags: each refused from the command line alone, before pmc.yaml's nodes are asked. */
const evacuateCases: BadInput[] = [
  usage('pm', 'evacuate', 'pm-1', '--to', 'pm-2'), usage('pm', 'evacuate', 'pm-1', '--secondaries', '--to', 'pm-1'),
  usage('pm', 'evacuate', 'pm-1', '--secondaries', '--to'), usage('pm', 'evacuate', 'pm-1', '--secondaries', '--to', '-x'),
  usage('pm', 'evacuate', 'pm-1', '--secondaries', '--to', 'pm-2', '--to', 'pm-3'), usage('pm', 'evacuate'), usage('pm', 'evacuate', 'pm-1', 'pm-2'),
  usage('pm', 'evacuate', '--', '-x'), usage('pm', 'evacuate', 'pm-1', '--parallel'), usage('pm', 'evacuate', 'pm-1', '--bogus'),
  ...['0', '-1', 'abc', '1.5', '1e3', '65', 'NaN', ''].map((n) => usage('pm', 'evacuate', 'pm-1', `--parallel=${n}`)),
  ...['0', '1e99', 'abc', '86401', '-5', ''].map((t) => usage('pm', 'evacuate', 'pm-1', `--timeout=${t}`)),
  ...[['pm', 'evacuate', 'pm-9'], ['pm', 'evacuate', 'pm-1', '--secondaries', '--to', 'pm-9'], ['pm', 'evacuate', 'x;id'], ['pm', 'evacuate', '--dry-run', 'PM-1']]
    .map((argv) => ({ argv, code: 'PMC_E_NODE_UNKNOWN' as const, exit: 1 })),
];

/** pm add and pm rm: names, addresses and fingerprints refused before the new node or any other is contacted. */
const pmAddRmCases: BadInput[] = [
  usage('pm', 'add'), usage('pm', 'add', 'pm-4', 'pm-5'), usage('pm', 'add', 'pm-4', '--address'), usage('pm', 'add', 'pm-4', '--address', '-oProxyCommand=x'),
  usage('pm', 'add', '--', '-x'), usage('pm', 'add', 'pm-4', '--fingerprint'),
  ...['SHA256:short', 'MD5:aa:bb', `SHA256:${'A'.repeat(42)}=`, '-x'].map((f) => usage('pm', 'add', 'pm-4', `--fingerprint=${f}`)),
  // Already listed: pm init is the command for it.
  usage('pm', 'add', 'pm-1'), usage('pm', 'add', '--dry-run', 'pm-2', '--address', '127.0.0.1'),
  ...['x;id', 'a b', '$(id)'].map((name) => ({ argv: ['pm', 'add', name], code: 'PMC_E_NAME_INVALID' as const, exit: 1 })),
  ...['-oProxyCommand=x', 'a b', 'x;id', ''].map((a) => ({ argv: ['pm', 'add', 'pm-4', `--address=${a}`], code: 'PMC_E_ADDRESS_INVALID' as const, exit: 1 })),
  usage('pm', 'rm'), usage('pm', 'rm', 'pm-1', 'pm-2'), usage('pm', 'rm', '--', '-x'),
  ...[['pm', 'rm', 'pm-9'], ['pm', 'rm', '--dry-run', 'x;id'], ['pm', 'rm', '-f', 'PM-1']].map((argv) => ({ argv, code: 'PMC_E_NODE_UNKNOWN' as const, exit: 1 })),
];

/** pm discover's --subnet: refused from the command line alone, before any node is asked or any address scanned. */
const discoverCases: BadInput[] = [
  usage('pm', 'discover', 'pm-1'), usage('pm', 'discover', '--subnet'), usage('pm', 'discover', '--bogus'),
  ...['10.0.0.0/21', '0.0.0.0/0', 'abc', '-x', '10.0.0.0/33', 'fd00::/64', '10.0.0.0/24;id', ''].map((s) => usage('pm', 'discover', `--subnet=${s}`)),
];

/** cluster rebalance's flags: each refused from the command line alone. */
const rebalanceCases: BadInput[] = [
  usage('cluster', 'rebalance', 'pm-1'), usage('cluster', 'rebalance', '--max-moves'), usage('cluster', 'rebalance', '--bogus'),
  ...['0', '-1', 'abc', '1.5', '1e3', '100001', ''].map((n) => usage('cluster', 'rebalance', `--max-moves=${n}`)),
  ...['0', '65', 'abc'].map((n) => usage('cluster', 'rebalance', `--parallel=${n}`)),
  ...['0', '86401', 'abc'].map((t) => usage('cluster', 'rebalance', `--timeout=${t}`)),
];

/** cluster heal takes no node and no confirmation: it runs unattended, and only a fence command proves a node down. */
const healCases: BadInput[] = [
  usage('cluster', 'heal', 'pm-1'), usage('cluster', 'heal', '--yes-node-is-down', 'pm-1'), usage('cluster', 'heal', '--yes'),
];

const commandLineCases: BadInput[] = [
  { ...usage('help', 'bogus'), issue: 9 }, usage('help', 'vm', 'bogus'), usage('help', 'bogus', 'ls'), usage('bogus', '--help'), usage('vm', 'bogus', '--help'),
  usage('vm', 'bogus'), usage('bogus'), usage(), usage('vm'), usage('pm'), usage('cluster'), usage('pm', 'ls', '--bogus'), usage('vm', 'lss'),
  usage('vm', 'stop', 'web-1', '--timeout'), usage('vm', 'add', 'new-1'), usage('vm', 'add', '-s', '1', 'new-1'), usage('vm', 'add', '-s', '1', '-m', '1'),
  usage('vm', 'add', '-s', '1', '-m', '1', '--iso', 'a', '--iso', 'b', 'new-1'), usage('vm', 'stop', '-t', '5', '-t', '6', 'web-1'),
  usage('vm', 'start', 'web-1', '-p'), usage('vm', 'add', '-s', '-m', '1', 'new-1'), usage('vm', 'info'), usage('vm', 'info', 'a', 'b'),
  usage('cluster', 'start', '--wait'), usage('vm', 'ls', '-o'), usage('vm', 'backup', '--zstd', 'web-1'),
  { ...usage('pm', 'ls', '--config', 'CONFIG', '--config', 'CONFIG'), issue: 9 },
  usage('vm', 'ls', '--config', 'CONFIG', '--config', '/etc/passwd'),
];

const configFileCases: BadInput[] = [
  { argv: ['pm', 'ls'], config: '/dev/zero', code: 'PMC_E_CONFIG_NOT_FILE', exit: 1, issue: 9 },
  { argv: ['pm', 'ls'], config: 'FIFO', code: 'PMC_E_CONFIG_NOT_FILE', exit: 1, issue: 9 },
  { argv: ['pm', 'ls'], config: 'DIRECTORY', code: 'PMC_E_CONFIG_NOT_FILE', exit: 1 },
  { argv: ['vm', 'ls'], config: '/dev/null', code: 'PMC_E_CONFIG_NOT_FILE', exit: 1 },
  { argv: ['pm', 'ls'], config: 'BIG', code: 'PMC_E_CONFIG_TOO_LARGE', exit: 1 },
  { argv: ['pm', 'ls'], config: 'MISSING', code: 'PMC_E_CONFIG_NOT_FOUND', exit: 1 },
  { argv: ['pm', 'ls', '--config', ''], code: 'PMC_E_CONFIG_NOT_FILE', exit: 1 },
  { argv: ['pm', 'ls'], config: 'nodes: *x\n', code: 'PMC_E_CONFIG_ALIAS', exit: 1, issue: 9 },
  {
    argv: ['pm', 'ls'], code: 'PMC_E_CONFIG_ALIAS', exit: 1, issue: 9,
    config: ['a: &a [x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => {
      const [name, prev] = [String.fromCharCode(98 + i), String.fromCharCode(97 + i)];
      return `${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`;
    }), 'nodes: *j'].join('\n'),
  },
];

const configCases: BadInput[] = [
  // Values that would reach a tool as one of its options.
  { ...invalidConfig(withSection('storage: { volumeGroup: -ff }')), issue: 9 },
  { ...invalidConfig(withSection('network: { bridge: -x }')), issue: 9 },
  { ...invalidConfig(withNodes('  - { name: pm-1, address: "-oProxyCommand=touch /tmp/p" }')), issue: 9 },
  invalidConfig(withNodes('  - { name: pm-1, address: "pm 1" }')),
  invalidConfig(withNodes('  - { name: pm-1, address: "" }')),
  invalidConfig(withNodes('  - { name: -pm-1 }')),
  invalidConfig(withNodes('  - { name: "pm 1" }')),
  invalidConfig(withNodes('  - { name: "pm-1;id" }')),
  invalidConfig(withNodes('  - { name: pm-1 }\n  - { name: pm-1 }')),
  invalidConfig(withNodes('  - { name: pm-1, ssh: { user: -oProxyCommand=x } }')),
  invalidConfig(withNodes('  - { name: pm-1, ssh: { jumpHost: { host: -x } } }')),
  invalidConfig(withNodes('  - { name: pm-1, ssh: { jumpHost: { host: jump, user: "-l" } } }')),
  invalidConfig(withNodes('  - { name: pm-1, ssh: { port: 0 } }')),
  invalidConfig(withSection('backups: { directory: relative/dir }')),
  invalidConfig(withSection('backups: { directory: "/x\\ny" }')),
  invalidConfig(withSection('backups: { directory: -x }')),
  invalidConfig(withSection('storage: { volumeGroup: "vg pmc" }')),
  invalidConfig(withSection('storage: { volumeGroup: ".." }')),
  invalidConfig(withSection('storage: { volumeGroup: "" }')),
  invalidConfig(withSection('network: { bridge: averyveryverylongbridge }')),
  invalidConfig(withSection('network: { bridge: "br0;id" }')),
  invalidConfig(withSection('network: { macPrefix: zz:zz:zz }')),
  invalidConfig(withSection('network: { macByte4: "-1" }')),
  invalidConfig(withSection('storage: { drbd: { resyncRate: fast } }')),
  invalidConfig(withSection('storage: { drbd: { resyncRate: "-1M" } }')),
  invalidConfig(withSection('storage: { drbd: { pingTimeout: 0 } }')),
  invalidConfig(withSection('storage: { drbd: { pingTimeout: "2s" } }')),
  invalidConfig(withSection('storage: { drbd: { minors: { first: 10, last: 5 } } }')),
  invalidConfig(withSection('storage: { drbd: { ports: { first: 0, last: 5 } } }')),
  invalidConfig(withSection('storage: { drbd: { ports: { first: 7788, last: 1e99 } } }')),
  invalidConfig(withSection('storage: { drbd: { minors: { first: -1, last: 5 } } }')),
  invalidConfig(withSection('backups: { retention: { full: 0 } }')),
  invalidConfig(withSection('backups: { retention: { full: 1e9 } }')),
  invalidConfig(withSection('backups: { retention: { incremental: 1.5 } }')),
  invalidConfig(withSection('domainType: xen')),
  invalidConfig(withSection('ignorePrefix: 5')),
  invalidConfig(withSection('isoStore: ""')),
  invalidConfig(withSection('bogus: 1')),
  invalidConfig('nodes: []\n'),
  invalidConfig('nodes: pm-1\n'),
  invalidConfig('ssh: { port: 22 }\n'),
  invalidConfig(''),
  invalidConfig('just a string\n'),
  invalidConfig('- a\n- b\n'),
  invalidConfig('nodes: !!binary aGVsbG8=\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { port: 70000 }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { port: abc }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { connectTimeout: 1e99 }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { connectTimeout: -1 }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { keepaliveInterval: .nan }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { concurrency: 0 }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { concurrency: 1000000 }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\nssh: { agent: maybe }\n'),
  invalidConfig('nodes:\n  - { name: pm-1 }\n__proto__: { polluted: true }\n'),
  syntax('nodes:\n  - name: pm-1\nnodes:\n  - name: pm-2\n'),
  syntax('nodes: [pm-1\n'),
  syntax('nodes:\n\t- name: pm-1\n'),
  syntax('nodes:\n  - { name: pm-1 }\n---\nnodes: []\n'),
  syntax('nodes: !foo x\n'),
  syntax('nodes: "unterminated\n'),
  syntax(`${'['.repeat(20_000)}${']'.repeat(20_000)}\n`),
  syntax('nodes:\n  - name: pm-1\n   bad: indent\n'),
];

export const BAD_INPUTS: BadInput[] = [
  ...vmNameCases, ...dashNameCases, ...timeoutCases, ...waitCases, ...cpuCases, ...sizeCases, ...addressCases, ...isoCases,
  ...nodeCases, ...evacuateCases, ...pmAddRmCases, ...discoverCases, ...rebalanceCases, ...healCases, ...commandLineCases, ...configFileCases, ...configCases,
];
