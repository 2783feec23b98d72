import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Semaphore } from '../../../src/ssh/semaphore.js';

test('never lets more than the limit run, and serves waiters in order', async () => {
  const semaphore = new Semaphore(3);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  const tasks = Array.from({ length: 8 }, (_, i) => semaphore.use(async () => {
    order.push(i);
    peak = Math.max(peak, ++running);
    await gate;
    running--;
  }));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, [0, 1, 2]);
  open();
  await Promise.all(tasks);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(peak, 3);
});

test('a release given twice frees one slot only', async () => {
  const semaphore = new Semaphore(1);
  const release = await semaphore.acquire();
  release();
  release();
  const first = await semaphore.acquire();
  let secondGot = false;
  const second = semaphore.acquire().then((r) => { secondGot = true; return r; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(secondGot, false);
  first();
  (await second)();
});

test('a failing task gives its slot back', async () => {
  const semaphore = new Semaphore(1);
  await assert.rejects(semaphore.use(() => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await semaphore.use(async () => 'next'), 'next');
});
