/** Defaults of the VM commands that the CLI shows in its help (kept here so --help loads no operation). */

/** Seconds `pmc vm stop` waits for a guest to shut down. */
export const DEFAULT_STOP_TIMEOUT_S = 120;

/** Seconds after which `pmc vm mv` aborts a migration (virsh domjobabort). */
export const DEFAULT_MIGRATE_TIMEOUT_S = 600;
