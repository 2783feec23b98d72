// pmc vm mv on the real cluster: a VM made by pmc vm add runs the guest workload (a counter
// written to its disk about twice a second) and is live-migrated pm-1 -> pm-2 -> pm-1. The
// counter, sampled from the LV under DRBD all along, never goes backwards and keeps rising;
// afterwards one Primary, allow-two-primaries off in the kernel (drbdsetup show), one UUID.
// Shares the lab with other tests: only `mv-` names, DRBD minors 700-749, ports 9700-9749.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  VOLUME_GROUP,
  drbdDiskStates,
  drbdRoles,
  ensureLabUp,
  guestDomainXml,
  labExec,
  labExecOk,
  readCounter,
  sleep,
  waitForCounter,
  writeNodeFile,
} from "./lab.ts";
import { labConfigVariant, pmc, pmcJson } from "./pmc.ts";

const VM = "mv-work";
const NODES = ["pm-1", "pm-2"];
const ALL_NODES = ["pm-1", "pm-2", "pm-3"];
/** The LV under DRBD: readable on either node whatever its role; protocol C keeps it current on both. */
const LV = `/dev/${VOLUME_GROUP}/${VM}`;
const started = Date.now();

const config = labConfigVariant("mv", (yaml) =>
  yaml.replace(/^storage:\n/m, "storage:\n  drbd:\n    minors: { first: 700, last: 749 }\n    ports: { first: 9700, last: 9749 }\n"),
);

interface MoveJson {
  kind: "move";
  checksMs: number;
  outcomes: Array<{ vm: string; source: string; target: string; status: string; error?: string; timings?: { roleChangesMs: number; migrateMs: number; totalMs: number } }>;
}

async function cleanup(): Promise<void> {
  const r = await pmc(["vm", "rm", "-f", VM], { config });
  if (r.exitCode !== 0 && !/PMC_E_VM_UNKNOWN/.test(r.stderr)) {
    // pmc could not remove it (a broken earlier run): by hand, on every node.
    await Promise.all(ALL_NODES.map((n) => labExec(n, `virsh destroy ${VM}; virsh undefine --nvram ${VM}; drbdadm down ${VM}; lvremove -y ${LV}; rm -f /etc/drbd.d/${VM}.res; true`)));
  }
}

/** Reads the counter from pm-2's LV about once a second until stopped; every value, in order. */
function sampleCounter(): { stop: () => Promise<number[]> } {
  const values: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const c = await readCounter("pm-2", LV).catch(() => undefined);
      if (c !== undefined) values.push(c);
      await sleep(1000);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return values;
    },
  };
}

async function assertSettled(runsOn: string): Promise<void> {
  const other = NODES.find((n) => n !== runsOn)!;
  assert.equal((await labExecOk(runsOn, `virsh domstate ${VM}`)).trim(), "running", `runs on ${runsOn}`);
  assert.equal((await labExecOk(other, `virsh domstate ${VM}`)).trim(), "shut off", `not on ${other}`);
  assert.deepEqual(await drbdRoles(runsOn, VM), ["Primary", "Secondary"], "exactly one Primary");
  assert.deepEqual(await drbdRoles(other, VM), ["Secondary", "Primary"]);
  for (const node of NODES) {
    assert.deepEqual(await drbdDiskStates(node, VM), ["UpToDate", "UpToDate"], node);
    assert.doesNotMatch(await labExecOk(node, `drbdsetup show ${VM}`), /allow-two-primaries\s+yes/, `two primaries off on ${node}`);
  }
  const uuids = await Promise.all(NODES.map(async (n) => (await labExecOk(n, `virsh domuuid ${VM}`)).trim()));
  assert.equal(uuids[0], uuids[1], "one UUID on both nodes");
}

async function migrate(from: string, to: string): Promise<void> {
  const before = (await readCounter("pm-2", LV))!;
  const sampler = sampleCounter();
  const t0 = Date.now();
  const { code, data, stderr } = await pmcJson<MoveJson>(["vm", "mv", VM], { config });
  const wall = Date.now() - t0;
  const values = await sampler.stop();
  assert.equal(code, 0, `${stderr}\n${JSON.stringify(data, null, 2)}`);
  const o = data.outcomes[0]!;
  assert.deepEqual([o.status, o.source, o.target], ["migrated", from, to]);
  assert.match(stderr, /% of memory sent, .* remaining/, "progress shown");
  const t = o.timings!;
  console.log(`# ${from} -> ${to}: pmc ran ${(wall / 1000).toFixed(1)} s: reading and checking the cluster ${(data.checksMs / 1000).toFixed(1)} s, `
    + `role changes and checks on the nodes ${(t.roleChangesMs / 1000).toFixed(1)} s, virsh migrate ${(t.migrateMs / 1000).toFixed(1)} s`);
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `counter went backwards: ${values.slice(i - 1, i + 1)}`);
  assert.ok(values.every((v) => v >= before), "never below the value before the migration");
  await assertSettled(to);
  const after = await waitForCounter("pm-2", LV, Math.max(before, ...values), 120_000);
  console.log(`# counter ${before} before, ${values.at(-1)} when pmc returned, ${after} later (${values.length} samples)`);
}

describe("pmc vm mv on the lab", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await cleanup();
    const add = await pmc(["vm", "add", "-p", "pm-1", "-p", "pm-2", "-s", "256M", "-m", "96M", "--no-start", VM], { config });
    assert.equal(add.exitCode, 0, add.stderr + add.stdout);
    // The guest workload: pmc's domain with the lab's kernel and busybox initramfs, same UUID on both nodes.
    const device = (await labExecOk("pm-1", `drbdadm sh-dev ${VM}`)).trim();
    const uuid = (await labExecOk("pm-1", `virsh domuuid ${VM}`)).trim();
    for (const node of NODES) {
      await writeNodeFile(node, `/root/${VM}.xml`, guestDomainXml({ name: VM, disk: device, uuid, memoryMiB: 96 }));
      await labExecOk(node, `virsh define /root/${VM}.xml && rm /root/${VM}.xml`);
    }
    const start = await pmc(["vm", "start", "-p", "pm-1", VM], { config });
    assert.equal(start.exitCode, 0, start.stderr + start.stdout);
    const t0 = Date.now();
    const first = await waitForCounter("pm-2", LV, 0, 600_000);
    console.log(`# guest wrote its first counter (${first}) ${((Date.now() - t0) / 1000).toFixed(0)} s after start`);
  });

  after(async () => {
    await cleanup();
    console.log(`# pmc-vm-mv.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("--dry-run checks and prints the plan, and changes nothing", async () => {
    const r = await pmc(["vm", "mv", "--dry-run", VM], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /dry run, nothing changed: migrate mv-work from pm-1 to pm-2/);
    assert.match(r.stdout, /\$ drbdadm net-options --allow-two-primaries=yes mv-work/);
    assert.match(r.stdout, /virsh migrate --live --persistent --verbose \S+ qemu\+ssh:\/\/pm-2\/system/);
    await assertSettled("pm-1");
  });

  it("migrates pm-1 -> pm-2 -> pm-1 while the counter keeps rising", async () => {
    await migrate("pm-1", "pm-2");
    await migrate("pm-2", "pm-1");
  });

  it("--cleanup on a clean VM plans nothing", async () => {
    const r = await pmc(["vm", "mv", "--cleanup", VM], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /nothing to clean up: mv-work runs on pm-1, the only Primary/);
    await assertSettled("pm-1");
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
});
