// How every planner refuses: a PmcError with its stable code, one line naming the problem, and a
// hint with the fix (a refusal that names several VMs, as pm evacuate's, lists them one per line:
// its test's pattern then spells out the lines). The unit tests of the planners check refusals with this.
import assert from 'node:assert/strict';
import { PmcError, type PmcErrorCode } from '../../src/util/errors.js';

export function refuses(code: PmcErrorCode, message: RegExp, fn: () => unknown, what?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PmcError, `${what ? `${what}: ` : ''}expected a PmcError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    assert.ok(err.hint, `a refusal says what to do: ${err.message}`);
    if (!message.source.includes('\\n')) assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return true;
  });
}
