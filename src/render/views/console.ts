import type { ConsoleData } from '../../ops/vm/console.js';

/** Without a terminal (or with --dry-run): the command to run; after an interactive session: nothing. */
export function consoleView(data: ConsoleData): string {
  if (data.opened) return '';
  return [`serial console of ${data.vm} on ${data.node} (leave it with Ctrl+]):`, `  ${data.command}`, data.graphical].join('\n');
}
