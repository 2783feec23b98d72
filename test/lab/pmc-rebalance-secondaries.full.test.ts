// pmc cluster rebalance --secondaries on the real cluster: two tiny VMs (sitting in their
// firmware: running is all a live migration needs) paired pm-1/pm-2, both running on pm-1;
// pm-3 holds nothing, as a node just added. Rebalance moves at least one standby copy to pm-3
// (read from lvs and drbdadm on the nodes: the LV there, UpToDate, gone from the old peer with
// its resource file and domain), then live-migrates so that pm-1 no longer runs both; a second
// run moves nothing.
// Shares the lab with other tests: only `rs-` names, DRBD minors 450-469, ports 8450-8469.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { VOLUME_GROUP, drbdDiskStates, ensureLabUp, labExec } from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";
import { assertSettled, removeGuest } from "./mv-guest.ts";

const config = labConfigFor("rebalance-secondaries", { minors: [450, 469], ports: [8450, 8469] }, "domainType: qemu\n");
const VMS = ["rs-a", "rs-b"];
const NODES = ["pm-1", "pm-2", "pm-3"];
const started = Date.now();

interface RebalanceJson {
  scoreBefore: number;
  scoreAfter: number;
  disk?: { scoreBefore: number; scoreAfter: number };
  outcomes: Array<{ kind: "move copy" | "migrate"; vm: string; from: string; to: string; status: string; reason: string }>;
}

/** The nodes whose volume group holds the VM's LV. */
async function lvNodes(vm: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of NODES) {
    if ((await labExec(node, `lvs --noheadings -o lv_name ${VOLUME_GROUP}/${vm}`)).exitCode === 0) found.push(node);
  }
  return found;
}

/** Where each VM runs, as the nodes' libvirt says. */
async function placement(): Promise<Record<string, string[]>> {
  const where: Record<string, string[]> = {};
  for (const vm of VMS) {
    where[vm] = [];
    for (const node of NODES) if ((await labExec(node, `virsh domstate ${vm}`)).stdout.trim() === "running") where[vm].push(node);
  }
  return where;
}

describe("pmc cluster rebalance --secondaries on the lab", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    for (const vm of VMS) {
      await removeGuest(vm, config);
      const add = await pmc(["vm", "add", "-p", "pm-1", "-p", "pm-2", "-s", "64M", "-m", "64M", vm], { config });
      assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    }
  });

  after(async () => {
    for (const vm of VMS) await removeGuest(vm, config);
    console.log(`# pmc-rebalance-secondaries.full.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("pm-3 empty: a standby copy moves there (LV UpToDate, gone from the old peer), then a VM migrates so pm-1 no longer runs both; a second run moves nothing", async () => {
    assert.deepEqual(await placement(), { "rs-a": ["pm-1"], "rs-b": ["pm-1"] }, "both start on pm-1");
    for (const vm of VMS) assert.deepEqual(await lvNodes(vm), ["pm-1", "pm-2"], `${vm}: copies on pm-1 and pm-2 only`);

    const dry = await pmcJson<RebalanceJson>(["cluster", "rebalance", "--secondaries", "--dry-run"], { config });
    assert.equal(dry.code, 0, dry.stderr);
    assert.ok(dry.data.outcomes.some((o) => o.kind === "move copy" && o.to === "pm-3"), JSON.stringify(dry.data.outcomes));
    assert.ok(dry.data.outcomes.every((o) => o.status === "dry-run"));
    for (const vm of VMS) assert.deepEqual(await lvNodes(vm), ["pm-1", "pm-2"], `${vm}: the dry run changed nothing`);

    const t0 = Date.now();
    const r = await pmcJson<RebalanceJson>(["cluster", "rebalance", "--secondaries"], { config });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.data, null, 1)}`);
    console.log(`# rebalance --secondaries: ${r.data.outcomes.map((o) => `${o.vm} ${o.kind} ${o.from} -> ${o.to} ${o.status}`).join(", ")}; `
      + `score ${r.data.scoreBefore.toFixed(3)} -> ${r.data.scoreAfter.toFixed(3)}, disk score ${r.data.disk?.scoreBefore.toFixed(3)} -> ${r.data.disk?.scoreAfter.toFixed(3)} in ${seconds.toFixed(1)} s`);
    assert.ok(r.data.outcomes.every((o) => o.status === "done"), JSON.stringify(r.data.outcomes));
    const copies = r.data.outcomes.filter((o) => o.kind === "move copy");
    assert.ok(copies.some((o) => o.to === "pm-3"), "at least one standby copy moved to pm-3");
    const firstMigration = r.data.outcomes.findIndex((o) => o.kind === "migrate");
    assert.ok(firstMigration === -1 || r.data.outcomes.slice(firstMigration).every((o) => o.kind === "migrate"), "copies first, then migrations");

    for (const o of copies) {
      assert.deepEqual(await lvNodes(o.vm), ["pm-1", o.to].sort(), `${o.vm}: its LV on ${o.to}, gone from ${o.from}`);
      assert.deepEqual(await drbdDiskStates(o.to, o.vm), ["UpToDate", "UpToDate"], `${o.vm} is UpToDate on ${o.to}`);
      assert.notEqual((await labExec(o.from, `drbdadm dstate ${o.vm}`)).exitCode, 0, `${o.vm}'s resource is gone from ${o.from}`);
      assert.notEqual((await labExec(o.from, `test -e /etc/drbd.d/${o.vm}.res`)).exitCode, 0, `${o.vm}'s resource file is gone from ${o.from}`);
      assert.notEqual((await labExec(o.from, `virsh domstate ${o.vm}`)).exitCode, 0, `${o.vm} is no longer defined on ${o.from}`);
    }

    const where = await placement();
    for (const vm of VMS) {
      assert.equal(where[vm]!.length, 1, `${vm} runs exactly once: ${where[vm]}`);
      await assertSettled(vm, where[vm]![0]!, await lvNodes(vm));
    }
    assert.ok(VMS.some((vm) => where[vm]![0] !== "pm-1"), `pm-1 no longer runs both: ${JSON.stringify(where)}`);

    const again = await pmcJson<RebalanceJson>(["cluster", "rebalance", "--secondaries"], { config });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.data.outcomes, [], "balanced: a second run moves nothing");
    assert.deepEqual(await placement(), where);
  });
});
