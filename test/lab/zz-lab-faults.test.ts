// The lab's fault helpers: cut and restore a node's link, kill a node hard and start it again.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import {
  VOLUME_GROUP,
  cutLink,
  ensureLabUp,
  fullSetOnly,
  isLinkCut,
  killNode,
  labExec,
  labExecOk,
  nodePid,
  restoreLink,
  startNode,
  waitForNode,
  waitSharedMount,
} from "./lab.ts";

describe("lab fault helpers", { timeout: 20 * 60_000 }, () => {
  let victim = "";
  let peer = "";
  before(async () => {
    const nodes = await ensureLabUp();
    victim = nodes[nodes.length - 1]!.name;
    peer = nodes[0]!.name;
  });

  it("cutLink makes a node unreachable, restoreLink brings it back", async () => {
    await cutLink(victim);
    try {
      assert.ok(isLinkCut(victim));
      const r = await labExec(victim, "true", { sshOptions: ["ConnectTimeout=3"], timeoutMs: 30_000 });
      assert.notEqual(r.exitCode, 0, "ssh to a cut node fails");
      if (peer !== victim) {
        const p = await labExec(peer, `ping -c 2 -W 1 ${victim}`);
        assert.notEqual(p.exitCode, 0, `${peer} cannot reach ${victim}`);
      }
    } finally {
      await restoreLink(victim);
    }
    assert.ok(!isLinkCut(victim));
    assert.equal((await labExecOk(victim, "hostname", { sshOptions: ["ConnectTimeout=10"] })).trim(), victim);
    if (peer !== victim) await labExecOk(peer, `ping -c 1 -W 5 ${victim}`);
  });

  // The default set's pmc-pm power loss kills and restarts a node through these helpers too.
  it("killNode stops a node hard and startNode boots it again with its disks", { skip: fullSetOnly }, async () => {
    const bootId = (await labExecOk(victim, "cat /proc/sys/kernel/random/boot_id")).trim();
    await killNode(victim);
    assert.equal(nodePid(victim), undefined);
    const r = await labExec(victim, "true", { sshOptions: ["ConnectTimeout=3"], timeoutMs: 30_000 });
    assert.notEqual(r.exitCode, 0);
    const t0 = Date.now();
    await startNode(victim);
    await waitForNode(victim);
    console.log(`# ${victim} back after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const out = await labExecOk(victim, `echo boot=$(cat /proc/sys/kernel/random/boot_id); echo vg=$(vgs --noheadings -o vg_name ${VOLUME_GROUP} | tr -d ' ')`);
    assert.doesNotMatch(out, new RegExp(`^boot=${bootId}$`, "m"), "a new boot");
    assert.match(out, new RegExp(`^vg=${VOLUME_GROUP}$`, "m"), "the volume group survived");
    // The shared file system comes back too (waitSharedMount times out if it does not).
    await waitSharedMount(victim);
  });
});
