/**
 * The result contract for remote processes (after execa/zx): every run yields the exact
 * command, exit code, output and duration. A command that ran and failed is a value, not
 * an exception; only a node we cannot reach at all is an error (PMC_E_NODE_UNREACHABLE,
 * PMC_E_HOSTKEY_*, PMC_E_AUTH), reported per node by the fan-out.
 */
export interface RemoteResult {
  node: string;
  /** The exact command line sent to the node (before any sudo wrapping is applied it is shown as sent). */
  command: string;
  /** null when the process was killed by a signal or the channel closed without a status. */
  exitCode: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

/** How to reach one node: config resolved per node (defaults merged with overrides). */
export interface SshTarget {
  /** The node's name in pmc.yaml (pm-1). */
  name: string;
  /** Host name or address to connect to (defaults to name). */
  host: string;
  port: number;
  user: string;
  /** Private key files to try, in order. */
  identityFiles: string[];
  /** Path of the ssh-agent socket to use, or undefined for none. */
  agentSocket: string | undefined;
  /** known_hosts files to verify host keys against (first one is named in hints). */
  knownHostsFiles: string[];
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  /** Optional jump host (ProxyJump), itself fully resolved. */
  jump: SshTarget | undefined;
  /** Run commands through `sudo -n` (for a non-root user). */
  sudo: boolean;
}

export interface RunOptions {
  /**
   * Data written to the command's stdin, then stdin is closed; a stream is piped (large
   * files). A stream that fails to read fails the run with PMC_E_REMOTE.
   */
  stdin?: string | Buffer | NodeJS.ReadableStream;
  /**
   * Kill the remote command after this many ms (the result has timedOut=true): coreutils
   * `timeout` on the node sends TERM to its process group, then KILL 2 s later.
   */
  timeoutMs?: number;
  /** Called with stdout chunks as they arrive (for progress); stdout is still collected. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}
