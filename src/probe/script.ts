import { quote } from '../util/shell.js';
import type { ProbeOptions, ToolFacts } from './types.js';

/**
 * Every section of the probe output is framed as
 *
 *     @@PMC@@ begin <name>
 *     <the command's stdout, byte for byte>
 *     @@PMC@@ stderr <name>        (only when it wrote to stderr; the first 4 KiB of it)
 *     <stderr>
 *     @@PMC@@ end <name> <exit code>
 *
 * where each marker after `begin` is preceded by a newline the parser removes again. A body line
 * that starts with `@` is sent as `@-@...`, so no command output (say a domain description)
 * can ever look like a marker.
 */
export const MARKER = '@@PMC@@';
export const ESCAPE = '@-';

export const SECTION = {
  hostname: 'hostname',
  kernelRelease: 'kernel-release',
  meminfo: 'meminfo',
  cpus: 'cpus',
  vgs: 'vgs',
  lvs: 'lvs',
  bridge: 'bridge',
  procDrbd: 'proc-drbd',
  drbdadmVersion: 'drbdadm-version',
  drbdEvents2: 'drbd-events2',
  drbdsetupShow: 'drbdsetup-show',
  drbdadmDump: 'drbdadm-dump',
  drbdResFiles: 'drbd-res-files',
  kernelLog: 'kernel-log',
  virshVersion: 'virsh-version',
  virshNodeinfo: 'virsh-nodeinfo',
  virshList: 'virsh-list',
  virshNames: 'virsh-names',
  tools: 'tools',
  backupDir: 'backup-dir',
  authority: 'authority',
} as const;

/** Sections that exist once per .res file or per domain: `<prefix><file or domain name>`. */
export const SECTION_PREFIX = {
  resFile: 'drbd-res-file:',
  domainXml: 'domain-xml:',
  domainInfo: 'domain-info:',
  domainState: 'domain-state:',
} as const;

/** Programs whose presence is reported as `NodeFacts.tools`. */
export const CHECKED_TOOLS: readonly (keyof ToolFacts)[] = ['xdelta3', 'rsync'];

const DRBD_CONFIG_DIR = '/etc/drbd.d';
/**
 * Where a failover records, per DRBD resource, that this node's copy is the authoritative one
 * and which node holds the stale copy: one file per resource, `<lost node> <ISO time>`. It stays
 * until `pmc pm rejoin` has made the lost node a resync target.
 */
export const AUTHORITY_DIR = '/var/lib/pmc/authoritative';
/** Every tool call gets this long; a hung virsh or drbdsetup must not cost the whole probe. */
const TOOL_TIMEOUT_SECONDS = 20;
/** Only the last split-brain reports and lost connections matter; the kernel log can be megabytes. */
const KERNEL_LOG_LINES = 100;
const RES_FILE_MAX_BYTES = 65536;
/** Enough for any tool's error message; a runaway stderr must not swamp the output. */
const STDERR_MAX_BYTES = 4096;

/**
 * One POSIX sh script (dash-compatible) that gathers everything about a node in one round trip.
 * It only reads: no command here changes the node. Commands that may talk to the DRBD kernel
 * module run only when the module is loaded (/proc/drbd exists), so the probe never loads it.
 */
export function buildProbeScript(opts: ProbeOptions): string {
  const vg = quote(opts.volumeGroup);
  const bridge = quote(opts.bridge);
  const backupDir = quote(opts.backupDir);
  const S = SECTION;
  const P = SECTION_PREFIX;
  return `# pmc probe: reads (never changes) everything pmc needs to know about this node
LC_ALL=C
export LC_ALL
# Non-login shells over ssh often lack the sbin directories where lvm, drbdadm and ip live.
# Appended, so that a PATH the caller chose still comes first.
PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
pmc_tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$pmc_tmp"' EXIT
trap 'exit 129' HUP INT TERM

pmc_escape() { sed 's/^@/${ESCAPE}@/' "$@"; }

pmc_section() {
  pmc_name=$1
  shift
  printf '${MARKER} begin %s\\n' "$pmc_name"
  "$@" >"$pmc_tmp/out" 2>"$pmc_tmp/err" </dev/null
  pmc_rc=$?
  pmc_escape "$pmc_tmp/out"
  if [ -s "$pmc_tmp/err" ]; then
    printf '\\n${MARKER} stderr %s\\n' "$pmc_name"
    head -c ${STDERR_MAX_BYTES} "$pmc_tmp/err" | pmc_escape
  fi
  printf '\\n${MARKER} end %s %s\\n' "$pmc_name" "$pmc_rc"
}

if command -v timeout >/dev/null 2>&1; then
  pmc_tool() { timeout ${TOOL_TIMEOUT_SECONDS} "$@"; }
else
  pmc_tool() { "$@"; }
fi

# qemu:///system explicitly: as a non-root user plain virsh would ask the empty session daemon.
pmc_virsh() { pmc_tool virsh -c qemu:///system "$@"; }

pmc_res_files() {
  for pmc_f in ${DRBD_CONFIG_DIR}/*.res; do
    if [ -f "$pmc_f" ]; then printf '%s\\n' "$pmc_f"; fi
  done
}

# dmesg's own exit code must survive the filter, so it is read whole first.
pmc_kernel_log() {
  pmc_log=$(dmesg) || return
  printf '%s\\n' "$pmc_log" | grep -F -e 'Split-Brain' -e 'conn( Connected -> ' | tail -n ${KERNEL_LOG_LINES}
  return 0
}

pmc_authority() {
  for pmc_f in ${AUTHORITY_DIR}/*; do
    if [ -f "$pmc_f" ]; then printf '%s %s\n' "\${pmc_f##*/}" "$(head -c 256 "$pmc_f" | head -n 1)"; fi
  done
}

pmc_tools() {
  for pmc_t in ${CHECKED_TOOLS.join(' ')}; do
    if command -v "$pmc_t" >/dev/null 2>&1; then echo "$pmc_t yes"; else echo "$pmc_t no"; fi
  done
}

pmc_section ${S.hostname} uname -n
pmc_section ${S.kernelRelease} uname -r
pmc_section ${S.meminfo} cat /proc/meminfo
pmc_section ${S.cpus} getconf _NPROCESSORS_ONLN
pmc_section ${S.tools} pmc_tools
pmc_section ${S.backupDir} test -d ${backupDir}
pmc_section ${S.authority} pmc_authority
pmc_section ${S.vgs} pmc_tool vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size ${vg}
pmc_section ${S.lvs} pmc_tool lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_attr,lv_size,origin ${vg}
pmc_section ${S.bridge} ip -j -d link show dev ${bridge}

pmc_section ${S.procDrbd} cat /proc/drbd
pmc_section ${S.drbdadmVersion} pmc_tool drbdadm --version
if [ -e /proc/drbd ]; then
  pmc_section ${S.drbdEvents2} pmc_tool drbdsetup events2 --now --statistics
  pmc_section ${S.drbdsetupShow} pmc_tool drbdsetup show all
  pmc_section ${S.kernelLog} pmc_kernel_log
fi
pmc_section ${S.drbdResFiles} pmc_res_files
pmc_section ${S.drbdadmDump} pmc_tool drbdadm dump all
# One broken file makes drbdadm refuse them all; then the files are read raw.
if [ "$pmc_rc" != 0 ]; then
  for pmc_f in ${DRBD_CONFIG_DIR}/*.res; do
    if [ -f "$pmc_f" ]; then pmc_section "${P.resFile}$pmc_f" head -c ${RES_FILE_MAX_BYTES} "$pmc_f"; fi
  done
fi

pmc_section ${S.virshVersion} pmc_virsh version
if [ "$pmc_rc" = 0 ]; then
  pmc_section ${S.virshNodeinfo} pmc_virsh nodeinfo
  pmc_section ${S.virshList} pmc_virsh list --all
  pmc_section ${S.virshNames} pmc_virsh list --all --name
  cp "$pmc_tmp/out" "$pmc_tmp/domains"
  while IFS= read -r pmc_dom; do
    if [ -z "$pmc_dom" ]; then continue; fi
    pmc_section "${P.domainXml}$pmc_dom" pmc_virsh dumpxml --inactive --domain "$pmc_dom"
    pmc_section "${P.domainInfo}$pmc_dom" pmc_virsh dominfo --domain "$pmc_dom"
    pmc_section "${P.domainState}$pmc_dom" pmc_virsh domstate --reason --domain "$pmc_dom"
  done <"$pmc_tmp/domains"
fi
# Failures are reported per section; the probe itself ran.
exit 0
`;
}
