// pmc vm backup / vm restore / backup ls, verify, prune on the real cluster, checked on the bytes:
// known data is written through the DRBD device of a stopped VM; every backup, restore and
// prune is checked with sha256sum, lvs and drbdadm on the nodes, not with pmc's words.
// Shares the lab with other tests: only `bk-` names, DRBD minors 900-949, ports 9900-9949.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { BACKUP_DIR, VOLUME_GROUP, drbdRoles, ensureLabUp, labExec, labExecOk, shq, waitFor, waitForConnected } from "./lab.ts";
import { labConfigFor, pmc, pmcChild, pmcJson } from "./pmc.ts";
import { listingCommand } from "../../src/ops/backup/catalog.ts";

const vm = "bk-a";
const restored = ["bk-r1", "bk-r2", "bk-r3", "bk-r4"];
const ALL_NODES = ["pm-1", "pm-2", "pm-3"];
const MiB = 1024 ** 2;
const config = labConfigFor("backup", { minors: [900, 949], ports: [9900, 9949] });
const started = Date.now();

interface Manifest {
  vm: string;
  node: string;
  stamp: string;
  type: string;
  base: string | null;
  data: { bytes: number; sha256: string };
  file: { name: string; bytes: number; sha256: string };
  consistency: string;
  compression?: string | null;
}
interface Run {
  apply: { status: string };
  manifest: Manifest | undefined;
}
interface Row {
  vm: string;
  node: string;
  stamp: string;
  type: string;
  needs?: string | null;
  consistency: string;
  problem?: string | null;
}

async function pmcLogged(args: string[], input?: string) {
  const t0 = Date.now();
  const r = await pmc(args, { config, ...(input === undefined ? {} : { input }) });
  console.log(`# pmc ${args.join(" ")}: exit ${r.exitCode} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/**
 * sha256 of the first `bytes` bytes of a block device or file on a node. Devices are read with
 * O_DIRECT: an LV under DRBD keeps stale pages in its page cache (DRBD writes beneath it; seen on
 * the lab: a buffered read of the peer's LV gave the data from before a restore).
 */
async function sha(node: string, path: string, bytes: number): Promise<string> {
  const direct = path.startsWith("/dev/") ? ",direct" : "";
  const out = await labExecOk(node, `dd if=${shq(path)} bs=16M iflag=count_bytes${direct} count=${bytes} status=none | sha256sum`, { timeoutMs: 300_000 });
  return out.trim().split(/\s+/)[0]!;
}

/** Overwrites `mib` MiB at `offsetMiB` of the device with random bytes. */
async function scribble(node: string, device: string, offsetMiB: number, mib: number): Promise<void> {
  await labExecOk(node, `dd if=/dev/urandom of=${shq(device)} bs=1M seek=${offsetMiB} count=${mib} iflag=fullblock oflag=direct conv=fsync status=none`);
}

/** Where a VM's DRBD device is and which node is its Primary (from the nodes, not pmc). */
async function drbdDevice(name: string): Promise<{ primary: string; device: string }> {
  for (const node of ALL_NODES) {
    const r = await labExec(node, `drbdadm role ${shq(name)} 2>/dev/null`);
    if (r.exitCode === 0 && r.stdout.startsWith("Primary/")) {
      return { primary: node, device: (await labExecOk(node, `drbdadm sh-dev ${shq(name)}`)).trim() };
    }
  }
  throw new Error(`${name} is Primary nowhere`);
}

async function files(node: string): Promise<string[]> {
  const r = await labExec(node, `cd ${BACKUP_DIR}/${vm} 2>/dev/null && ls -A`);
  return r.stdout.split("\n").filter((f) => f && f !== ".lock").sort();
}

async function snapshots(): Promise<string[]> {
  const out = await Promise.all(ALL_NODES.map((n) => labExecOk(n, `lvs --noheadings -o lv_name ${VOLUME_GROUP}`)));
  return out.join("\n").split(/\s+/).filter((n) => n.includes("_pmcsnap"));
}

/** Changes one byte of a file on a node (and returns how to change it back). */
async function flipByte(node: string, file: string, offset: number): Promise<() => Promise<void>> {
  const read = `dd if=${shq(file)} bs=1 skip=${offset} count=1 status=none | od -An -tu1 | tr -d ' '`;
  const original = Number((await labExecOk(node, read)).trim());
  const write = (value: number) =>
    labExecOk(node, `printf "\\\\$(printf %03o ${value})" | dd of=${shq(file)} bs=1 seek=${offset} count=1 conv=notrunc status=none`);
  await write((original + 1) % 256);
  assert.equal(Number((await labExecOk(node, read)).trim()), (original + 1) % 256);
  return async () => {
    await write(original);
  };
}

async function cleanup(): Promise<void> {
  for (const name of [vm, ...restored]) await pmc(["vm", "rm", "-f", name], { config });
  await Promise.all(ALL_NODES.map((n) => labExec(n, `rm -rf ${BACKUP_DIR}/bk-*; for s in $(lvs --noheadings -o lv_name ${VOLUME_GROUP} | grep '^ *bk-.*_pmcsnap'); do lvremove -f ${VOLUME_GROUP}/$s; done; true`)));
}

describe("pmc backups on the lab", { timeout: 20 * 60_000 }, () => {
  let device = "";
  let dataBytes = 0;
  const shas: string[] = [];
  const stamps: string[] = [];

  before(async () => {
    await ensureLabUp();
    await cleanup();
    const add = await pmcLogged(["vm", "add", "-p", "pm-1", "-p", "pm-2", "-s", "256M", "-m", "64M", "--no-start", "--force", vm]);
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    ({ device } = await drbdDevice(vm));
    dataBytes = Number((await labExecOk("pm-1", `blockdev --getsize64 ${device}`)).trim());
    await labExecOk("pm-1", `dd if=/dev/urandom of=${device} bs=1M iflag=fullblock,count_bytes count=${dataBytes} oflag=direct conv=fsync status=none`);
  });

  after(async () => {
    await cleanup();
    console.log(`# pmc-backup.full.test.ts: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("a full backup is read on the standby from a snapshot: exact bytes, manifest, no role change, no snapshot left", async () => {
    shas.push(await sha("pm-1", device, dataBytes));
    const r = await pmcJson<Run[]>(["vm", "backup", "-b", vm], { config });
    assert.equal(r.code, 0, r.stderr);
    const m = r.data[0]!.manifest!;
    assert.equal(m.node, "pm-2");
    assert.equal(m.type, "full");
    assert.equal(m.consistency, "shut-off");
    // The data area: what the Primary's /dev/drbdN holds, not the LV with DRBD's metadata at its end.
    assert.equal(m.data.bytes, dataBytes);
    const lvBytes = Number((await labExecOk("pm-2", `blockdev --getsize64 /dev/${VOLUME_GROUP}/${vm}`)).trim());
    assert.ok(lvBytes > dataBytes, `${lvBytes} > ${dataBytes}`);
    assert.equal(m.data.sha256, shas[0]);
    const file = `${BACKUP_DIR}/${vm}/${m.stamp}.base`;
    assert.equal(await sha("pm-2", file, dataBytes + 1), shas[0]);
    assert.equal(Number((await labExecOk("pm-2", `stat -c %s ${file}`)).trim()), dataBytes);
    assert.deepEqual(await files("pm-2"), [`${m.stamp}.base`, `${m.stamp}.json`]);
    assert.deepEqual(JSON.parse(await labExecOk("pm-2", `cat ${BACKUP_DIR}/${vm}/${m.stamp}.json`)), m);
    assert.deepEqual(await snapshots(), []);
    assert.deepEqual(await drbdRoles("pm-1", vm), ["Primary", "Secondary"]);
    stamps.push(m.stamp);
  });

  it("an increment after a change holds only the change and needs the full image", async () => {
    await scribble("pm-1", device, 64, 4);
    shas.push(await sha("pm-1", device, dataBytes));
    const r = await pmcJson<Run[]>(["vm", "backup", vm], { config });
    assert.equal(r.code, 0, r.stderr);
    const m = r.data[0]!.manifest!;
    assert.equal(m.type, "incremental");
    assert.equal(m.base, stamps[0]);
    assert.equal(m.data.sha256, shas[1]);
    assert.ok(m.file.bytes < 6 * MiB, `the increment of a 4 MiB change has ${m.file.bytes} bytes`);
    assert.equal(await sha("pm-2", `${BACKUP_DIR}/${vm}/${m.stamp}.xdelta3`, m.file.bytes + 1), m.file.sha256);
    assert.deepEqual(await snapshots(), []);
    stamps.push(m.stamp);
    // Changed again: restores below must bring back the earlier states, not this one.
    await scribble("pm-1", device, 128, 4);
  });

  it("restores each time into a new VM, byte-exact", async () => {
    for (const [i, name] of restored.slice(0, 2).entries()) {
      const r = await pmcLogged(["vm", "restore", vm, "--at", stamps[i]!, "--to", name, "-f"]);
      assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`read back: sha256 ${shas[i]}, matches the manifest`));
      const target = await drbdDevice(name);
      assert.equal(await sha(target.primary, target.device, dataBytes), shas[i], `${name} holds ${vm} as of ${stamps[i]}`);
      assert.equal((await labExecOk(target.primary, `virsh domstate ${name}`)).trim(), "shut off");
    }
  });

  it("backup ls lists them; verify finds them good and catches one flipped byte in a full image and in an increment", async () => {
    const ls = await pmcJson<Row[]>(["backup", "ls", vm], { config });
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.data.map((r) => [r.stamp, r.type, r.node, r.needs ?? null, r.consistency]), [
      [stamps[0], "full", "pm-2", null, "shut-off"],
      [stamps[1], "incremental", "pm-2", stamps[0], "shut-off"],
    ]);
    const good = await pmcLogged(["backup", "verify", vm]);
    assert.equal(good.exitCode, 0, good.stdout + good.stderr);
    for (const [stamp, ext] of [[stamps[1], "xdelta3"], [stamps[0], "base"]] as const) {
      const file = `${BACKUP_DIR}/${vm}/${stamp}.${ext}`;
      const unflip = await flipByte("pm-2", file, ext === "base" ? 5 * MiB + 3 : 40);
      try {
        const bad = await pmcLogged(["backup", "verify", vm]);
        assert.equal(bad.exitCode, 1, bad.stdout);
        assert.match(bad.stdout, new RegExp(`BAD  pm-2:${file}: sha256 of the file is`));
      } finally {
        await unflip();
      }
    }
    const again = await pmcLogged(["backup", "verify", vm]);
    assert.equal(again.exitCode, 0, again.stdout);
  });

  it("the old tool's backups (dd, xdelta3 -e -S djw -s BASE /dev/drbdN) are listed as not verified and restore byte-exact", async () => {
    const dir = `${BACKUP_DIR}/${vm}`;
    const [base, delta] = ["2020-01-01-00-00-00", "2020-01-01-00-00-01"];
    await labExecOk("pm-1", `mkdir -p ${dir} && dd if=${device} of=${dir}/${base}.base.tmp bs=1M status=none && mv ${dir}/${base}.base.tmp ${dir}/${base}.base`);
    await scribble("pm-1", device, 200, 2);
    const expected = await sha("pm-1", device, dataBytes);
    await labExecOk("pm-1", `xdelta3 -e -S djw -s ${dir}/${base}.base ${device} ${dir}/${delta}.xdelta3.tmp && mv ${dir}/${delta}.xdelta3.tmp ${dir}/${delta}.xdelta3`, { timeoutMs: 300_000 });
    const ls = await pmcJson<Row[]>(["backup", "ls", vm], { config });
    assert.deepEqual(ls.data.filter((r) => r.node === "pm-1").map((r) => [r.stamp, r.type, r.needs ?? null, r.consistency, r.problem ?? null]), [
      [base, "full", null, "not verified", null],
      [delta, "incremental", base, "not verified", null],
    ]);
    if (process.env.PMC_BACKUP_FIXTURE) {
      // The unit tests' fixture: real listings of pmc's backups (pm-2) and the old tool's (pm-1).
      const listings = await Promise.all(["pm-2", "pm-1"].map((n) => labExecOk(n, listingCommand(BACKUP_DIR))));
      fs.writeFileSync(process.env.PMC_BACKUP_FIXTURE, listings.join(""));
    }
    const r = await pmcLogged(["vm", "restore", vm, "--at", delta, "-p", "pm-1", "--to", restored[2]!, "-f"]);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /no manifest \(old tool\): xdelta3's checksums passed/);
    const target = await drbdDevice(restored[2]!);
    assert.equal(await sha(target.primary, target.device, dataBytes), expected);
    const verify = await pmcLogged(["backup", "verify", vm]);
    assert.equal(verify.exitCode, 0, verify.stdout);
    assert.match(verify.stdout, new RegExp(`good pm-1:${dir}/${delta}.xdelta3: no manifest \\(old tool\\): decodes against ${base}`));
  });

  it("prune --keep-full 1 keeps exactly the newest chain on each node", async () => {
    await waitForConnected("pm-1", vm);
    for (const args of [["-b"], []]) {
      const r = await pmcJson<Run[]>(["vm", "backup", ...args, vm], { config });
      assert.equal(r.code, 0, r.stderr);
      stamps.push(r.data[0]!.manifest!.stamp);
    }
    const before = await files("pm-2");
    const dry = await pmcLogged(["backup", "prune", vm, "--keep-full", "1", "--dry-run"]);
    assert.equal(dry.exitCode, 0, dry.stderr);
    // The older chain on pm-2 (a full image and its increment); pm-1 keeps its only chain.
    assert.match(dry.stdout, /prune 2 backups/);
    assert.deepEqual(await files("pm-2"), before);
    const r = await pmcLogged(["backup", "prune", vm, "--keep-full", "1"]);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.deepEqual(await files("pm-2"), [`${stamps[2]}.base`, `${stamps[2]}.json`, `${stamps[3]}.json`, `${stamps[3]}.xdelta3`]);
    assert.deepEqual(await files("pm-1"), ["2020-01-01-00-00-00.base", "2020-01-01-00-00-01.xdelta3"]);
  });

  it("-b --zstd: a .base.zst that decompresses to the disk's bytes and restores byte-exact", async () => {
    const expected = await sha("pm-1", device, dataBytes);
    const r = await pmcJson<Run[]>(["vm", "backup", "-b", "--zstd", vm], { config });
    assert.equal(r.code, 0, r.stderr);
    const m = r.data[0]!.manifest!;
    const file = `${BACKUP_DIR}/${vm}/${m.stamp}.base.zst`;
    assert.deepEqual([m.compression, m.data.sha256], ["zstd", expected]);
    assert.ok((await files("pm-2")).includes(`${m.stamp}.base.zst`));
    assert.equal((await labExecOk("pm-2", `zstd -q -dc ${file} | sha256sum`, { timeoutMs: 300_000 })).split(/\s+/)[0], expected);
    const restore = await pmcLogged(["vm", "restore", vm, "--at", m.stamp, "--to", restored[3]!, "-f"]);
    assert.equal(restore.exitCode, 0, restore.stdout + restore.stderr);
    const target = await drbdDevice(restored[3]!);
    assert.equal(await sha(target.primary, target.device, dataBytes), expected);
  });

  /** What pmc cluster verify finds about bk-a or a backup snapshot: nothing, after a failed backup. */
  async function verifyFindings(): Promise<string[]> {
    const v = await pmcJson<{ findings: Array<{ code: string; message: string }> }>(["cluster", "verify"], { config });
    return v.data.findings.filter((f) => f.message.includes(vm)).map((f) => `${f.code}: ${f.message}`);
  }

  it("a backup whose manager is killed midway leaves no file that looks complete, no snapshot, the roles as they were", async () => {
    const before = await files("pm-2");
    // The kill point is deterministic: on pm-2 the read of pmc's snapshot is held by a dd
    // wrapper (bind-mounted, /run is noexec) that prints progress like a slow disk and no data.
    const dd = (await labExecOk("pm-2", "command -v dd")).trim();
    const dir = "/var/lib/pmc-test";
    const wrapper = [
      "#!/bin/sh",
      // Opens its output as dd does (a full image is dd's own of=), then writes nothing to it.
      'case " $* " in *_pmcsnap*) touch /run/pmc-test-backup-reached; for a in "$@"; do case "$a" in of=*) : > "${a#of=}";; esac; done; while :; do echo "1048576 bytes (1.0 MB, 1.0 MiB) copied, 1 s, 1.0 MB/s" >&2; sleep 1; done;; esac',
      `exec ${dir}/dd.real "$@"`,
    ].join("\n");
    await labExecOk("pm-2", `rm -f /run/pmc-test-backup-reached; mkdir -p ${dir}; cp ${dd} ${dir}/dd.real; ` +
      `printf '%s\\n' ${shq(wrapper)} > ${dir}/dd; chmod 755 ${dir}/dd; mount --bind ${dir}/dd ${dd}`);
    try {
      const run = pmcChild(["vm", "backup", "-b", vm], { config });
      await waitFor("pm-2 to read the snapshot", async () =>
        (await labExec("pm-2", "test -e /run/pmc-test-backup-reached")).exitCode === 0 || undefined, 600_000, 1000);
      // Midway for real: the snapshot and the .tmp file exist.
      assert.equal((await snapshots()).length, 1);
      await waitFor("the .base.tmp file on pm-2", async () => (await files("pm-2")).some((f) => f.endsWith(".base.tmp")) || undefined, 30_000, 1000);
      run.child.kill("SIGKILL");
      await run.exit;
      // The node cleans up by itself when the session closes: the wrapper's next write gets SIGPIPE.
      await waitFor("pm-2 to remove the snapshot and the .tmp file", async () =>
        ((await snapshots()).length === 0 && !(await files("pm-2")).some((f) => f.endsWith(".tmp"))) || undefined, 120_000, 2000);
    } finally {
      // The wrapper first: a bind mount whose file a shell still reads cannot be unmounted, and a
      // dd left wrapped would hold every later backup on pm-2 forever.
      await labExec("pm-2", `pkill -f '[_]pmcsnap'; sleep 2`);
      await labExecOk("pm-2", `umount ${dd}`);
    }
    assert.deepEqual(await files("pm-2"), before);
    assert.deepEqual(await drbdRoles("pm-1", vm), ["Primary", "Secondary"]);
    assert.deepEqual(await drbdRoles("pm-2", vm), ["Secondary", "Primary"]);
    assert.deepEqual(await verifyFindings(), []);
    // The lock went with the manager.
    for (const node of ["pm-1", "pm-2"]) assert.equal((await labExec(node, "flock -n /run/lock/pmc.lock true")).exitCode, 0, `${node} still locked`);
  });

  it("a full backup that fills the backup file system fails and leaves no file that looks complete, no snapshot", async () => {
    const target = `${BACKUP_DIR}/${vm}`;
    // pm-2's backup directory for bk-a on a 48 MiB file system: the 256 MiB image cannot fit.
    await labExecOk("pm-2", `mount -t tmpfs -o size=48m pmc-test-full ${target}`);
    try {
      const r = await pmcLogged(["vm", "backup", "-b", vm]);
      assert.equal(r.exitCode, 1, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /No space left on device/);
      assert.deepEqual(await files("pm-2"), []);
      assert.deepEqual(await snapshots(), []);
    } finally {
      await labExec("pm-2", `umount ${target}`);
    }
    assert.deepEqual(await drbdRoles("pm-1", vm), ["Primary", "Secondary"]);
    assert.deepEqual(await verifyFindings(), []);
  });

  it("restore onto the VM's own disk: refused while it runs; afterwards both DRBD copies hold the restored bytes", async () => {
    const current = await sha("pm-1", device, dataBytes);
    // Changed after the last backup: the restore must bring back that backup's bytes.
    await scribble("pm-1", device, 10, 4);
    const changed = await sha("pm-1", device, dataBytes);
    await waitForConnected("pm-1", vm);
    const start = await pmcLogged(["vm", "start", vm]);
    assert.equal(start.exitCode, 0, start.stdout + start.stderr);
    const refused = await pmcLogged(["vm", "restore", vm, "--at", stamps[3]!, "-f"]);
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /bk-a runs on pm-1: its disk cannot be restored under it \[PMC_E_STATE\]/);
    assert.equal(await sha("pm-1", device, dataBytes), changed);
    const stop = await pmcLogged(["vm", "destroy", "-f", vm]);
    assert.equal(stop.exitCode, 0, stop.stdout + stop.stderr);
    const noTerminal = await pmcLogged(["vm", "restore", vm, "--at", stamps[3]!]);
    assert.equal(noTerminal.exitCode, 1);
    assert.match(noTerminal.stderr, /PMC_E_CONFIRM/);
    const r = await pmcLogged(["vm", "restore", vm, "--at", stamps[3]!, "-f"]);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const lv = `/dev/${VOLUME_GROUP}/${vm}`;
    for (const node of ["pm-1", "pm-2"]) assert.equal(await sha(node, lv, dataBytes), current, `${node}'s copy`);
    assert.deepEqual(await drbdRoles("pm-1", vm), ["Secondary", "Secondary"]);
    assert.deepEqual((await labExecOk("pm-1", `drbdadm dstate ${vm}`)).trim(), "UpToDate/UpToDate");
  });
});
