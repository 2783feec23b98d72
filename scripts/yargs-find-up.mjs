// What the bundle gives yargs for escalade/sync. yargs searches upwards from the working
// directory for a package.json only to guess a --version from it, which pmc replaces with its
// own (.version(pmcVersion()) in src/cli/main.ts). The search listed every directory up to the
// nearest package.json on each run, and where there is none (a user's home directory) it failed
// an assertion, loading node:assert for an error yargs then ignores. yargs is given pmc's own
// package.json instead: the version it guesses is pmc's, as before replaced.
import { join } from 'node:path';
import { INSTALL_DIR } from '../src/util/install.ts';

export default () => join(INSTALL_DIR, 'package.json');
