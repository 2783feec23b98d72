// What the bundle gives yargs for `assert`: the same two checks, with Node's assert loaded only
// when one fails (to throw its usual AssertionError). Loading node:assert costs every pmc run
// a few milliseconds, for checks that never fail.
const failed = (name, args) => process.getBuiltinModule('node:assert')[name](...args);

export function strictEqual(...args) {
  if (!Object.is(args[0], args[1])) failed('strictEqual', args);
}

export function notStrictEqual(...args) {
  if (Object.is(args[0], args[1])) failed('notStrictEqual', args);
}
