/**
 * Checks of the values an operator types (command-line arguments) and writes (pmc.yaml), run
 * before any node is contacted. Each refusal is a PmcError naming the value and the fix.
 */
import { isIP } from 'node:net';
import { PmcError } from './errors.js';
import { isNodeName } from './names.js';

/**
 * A whole number within [min, max]: digits only (no "1e99", "0x10", "1.5" or "abc"), so the
 * value that reaches a timer or a remote shell's arithmetic is exactly the one typed.
 */
export function parseWholeNumber(input: unknown, what: string, min: number, max: number, unit = ''): number {
  const text = String(input ?? '').trim();
  const value = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    const range = `a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}`;
    throw new PmcError('PMC_E_USAGE', `${what} ${JSON.stringify(text)}: must be ${range}`, `e.g. ${what} ${Math.min(max, Math.max(min, 60))}`);
  }
  return value;
}

/**
 * The longest wait pmc accepts anywhere: a day. Node's timers overflow at 2^31 ms (24.8
 * days), and a command that waits longer than a day is a typo.
 */
export const MAX_WAIT_SECONDS = 86_400;

/** Seconds to wait, as an option gives them (e.g. `--timeout 300`). */
export function parseSeconds(input: unknown, option: string, min = 1, max = MAX_WAIT_SECONDS): number {
  return parseWholeNumber(input, option, min, max, 'seconds');
}

/**
 * Why a value cannot be passed as one argument of a tool (lvcreate, ssh, virsh...), or
 * undefined: a leading "-" would make it an option of that tool, and a control character
 * (newline, NUL) would end or split the command.
 */
export function argumentProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.startsWith('-')) return 'starts with "-" (a tool would read it as an option)';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character';
  return undefined;
}

/** A command-line value that becomes an argument of a remote tool; refused like argumentProblem. */
export function assertArgument(value: string, what: string, hint: string): string {
  const problem = argumentProblem(value);
  if (problem) throw new PmcError('PMC_E_USAGE', `${what} ${JSON.stringify(value)} ${problem}`, hint);
  return value;
}

/** A host to connect to: a host name or an IP address (never anything ssh could read as an option). */
export function isHostAddress(value: string): boolean {
  return isNodeName(value) || isIP(value) !== 0;
}

/**
 * The name of an existing VM given on the command line (`vm stop web-1`). pmc's VMs are LV,
 * DRBD resource and domain of the same name, so the name must be a valid LV name; a VM
 * created outside pmc may use capitals, "_", "+" and "." (pmc's own are stricter: assertVmName).
 */
const VM_REFERENCE = /^(?!\.\.?$)[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;

export function assertVmReference(name: string): string {
  if (!VM_REFERENCE.test(name)) {
    throw new PmcError('PMC_E_NAME_INVALID', `${JSON.stringify(name)} cannot be the name of a VM${name.startsWith('-') ? ' (it starts with "-")' : ''}`,
      'VM names are letters, digits, "-", "_", "+" and "." (up to 127, not starting with "-"); pmc vm ls lists them');
  }
  return name;
}
