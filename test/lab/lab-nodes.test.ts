// The lab's nodes are what the issue promises: Debian 12, DRBD 8.4, LVM, libvirt, br0,
// distinct identities, node-to-node SSH with verified host keys, one shared NFS file system, no way out.
import assert from "node:assert/strict";
import fs from "node:fs";
import { before, describe, it } from "node:test";
import {
  BACKUP_DIR,
  HOST_ADDRESS,
  SHARED_DIR,
  SHARED_EXPORT,
  VOLUME_GROUP,
  ensureLabUp,
  identityPath,
  inLabNamespace,
  knownHostsPath,
  labExec,
  labExecOk,
  pmcConfigPath,
  run,
  sshConfigPath,
  waitSharedMount,
  type LabNode,
} from "./lab.ts";

let nodes: LabNode[] = [];

describe("lab nodes", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    nodes = await ensureLabUp();
  });

  /** What pmc and the old tool run on a node. */
  const NODE_TOOLS = ["drbdadm", "drbdsetup", "xdelta3", "rsync", "lvm", "virsh", "qemu-system-x86_64", "qemu-img", "sshd", "flock", "logger", "dd", "sha256sum"];

  it("run Debian 12 with the cloud kernel, DRBD 8.4 and the tools", async () => {
    for (const n of nodes) {
      const out = await labExecOk(
        n.name,
        `. /etc/os-release; echo "$ID $VERSION_ID"; uname -r; head -n1 /proc/drbd; ` +
          `lsmod | grep -q '^dm_mod' && echo dm-ok; ` +
          // One `command -v` per tool: with several names it succeeds when any one (bash) or the
          // last (dash) is found.
          `for t in ${NODE_TOOLS.join(" ")}; do command -v "$t" >/dev/null || echo "missing: $t"; done; ` +
          `test -d ${BACKUP_DIR} && echo backup-ok`,
      );
      const lines = out.trim().split("\n");
      assert.equal(lines[0], "debian 12", `${n.name}: ${out}`);
      assert.match(lines[1]!, /-cloud-amd64$/);
      assert.match(lines[2]!, /^version: 8\.4\./);
      assert.deepEqual(lines.slice(3), ["dm-ok", "backup-ok"], `${n.name}: ${out}`);
    }
  });

  it("have their own hostname, machine-id, SSH host key and MAC", async () => {
    const ids = await Promise.all(
      nodes.map(async (n) =>
        (await labExecOk(n.name, "hostname; cat /etc/machine-id; cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub; cat /sys/class/net/eth0/address /sys/class/net/br0/address"))
          .trim()
          .split("\n"),
      ),
    );
    nodes.forEach((n, i) => {
      assert.equal(ids[i]![0], n.name);
      assert.equal(ids[i]![3], n.mac);
      assert.equal(ids[i]![4], n.mac, "br0 has eth0's MAC");
    });
    for (const field of [1, 2, 3]) {
      const values = ids.map((x) => x[field]);
      assert.equal(new Set(values).size, nodes.length, `field ${field} differs per node: ${values.join(" ")}`);
    }
  });

  it(`have the volume group ${VOLUME_GROUP} on their own disk of at least 4 GiB`, async () => {
    for (const n of nodes) {
      const out = await labExecOk(n.name, `vgs --noheadings --units b --nosuffix -o vg_size,pv_name ${VOLUME_GROUP}`);
      const [size, pv] = out.trim().split(/\s+/);
      assert.ok(Number(size) >= 4 * 2 ** 30, `${n.name}: VG size ${size}`);
      assert.match(pv!, /^\/dev\/vd[b-z]$/);
    }
  });

  it(`share one file system: pm-1's NFS export at ${SHARED_DIR}, where what one node writes the others read`, async () => {
    for (const n of nodes) {
      const m = await waitSharedMount(n.name);
      assert.equal(m.fstype, "nfs4", `${n.name}: ${m.fstype}`);
      assert.ok(m.options.includes("vers=4.2") && m.options.includes("hard") && m.options.includes("rw"), `${n.name}: ${m.options.join(",")}`);
    }
    // Random bytes written on pm-2, hashed as they go out; the others read them back over NFS,
    // and pm-1 also from the exported directory itself.
    const writer = nodes.find((n) => n.name === "pm-2") ?? nodes[0]!;
    const name = `lab-nodes-${process.pid}-${Date.now()}.bin`;
    const file = `${SHARED_DIR}/${name}`;
    const sha = (out: string) => out.trim().split(/\s+/)[0];
    try {
      const written = sha(await labExecOk(writer.name, `set -o pipefail; head -c 1048576 /dev/urandom | tee ${file} | sha256sum`));
      assert.match(written!, /^[0-9a-f]{64}$/);
      for (const n of nodes) {
        const paths = n.name === "pm-1" ? [file, `${SHARED_EXPORT}/${name}`] : [file];
        for (const p of paths) assert.equal(sha(await labExecOk(n.name, `sha256sum < ${p}`)), written, `${n.name}: ${p}`);
      }
    } finally {
      await labExec(writer.name, `rm -f ${file}`);
    }
  });

  it("have a bridge br0 holding eth0 and the node's address", async () => {
    for (const n of nodes) {
      const out = await labExecOk(n.name, "ip -br addr show br0; ip -br link show master br0; ip route");
      assert.match(out, new RegExp(`^br0\\s+UP\\s+${n.address.replace(/\./g, "\\.")}/24`, "m"));
      assert.match(out, /^eth0\s/m);
      assert.doesNotMatch(out, /^default/m, "no default route on a node");
    }
  });

  it("run libvirtd with the qemu driver", async () => {
    for (const n of nodes) {
      const out = await labExecOk(n.name, "virsh -c qemu:///system uri; virsh -c qemu:///system capabilities | grep -c \"domain type='qemu'\"");
      assert.match(out, /^qemu:\/\/\/system$/m);
      assert.ok(Number(out.trim().split("\n").filter(Boolean)[1]) > 0, out);
    }
  });

  it("resolve each other's names and SSH to each other as root with verified host keys", async () => {
    await Promise.all(
      nodes.map(async (a) => {
        const script = nodes
          .map(
            (b) =>
              `echo ${b.name} $(getent hosts ${b.name} | cut -d' ' -f1) ` +
              `$(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes ${b.name} hostname) ` +
              `$(ssh -o BatchMode=yes -o StrictHostKeyChecking=yes ${b.address} hostname)`,
          )
          .join("; ");
        const out = await labExecOk(a.name, script);
        assert.deepEqual(
          out.trim().split("\n"),
          nodes.map((b) => `${b.name} ${b.address} ${b.name} ${b.name}`),
          `from ${a.name}`,
        );
      }),
    );
  });

  it("are listed in .lab/ with their real host keys, and a wrong key is refused", async () => {
    const known = fs.readFileSync(knownHostsPath, "utf8");
    for (const n of nodes) {
      const real = (await labExecOk(n.name, "cat /etc/ssh/ssh_host_ed25519_key.pub")).trim().split(" ").slice(0, 2).join(" ");
      assert.ok(known.includes(`${n.name},${n.address} ${real}\n`), `${n.name} in known_hosts`);
    }
    const yaml = fs.readFileSync(pmcConfigPath, "utf8");
    for (const n of nodes) assert.ok(yaml.includes(`  - name: ${n.name}\n    address: ${n.address}\n`));
    // The same ssh, with another key recorded for pm-1: host-key checking is really on.
    const wrong = `${knownHostsPath}.wrong-test`;
    // A valid ed25519 key that is not pm-1's host key: the lab's client key.
    const other = fs.readFileSync(`${identityPath}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    fs.writeFileSync(wrong, `${nodes[0]!.name},${nodes[0]!.address} ${other}\n`);
    try {
      const r = await labExec(nodes[0]!.name, "true", { sshOptions: [`UserKnownHostsFile=${wrong}`] });
      assert.equal(r.exitCode, 255);
      assert.match(r.stderr, /host key|HOST IDENTIFICATION/i);
    } finally {
      fs.rmSync(wrong, { force: true });
    }
    assert.ok(fs.readFileSync(sshConfigPath, "utf8").includes("StrictHostKeyChecking yes"));
  });

  it("live in a namespace with no route outside 10.99.0.0/24", async () => {
    const routes = (await run(inLabNamespace(["ip", "route", "show", "table", "all"]))).stdout;
    assert.doesNotMatch(routes, /^default/m);
    assert.match(routes, new RegExp(`^10\\.99\\.0\\.0/24 dev \\S+ proto kernel scope link src ${HOST_ADDRESS.replace(/\./g, "\\.")}`, "m"));
    const probe = await run(inLabNamespace(["ip", "route", "get", "192.0.2.1"]));
    assert.notEqual(probe.exitCode, 0, "no route to an outside address");
  });
});
