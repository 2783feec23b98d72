/**
 * `pmc cluster rebalance`'s planner on an uneven generated cluster (most VMs on the first nodes,
 * nodes of different sizes; test/unit/ops/rebalance-helpers.ts): the score and every move, as
 * the command plans them from the cluster it read. Separable:
 *   npx tsx -e "import('./test/bench/rebalance.ts').then((m) => m.rebalanceBench(100, 2000))"
 */
import { planRebalance } from '../../src/ops/cluster/rebalance-plan.js';
import { generatedCluster } from '../unit/ops/rebalance-helpers.js';
import { measure } from './measure.js';

export function rebalanceBench(nodes: number, vms: number): void {
  console.log(`\n# cluster rebalance plan: ${nodes} nodes, ${vms} VMs, uneven`);
  const { state } = generatedCluster(nodes, vms);
  const first = measure('planRebalance (first run)', 1, () => planRebalance(state));
  measure('planRebalance', 5, () => planRebalance(state));
  console.log(`${first.moves.length} moves, score ${first.scoreBefore.toFixed(3)} -> ${first.scoreAfter.toFixed(3)}`);
}
