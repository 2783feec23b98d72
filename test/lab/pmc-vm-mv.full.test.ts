// pmc vm mv on the real cluster: a VM made by pmc vm add runs the guest workload (a counter
// written to its disk about twice a second) and is live-migrated pm-1 -> pm-2 -> pm-1. The
// counter, sampled from the LV under DRBD all along, never goes backwards and keeps rising;
// afterwards one Primary, allow-two-primaries off in the kernel (drbdsetup show), one UUID.
// Shares the lab with other tests: only `mv-` names, DRBD minors 700-749, ports 9700-9749.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { drbdDiskStates, drbdRoles, ensureLabUp, labExec, labExecOk, readCounter, waitFor, waitForCounter } from "./lab.ts";
import { pmc, pmcJson } from "./pmc.ts";
import { assertSettled, config, createGuest, lvOf, removeGuest, sampleCounter, type MoveJson } from "./mv-guest.ts";

const VM = "mv-work";
const LV = lvOf(VM);
const started = Date.now();

async function migrate(from: string, to: string): Promise<void> {
  const before = (await readCounter("pm-2", LV))!;
  const sampler = sampleCounter("pm-2", LV);
  const t0 = Date.now();
  const { code, data, stderr } = await pmcJson<MoveJson>(["vm", "mv", VM], { config });
  const wall = Date.now() - t0;
  const values = await sampler.stop();
  assert.equal(code, 0, `${stderr}\n${JSON.stringify(data, null, 2)}`);
  const o = data.outcomes[0]!;
  assert.deepEqual([o.status, o.source, o.target], ["migrated", from, to]);
  const t = o.timings!;
  // Progress is polled every second and shown every 3 s: a short migration may end before the first report.
  if (t.migrateMs > 20_000) assert.match(stderr, /% of memory sent, .* remaining/, "progress shown");
  console.log(`# ${from} -> ${to}: pmc ran ${(wall / 1000).toFixed(1)} s: reading and checking the cluster ${(data.checksMs / 1000).toFixed(1)} s, `
    + `role changes and checks on the nodes ${(t.roleChangesMs / 1000).toFixed(1)} s, virsh migrate ${(t.migrateMs / 1000).toFixed(1)} s`);
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `counter went backwards: ${values.slice(i - 1, i + 1)}`);
  assert.ok(values.every((v) => v >= before), "never below the value before the migration");
  await assertSettled(VM, to);
  const after = await waitForCounter("pm-2", LV, Math.max(before, ...values), 120_000);
  console.log(`# counter ${before} before, ${values.at(-1)} when pmc returned, ${after} later (${values.length} samples)`);
}

describe("pmc vm mv on the lab", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await createGuest(VM);
  });

  after(async () => {
    await removeGuest(VM);
    console.log(`# pmc-vm-mv.full.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("--dry-run checks and prints the plan, and changes nothing", async () => {
    const r = await pmc(["vm", "mv", "--dry-run", VM], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /dry run, nothing changed: migrate mv-work from pm-1 to pm-2/);
    assert.match(r.stdout, /\$ drbdadm net-options --allow-two-primaries=yes mv-work/);
    assert.match(r.stdout, /virsh migrate --live --persistent --verbose \S+ qemu\+ssh:\/\/pm-2\/system/);
    await assertSettled(VM, "pm-1");
  });

  it("migrates pm-1 -> pm-2 -> pm-1 while the counter keeps rising", async () => {
    await migrate("pm-1", "pm-2");
    await migrate("pm-2", "pm-1");
  });

  it("--cleanup on a clean VM plans nothing", async () => {
    const r = await pmc(["vm", "mv", "--cleanup", VM], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /nothing to clean up: mv-work runs on pm-1, the only Primary/);
    await assertSettled(VM, "pm-1");
  });

  it("a full backup while the workload runs restores a whole counter, no greater than the one read after it; the guest kept counting", async () => {
    const copy = "mv-bk";
    const before = (await readCounter("pm-2", LV))!;
    const sampler = sampleCounter("pm-2", LV);
    const t0 = Date.now();
    const backup = await pmcJson<Array<{ manifest: { stamp: string; node: string; consistency: string; data: { bytes: number } } }>>(["vm", "backup", "-b", VM], { config });
    const seconds = (Date.now() - t0) / 1000;
    const values = await sampler.stop();
    assert.equal(backup.code, 0, backup.stderr);
    const m = backup.data[0]!.manifest;
    // The guest has no agent: no freeze, and the manifest says so.
    assert.deepEqual([m.node, m.consistency], ["pm-2", "crash-consistent"]);
    const afterBackup = (await readCounter("pm-2", LV))!;
    console.log(`# full backup of ${VM} (${m.data.bytes} bytes) while it runs: ${seconds.toFixed(1)} s; counter ${before} before, ${afterBackup} after`);
    assert.ok(values.length >= 2 && values.at(-1)! > values[0]!, `the counter kept rising during the backup: ${values.join(" ")}`);
    try {
      const restore = await pmc(["vm", "restore", VM, "--at", m.stamp, "--to", copy, "-f"], { config });
      assert.equal(restore.exitCode, 0, restore.stdout + restore.stderr);
      const holders = await Promise.all(["pm-1", "pm-2", "pm-3"].map(async (n) => ((await labExec(n, `test -b ${lvOf(copy)}`)).exitCode === 0 ? n : undefined)));
      const holder = holders.find((n) => n !== undefined);
      assert.ok(holder, `no node holds ${lvOf(copy)}`);
      const restored = await readCounter(holder, lvOf(copy));
      assert.ok(restored !== undefined, "the restored disk holds a whole PMC-COUNTER record");
      assert.ok(restored >= before && restored <= afterBackup, `restored ${restored}, read ${before} before and ${afterBackup} after the backup`);
    } finally {
      await removeGuest(copy);
      await Promise.all(["pm-1", "pm-2"].map((n) => labExecOk(n, `rm -rf /pmc-vm-backup/${VM}`)));
    }
    await waitForCounter("pm-2", LV, afterBackup, 120_000);
    await assertSettled(VM, "pm-1");
  });

  it("refuses a migration while the peer is not UpToDate, before anything changes", async () => {
    await labExecOk("pm-2", `drbdadm disconnect ${VM}`);
    try {
      const r = await pmc(["vm", "mv", VM], { config });
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /mv-work cannot migrate: mv-work on pm-1 is \w+ with disks UpToDate\/\w+; a migration needs Connected and UpToDate\/UpToDate on both nodes; nothing was changed \[PMC_E_STATE\]/);
      assert.deepEqual((await drbdRoles("pm-2", VM))[0], "Secondary");
      assert.doesNotMatch(await labExecOk("pm-1", `drbdsetup show ${VM}`), /allow-two-primaries\s+yes/);
    } finally {
      await labExecOk("pm-2", `drbdadm connect ${VM}`);
    }
  });

  it("peer-recreate pm-3 while the workload runs: mirrored on pm-3, nothing left on pm-2, the counter uninterrupted", async () => {
    await waitFor("pm-2 to be UpToDate again", async () =>
      (await drbdDiskStates("pm-1", VM)).join("/") === "UpToDate/UpToDate" || undefined, 300_000, 2000);
    const before = (await readCounter("pm-1", LV))!;
    const t0 = Date.now();
    const r = await pmc(["vm", "peer-recreate", "pm-3", VM], { config });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const bytes = Number((await labExecOk("pm-1", `blockdev --getsize64 ${LV}`)).trim());
    console.log(`# peer-recreate ${VM} pm-2 -> pm-3 (${bytes} bytes): ${seconds.toFixed(1)} s in all, ${(seconds / (bytes / 1024 ** 3)).toFixed(0)} s per GiB`);
    assert.equal((await labExecOk("pm-1", `virsh domstate ${VM}`)).trim(), "running");
    assert.deepEqual(await drbdRoles("pm-1", VM), ["Primary", "Secondary"]);
    assert.deepEqual(await drbdDiskStates("pm-3", VM), ["UpToDate", "UpToDate"]);
    assert.match(await labExecOk("pm-1", `drbdsetup show ${VM}`), /10\.99\.0\.13:/, "pm-1 mirrors to pm-3");
    const left = await labExecOk("pm-2", `{ virsh list --all --name; lvs --noheadings -o lv_name; ls /etc/drbd.d; drbdsetup show | grep '^resource'; } 2>/dev/null | grep -w ${VM}; true`);
    assert.equal(left.trim(), "", `pm-2 keeps: ${left}`);
    await waitForCounter("pm-1", LV, before, 120_000);
  });
});
