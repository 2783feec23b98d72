/**
 * Runs `work` on every item, at most `parallel` at a time, starting them in order; the results
 * come back in the items' order. `work` decides for itself whether an item still runs (after a
 * failure, `--keep-going` or not), so stopping early is the caller's rule.
 */
export async function inParallel<T, R>(items: readonly T[], parallel: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, Math.max(items.length, 1)) }, worker));
  return results;
}
