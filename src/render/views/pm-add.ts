import type { PmAddResult } from '../../ops/pm/add.js';
import type { ViewOptions } from '../output.js';
import { initView } from './pm-init.js';

/** The host key and where it goes; then pm init's checks, and whether the node was listed. */
export function pmAddView(result: PmAddResult, opts: ViewOptions): string {
  const s = opts.style;
  const key = `${result.node} (${result.endpoint}): host key ${result.keyType} ${result.fingerprint}`;
  const known = result.knownHostsLine
    ? `${result.mode === 'dry-run' ? 'would append to' : 'appended to'} ${result.knownHostsFile}: ${result.knownHostsLine}`
    : `${result.knownHostsFile} already trusts it`;
  if (result.mode === 'dry-run') {
    return [
      s.bold('dry run, nothing changed:'), `  ${key}`, `  ${known}`,
      `  then check ${result.node} and set up SSH trust with every node (as pmc pm init --fix ${result.node})`,
      `  then add ${result.node} to ${result.configFile}`,
    ].join('\n');
  }
  const lines = [key, known];
  if (result.init) lines.push(initView(result.init, opts));
  lines.push(result.mode === 'added'
    ? s.ok(`added ${result.node} to ${result.configFile}`)
    : s.bad(`${result.node} was not added to ${result.configFile}: fix what failed, then run pmc pm add again`));
  return lines.join('\n');
}
