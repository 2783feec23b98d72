/**
 * User errors: mistakes the operator can fix (bad config, bad name, unknown host key...).
 * They carry a stable code and a hint and are printed as one line without a stack trace.
 * Anything else that is thrown is a programmer error and keeps its stack.
 */
export type PmcErrorCode =
  | 'PMC_E_USAGE'
  | 'PMC_E_CONFIG_NOT_FOUND'
  | 'PMC_E_CONFIG_SYNTAX'
  | 'PMC_E_CONFIG_INVALID'
  | 'PMC_E_CONFIG_NOT_FILE'
  | 'PMC_E_CONFIG_TOO_LARGE'
  | 'PMC_E_CONFIG_ALIAS'
  | 'PMC_E_NAME_INVALID'
  | 'PMC_E_SIZE_INVALID'
  | 'PMC_E_NODE_UNKNOWN'
  | 'PMC_E_NODE_UNREACHABLE'
  | 'PMC_E_NODE_ALIVE'
  | 'PMC_E_FENCE'
  | 'PMC_E_HOSTKEY_UNKNOWN'
  | 'PMC_E_HOSTKEY_CHANGED'
  | 'PMC_E_AUTH'
  | 'PMC_E_VM_UNKNOWN'
  | 'PMC_E_VM_EXISTS'
  | 'PMC_E_VM_IGNORED'
  | 'PMC_E_CAPACITY'
  | 'PMC_E_STATE'
  | 'PMC_E_ISO_UNKNOWN'
  | 'PMC_E_IMAGE_UNKNOWN'
  | 'PMC_E_ADDRESS_INVALID'
  | 'PMC_E_MAC_IN_USE'
  | 'PMC_E_RANGE_EXHAUSTED'
  | 'PMC_E_CONFIRM'
  | 'PMC_E_LOCKED'
  | 'PMC_E_INTERRUPTED'
  | 'PMC_E_REMOTE'
  | 'PMC_E_VERIFY';

export class PmcError extends Error {
  readonly code: PmcErrorCode;
  readonly hint: string | undefined;
  /** Extra lines shown only with --verbose. */
  readonly details: string | undefined;

  constructor(code: PmcErrorCode, message: string, hint?: string, details?: string) {
    super(message);
    this.name = 'PmcError';
    this.code = code;
    this.hint = hint;
    this.details = details;
  }
}

export function isPmcError(err: unknown): err is PmcError {
  return err instanceof PmcError;
}
