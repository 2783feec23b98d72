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
  /** vgs and lvs in one `lvm fullreport`. */
  lvm: 'lvm',
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
  /** Only when storage.shared is configured. */
  sharedStorage: 'shared-storage',
} as const;

/** Sections that exist once per .res file or per domain: `<prefix><file or domain name>`. */
/**
 * A virsh session that printed several sections (virsh-session.ts), named after the first
 * section it was to print, which takes the blame when virsh does not start at all.
 */
export const VIRSH_SESSION_PREFIX = 'virsh:';

export const SECTION_PREFIX = {
  resFile: 'drbd-res-file:',
  domainXml: 'domain-xml:',
  domainInfo: 'domain-info:',
  domainState: 'domain-state:',
} as const;

/** Programs whose presence is reported as `NodeFacts.tools`. */
export const CHECKED_TOOLS: readonly (keyof ToolFacts)[] = ['xdelta3', 'rsync', 'zstd'];

const DRBD_CONFIG_DIR = '/etc/drbd.d';
/**
 * Where a failover records, per DRBD resource, that this node's copy is the authoritative one
 * and which node holds the stale copy: one file per resource, `<lost node> <ISO time>`. It stays
 * until `pmc pm rejoin` has made the lost node a resync target.
 */
export const AUTHORITY_DIR = '/var/lib/pmc/authoritative';
/** The marker file in storage.shared.directory whose id proves every node mounts the same file system. */
export const SHARED_ID_FILE = '.pmc-shared-id';
/**
 * The shared directory in one command (run by sh under the tool timeout, so a hung network file
 * system costs 20 seconds, not the probe), whatever the number of VMs: whether it exists, the
 * type of the file system there, whether it is a mount point, the marker, and every disk file
 * with its size (one find). $1 is the directory, an absolute path, so find cannot take it for an option.
 */
const SHARED_SCRIPT = [
  'if [ ! -d "$1" ]; then echo absent; exit 0; fi',
  'echo "fstype $(findmnt -n -o FSTYPE --target "$1" 2>/dev/null)"',
  'if mountpoint -q "$1"; then echo "mountpoint yes"; else echo "mountpoint no"; fi',
  `if [ -f "$1/${SHARED_ID_FILE}" ]; then echo "id $(head -c 256 "$1/${SHARED_ID_FILE}" | head -n 1)"; fi`,
  String.raw`find "$1" -maxdepth 1 -type f -name '*.img' -printf 'file %s %f\n'`,
].join('\n');
/** Every tool call gets this long; a hung virsh or drbdsetup must not cost the whole probe. */
const TOOL_TIMEOUT_SECONDS = 20;
/** Only the last split-brain reports and lost connections matter; the kernel log can be megabytes. */
const KERNEL_LOG_LINES = 100;
const RES_FILE_MAX_BYTES = 65536;
/** Enough for any tool's error message; a runaway stderr must not swamp the output. */
const STDERR_MAX_BYTES = 4096;
/** A virsh session's stderr carries two marker lines per command besides the errors. */
const SESSION_STDERR_MAX_BYTES = 1048576;
/**
 * Domains per virsh session: its commands travel as one argument, which Linux caps at 128 KiB
 * (MAX_ARG_STRLEN); a domain's three commands with their markers take about 300 bytes.
 */
export const DOMAINS_PER_SESSION = 200;

/**
 * One POSIX sh script (dash-compatible) that gathers everything about a node in one round trip.
 * It only reads: no command here changes the node. Commands that may talk to the DRBD kernel
 * module run only when the module is loaded (/proc/drbd exists), so the probe never loads it.
 *
 * Its cost does not grow with the number of domains: libvirt is asked in two virsh sessions
 * (see virsh-session.ts), LVM in one report, and the node, LVM, DRBD and libvirt parts run at
 * the same time, each into files that one awk at the end frames and escapes in a fixed order.
 * About 20 programs start per probe, whatever the node holds.
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
pmc_jobs=
trap 'rm -rf "$pmc_tmp"' EXIT
trap 'kill $pmc_jobs 2>/dev/null; exit 129' HUP INT TERM

if command -v timeout >/dev/null 2>&1; then
  pmc_tool() { timeout ${TOOL_TIMEOUT_SECONDS} "$@"; }
else
  pmc_tool() { "$@"; }
fi

# Each part of the probe appends its sections to its own list, one line per section:
# kind, stderr (or file) byte limit, source, exit code, name. "r": source.out and source.err
# hold a command's output, each followed by a newline and a "." line, so the emitter can tell
# whether the output ended with a newline. "f": source is a file the emitter reads itself.
# pmc_run LIST NAME STDERR_LIMIT CMD...
pmc_run() {
  pmc_list=$1 pmc_name=$2 pmc_limit=$3
  shift 3
  pmc_n=$((pmc_n + 1))
  pmc_f=$pmc_tmp/$pmc_list.$pmc_n
  "$@" >"$pmc_f.out" 2>"$pmc_f.err" </dev/null
  pmc_rc=$?
  printf '\\n.' >>"$pmc_f.out"
  printf '\\n.' >>"$pmc_f.err"
  printf 'r\\t%s\\t%s\\t%s\\t%s\\n' "$pmc_limit" "$pmc_f" "$pmc_rc" "$pmc_name" >>"$pmc_tmp/$pmc_list.list"
  return $pmc_rc
}

# pmc_file LIST NAME FILE BYTE_LIMIT (0: whole file)
pmc_file() {
  printf 'f\\t%s\\t%s\\t-\\t%s\\n' "$4" "$3" "$2" >>"$pmc_tmp/$1.list"
}

pmc_authority() {
  for pmc_auth in ${AUTHORITY_DIR}/*; do
    if [ -f "$pmc_auth" ]; then printf '%s %s\n' "\${pmc_auth##*/}" "$(head -c 256 "$pmc_auth" | head -n 1)"; fi
  done
}

pmc_tools() {
  for pmc_t in ${CHECKED_TOOLS.join(' ')}; do
    if command -v "$pmc_t" >/dev/null 2>&1; then echo "$pmc_t yes"; else echo "$pmc_t no"; fi
  done
}

pmc_res_files() {
  for pmc_res in ${DRBD_CONFIG_DIR}/*.res; do
    if [ -f "$pmc_res" ]; then printf '%s\\n' "$pmc_res"; fi
  done
}

# dmesg's own exit code must survive the filter, so it is written whole first.
pmc_kernel_log() {
  dmesg >"$pmc_tmp/dmesg" || return
  awk 'index($0, "Split-Brain") || index($0, "conn( Connected -> ") { l[n++ % ${KERNEL_LOG_LINES}] = $0 }
    END { for (i = (n > ${KERNEL_LOG_LINES} ? n - ${KERNEL_LOG_LINES} : 0); i < n; i++) print l[i % ${KERNEL_LOG_LINES}] }' "$pmc_tmp/dmesg"
}

pmc_drbd() {
  pmc_file drbd ${S.procDrbd} /proc/drbd 0
  pmc_run drbd ${S.drbdadmVersion} ${STDERR_MAX_BYTES} pmc_tool drbdadm --version
  if [ -e /proc/drbd ]; then
    pmc_run drbd ${S.drbdEvents2} ${STDERR_MAX_BYTES} pmc_tool drbdsetup events2 --now --statistics
    pmc_run drbd ${S.drbdsetupShow} ${STDERR_MAX_BYTES} pmc_tool drbdsetup show all
    pmc_run drbd ${S.kernelLog} ${STDERR_MAX_BYTES} pmc_kernel_log
  fi
  pmc_run drbd ${S.drbdResFiles} ${STDERR_MAX_BYTES} pmc_res_files
  # One broken file makes drbdadm refuse them all; then the files are read raw.
  if ! pmc_run drbd ${S.drbdadmDump} ${STDERR_MAX_BYTES} pmc_tool drbdadm dump all; then
    for pmc_res in ${DRBD_CONFIG_DIR}/*.res; do
      if [ -f "$pmc_res" ]; then pmc_file drbd "${P.resFile}$pmc_res" "$pmc_res" ${RES_FILE_MAX_BYTES}; fi
    done
  fi
}

# virsh sessions: every command is preceded by a marker line on stdout and on stderr naming
# its section (virsh-session.ts splits them apart again). The marker carries mktemp's random
# name, so no domain's XML can contain it. virsh's own parser splits words like a shell.
pmc_mark=${MARKER}.\${pmc_tmp##*/}
# qemu:///system explicitly: as a non-root user plain virsh would ask the empty session daemon.
pmc_virsh() { pmc_tool virsh -c qemu:///system "$@"; }
# pmc_virsh_add SECTION COMMAND (both already quoted for virsh)
pmc_virsh_add() { pmc_cmds="$pmc_cmds echo --err $pmc_mark $1; echo $pmc_mark $1; $2;"; }
# Sets pmc_q to $1 quoted for virsh: '...', a ' inside written as '\\''.
pmc_virsh_quote() {
  pmc_rest=$1
  pmc_q=
  while :; do
    case $pmc_rest in
      *\\'*) pmc_head=\${pmc_rest%%\\'*}; pmc_q=$pmc_q$pmc_head\\'\\\\\\'\\'; pmc_rest=\${pmc_rest#*\\'} ;;
      *) break ;;
    esac
  done
  pmc_q=\\'$pmc_q$pmc_rest\\'
}
pmc_virsh_reset() {
  pmc_cmds=
  pmc_first=
  pmc_count=0
}
pmc_virsh_flush() {
  if [ -n "$pmc_cmds" ]; then pmc_run libvirt "${VIRSH_SESSION_PREFIX}$pmc_first" ${SESSION_STDERR_MAX_BYTES} pmc_virsh "$pmc_cmds"; fi
  pmc_virsh_reset
}

pmc_libvirt() {
  pmc_virsh_reset
  pmc_virsh_add ${S.virshVersion} version
  pmc_virsh_add ${S.virshNodeinfo} nodeinfo
  pmc_virsh_add ${S.virshList} 'list --all'
  pmc_virsh_add ${S.virshNames} 'list --all --name'
  pmc_run libvirt ${VIRSH_SESSION_PREFIX}${S.virshVersion} ${SESSION_STDERR_MAX_BYTES} pmc_virsh "$pmc_cmds" || return
  # The domain names are what that session printed after its last marker.
  pmc_names=$pmc_f.out
  pmc_in=
  pmc_virsh_reset
  while IFS= read -r pmc_dom; do
    if [ -n "$pmc_in" ] && [ -n "$pmc_dom" ]; then
      pmc_virsh_quote "$pmc_dom"
      if [ -z "$pmc_first" ]; then pmc_first=${P.domainXml}$pmc_dom; fi
      pmc_virsh_add "${P.domainXml}$pmc_q" "dumpxml --inactive --domain $pmc_q"
      pmc_virsh_add "${P.domainInfo}$pmc_q" "dominfo --domain $pmc_q"
      pmc_virsh_add "${P.domainState}$pmc_q" "domstate --reason --domain $pmc_q"
      pmc_count=$((pmc_count + 1))
      if [ "$pmc_count" = ${DOMAINS_PER_SESSION} ]; then pmc_virsh_flush; fi
    fi
    if [ "$pmc_dom" = "$pmc_mark ${S.virshNames}" ]; then pmc_in=1; fi
  done <"$pmc_names"
  pmc_virsh_flush
}

for pmc_part in node lvm drbd libvirt; do : >"$pmc_tmp/$pmc_part.list"; done
pmc_run lvm ${S.lvm} ${STDERR_MAX_BYTES} pmc_tool lvm fullreport --reportformat json --units b --nosuffix \\
  --configreport vg -o vg_name,vg_size,vg_free,vg_extent_size \\
  --configreport lv -o lv_name,vg_name,lv_attr,lv_size,origin \\
  --configreport pv -o pv_name --configreport pvseg -o pvseg_start --configreport seg -o seg_start ${vg} &
pmc_jobs="$pmc_jobs $!"
pmc_drbd &
pmc_jobs="$pmc_jobs $!"
pmc_libvirt &
pmc_jobs="$pmc_jobs $!"

pmc_file node ${S.hostname} /proc/sys/kernel/hostname 0
pmc_file node ${S.kernelRelease} /proc/sys/kernel/osrelease 0
pmc_file node ${S.meminfo} /proc/meminfo 0
pmc_run node ${S.cpus} ${STDERR_MAX_BYTES} getconf _NPROCESSORS_ONLN
pmc_run node ${S.tools} ${STDERR_MAX_BYTES} pmc_tools
pmc_run node ${S.backupDir} ${STDERR_MAX_BYTES} test -d ${backupDir}
pmc_run node ${S.authority} ${STDERR_MAX_BYTES} pmc_authority
pmc_run node ${S.bridge} ${STDERR_MAX_BYTES} ip -j -d link show dev ${bridge}
${opts.sharedDir === undefined ? '' : `pmc_run node ${S.sharedStorage} ${STDERR_MAX_BYTES} pmc_tool sh -c ${quote(SHARED_SCRIPT)} sh ${quote(opts.sharedDir)}
`}wait

awk '${EMITTER}' "$pmc_tmp/node.list" "$pmc_tmp/lvm.list" "$pmc_tmp/drbd.list" "$pmc_tmp/libvirt.list"
# Failures are reported per section; the probe itself ran.
exit 0
`;
}

/**
 * The awk program that prints every section of the lists given as its input files, framed as
 * described at the top of this file (one process for all sections, instead of a sed each).
 * Written without single quotes: the script passes it in '...'.
 */
const EMITTER = `
function escaped(line) { return substr(line, 1, 1) == "@" ? "${ESCAPE}" line : line }
function slurp(file,   n, r, line) {
  n = 0
  while ((r = (getline line < file)) > 0) L[++n] = line
  close(file)
  return r < 0 ? -1 : n
}
# Prints the first n lines of L, at most limit bytes of them (0: no limit), each escaped and
# followed by a newline.
function body(n, limit,   i, text, count) {
  text = L[1]
  for (i = 2; i <= n; i++) text = text "\\n" L[i]
  if (limit > 0 && length(text) > limit) text = substr(text, 1, limit)
  count = split(text, L, "\\n")
  if (count == 0) print ""
  for (i = 1; i <= count; i++) print escaped(L[i])
}
BEGIN { FS = "\\t" }
{
  name = $0
  for (i = 1; i <= 4; i++) name = substr(name, index(name, "\\t") + 1)
  rc = $4
  print "${MARKER} begin " name
  if ($1 == "f") {
    n = slurp($3)
    rc = n < 0 ? 1 : 0
    if (n > 0) body(n, $2 + 0)
    print ""
    if (n < 0) { print "${MARKER} stderr " name; print "cannot read " $3 }
  } else {
    n = slurp($3 ".out")
    if (n > 0) body(n - 1, 0)
    n = slurp($3 ".err")
    if (n > 2 || (n == 2 && L[1] != "")) { print "${MARKER} stderr " name; body(n - 1, $2 + 0) }
  }
  print "${MARKER} end " name " " rc
}
`;
