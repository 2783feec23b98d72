/**
 * known_hosts lookups for fleets of 10, 100 and 1000 nodes with 3 host keys each (ed25519,
 * ECDSA, RSA, as ssh-keyscan writes them), plain and hashed (ssh-keygen -H): what one pmc
 * run does for every node before its handshake completes (read the files, find the node's
 * entries, choose host key algorithms, judge the key the server shows), in total for all
 * nodes. Nodes are named in pmc.yaml without a separate address: one lookup name each.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { hostKeyAlgorithms } from '../../src/ssh/connection.js';
import { checkServerKey, KnownHostsStore } from '../../src/ssh/known-hosts.js';

/** How one pmc run checks the host keys of `nodes`: returns the verdicts, so nothing is optimised away. */
export type HostKeyChecker = (files: string[], nodes: { name: string; key: Buffer }[]) => Promise<string[]>;

/** This code: the run's store reads the file once, each node is looked up once. */
export const currentChecker: HostKeyChecker = async (files, nodes) => {
  const store = new KnownHostsStore();
  const verdicts: string[] = [];
  for (const node of nodes) {
    const hostKeys = (await store.load(files)).index.lookup([node.name]);
    hostKeyAlgorithms(hostKeys);
    verdicts.push(checkServerKey(hostKeys, node.key).kind);
  }
  return verdicts;
};

function blob(type: string, bodyBytes: number): Buffer {
  const name = Buffer.from(type);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(name.length);
  return Buffer.concat([length, name, randomBytes(bodyBytes)]);
}

/** A fleet's known_hosts: RSA, ECDSA and ed25519 lines per node (ssh-keyscan's order), key sizes as real keys. */
function fleet(count: number, hashed: boolean): { text: string; nodes: { name: string; key: Buffer }[] } {
  const lines: string[] = [];
  const nodes: { name: string; key: Buffer }[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `pm-${i}.dc1.example.net`;
    const keys: [string, Buffer][] = [['ssh-rsa', blob('ssh-rsa', 400)], ['ecdsa-sha2-nistp256', blob('ecdsa-sha2-nistp256', 93)], ['ssh-ed25519', blob('ssh-ed25519', 36)]];
    for (const [type, key] of keys) {
      let host = name;
      if (hashed) {
        const salt = randomBytes(20);
        host = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
      }
      lines.push(`${host} ${type} ${key.toString('base64')}`);
    }
    nodes.push({ name, key: keys[2]![1] });
  }
  return { text: `${lines.join('\n')}\n`, nodes };
}

/** Prints the total time of each checker for each fleet size, plain and hashed. */
export async function knownHostsBench(checkers: Record<string, HostKeyChecker> = { current: currentChecker },
  sizes = [10, 100, 1000], kinds = [false, true]): Promise<void> {
  console.log('\n# known_hosts: read, look up and check every node of a run (3 keys per node)');
  const dir = await mkdtemp(join(tmpdir(), 'pmc-bench-known-hosts-'));
  try {
    for (const hashed of kinds) {
      for (const count of sizes) {
        const { text, nodes } = fleet(count, hashed);
        const file = join(dir, `known_hosts-${count}-${hashed ? 'hashed' : 'plain'}`);
        await writeFile(file, text);
        const t = performance.now();
        await new KnownHostsStore().load([file]);
        console.log(`reading, parsing and indexing the file alone (${count * 3} lines): ${(performance.now() - t).toFixed(1)} ms`);
        for (const [label, checker] of Object.entries(checkers)) {
          const t0 = performance.now();
          const verdicts = await checker([file], nodes);
          const ms = performance.now() - t0;
          const trusted = verdicts.filter((v) => v === 'trusted').length;
          console.log(`${`${label}: ${String(count).padStart(4)} nodes, ${hashed ? 'hashed' : 'plain '}`.padEnd(40)} ${ms.toFixed(1).padStart(9)} ms in all `
            + `${(ms / count).toFixed(3).padStart(8)} ms per node   (${trusted}/${count} trusted)`);
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
