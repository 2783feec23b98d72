// Smoke test: the lab is real, without pmc. With the lab's own helpers: an LV and a DRBD
// resource on pm-1 and pm-2, synced; the guest workload as a libvirt domain on /dev/drbdN
// on pm-1; a live migration to pm-2 with `virsh migrate --live`; roles, disk states and
// the guest's counter checked on both nodes afterwards.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  VOLUME_GROUP,
  createDrbdResource,
  drbdConnectionState,
  drbdDiskStates,
  drbdRoles,
  ensureLabUp,
  guestDomainXml,
  labExec,
  labExecOk,
  readCounter,
  removeDrbdResource,
  waitFor,
  waitForCounter,
  writeNodeFile,
  type DrbdResourceSpec,
} from "./lab.ts";

const res: DrbdResourceSpec = { name: "lab-smoke", minor: 90, port: 7790, nodes: ["pm-1", "pm-2"] };
const lv = `/dev/${VOLUME_GROUP}/${res.name}`;
let dev = "";
const consoleLog = `/var/log/libvirt/qemu/${res.name}-console.log`;
const t = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

async function cleanup(): Promise<void> {
  for (const node of res.nodes) {
    await labExec(node, `virsh -q destroy ${res.name} 2>/dev/null; virsh -q undefine ${res.name} 2>/dev/null; true`);
  }
  await removeDrbdResource(res);
}

describe("smoke: LV + DRBD + libvirt + live migration on the lab", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await cleanup();
  });
  after(cleanup);

  it("creates an LV and a DRBD 8.4 resource on pm-1 and pm-2 and syncs it", async () => {
    const t0 = Date.now();
    dev = await createDrbdResource(res, 64);
    assert.equal(dev, "/dev/drbd90");
    assert.deepEqual(await drbdRoles("pm-1", res.name), ["Primary", "Secondary"]);
    assert.deepEqual(await drbdRoles("pm-2", res.name), ["Secondary", "Primary"]);
    assert.deepEqual(await drbdDiskStates("pm-2", res.name), ["UpToDate", "UpToDate"]);
    console.log(`# DRBD resource created and synced in ${t(t0)}`);
  });

  it("runs the guest workload as a domain on /dev/drbd90 on pm-1", async () => {
    const t0 = Date.now();
    await writeNodeFile("pm-1", `/tmp/${res.name}.xml`, guestDomainXml({ name: res.name, disk: dev, consoleFile: consoleLog }));
    await labExecOk("pm-1", `virsh -q define /tmp/${res.name}.xml && virsh -q start ${res.name}`);
    console.log(`# guest console: ${consoleLog} on the node that runs it`);
    // Emulation inside emulation: the guest's kernel takes 2-5 minutes to reach /init.
    const c1 = await waitForCounter("pm-1", dev, 0, 900_000);
    console.log(`# guest wrote its first counter (${c1}) ${t(t0)} after start`);
    const c2 = await waitForCounter("pm-1", dev, c1, 120_000);
    assert.ok(c2 > c1);
    // Replicated: the peer's LV (under DRBD) shows the counter too.
    await waitFor("the counter to reach pm-2's LV", async () => ((await readCounter("pm-2", lv)) ?? 0) >= c1, 30_000);
  });

  it("live-migrates the running domain to pm-2 with virsh migrate --live", async () => {
    const before = (await readCounter("pm-1", dev))!;
    await labExecOk("pm-2", `drbdadm primary ${res.name}`);
    assert.deepEqual(await drbdRoles("pm-1", res.name), ["Primary", "Primary"]);
    const t0 = Date.now();
    await labExecOk("pm-1", `virsh migrate --live --persistent --verbose ${res.name} qemu+ssh://pm-2/system`, { timeoutMs: 600_000 });
    console.log(`# live migration took ${t(t0)}`);
    await labExecOk("pm-1", `drbdadm secondary ${res.name}`);
    const afterMigration = (await readCounter("pm-2", dev))!;
    assert.ok(afterMigration >= before, `counter ${afterMigration} >= ${before}`);
    const later = await waitForCounter("pm-2", dev, afterMigration, 120_000);
    console.log(`# counter ${before} before, ${afterMigration} right after, ${later} later on pm-2`);
  });

  it("leaves the domain running on pm-2, shut off on pm-1, with roles and disks as expected", async () => {
    assert.equal((await labExecOk("pm-2", `virsh domstate ${res.name}`)).trim(), "running");
    assert.equal((await labExecOk("pm-1", `virsh domstate ${res.name}`)).trim(), "shut off");
    assert.deepEqual(await drbdRoles("pm-2", res.name), ["Primary", "Secondary"]);
    assert.deepEqual(await drbdRoles("pm-1", res.name), ["Secondary", "Primary"]);
    for (const node of res.nodes) {
      assert.deepEqual(await drbdDiskStates(node, res.name), ["UpToDate", "UpToDate"], node);
      assert.equal(await drbdConnectionState(node, res.name), "Connected", node);
    }
    const uuids = await Promise.all(res.nodes.map((n) => labExecOk(n, `virsh domuuid ${res.name}`)));
    assert.equal(uuids[0], uuids[1], "one domain, same UUID on both nodes");
  });
});
