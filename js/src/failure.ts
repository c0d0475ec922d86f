// How the hand-written modules make the errors they throw and reject with: each a
// `FerrosyncError` with a stable `code` beside its message, and `retryable` where it applies, as
// the engine's own errors are. Internal (not exported by the package entry).
import type { ErrorCode, FerrosyncError } from './ferrosync.js';

/** Codes of a bad call, thrown as a `TypeError` (as the engine throws them). */
const TYPE_ERRORS: readonly ErrorCode[] = ['invalid_argument', 'invalid_config', 'invalid_query'];

/**
 * An error with this `code` and `message`: a `TypeError` for a bad argument, query or config,
 * otherwise an `Error`; `retryable` set when given.
 */
export function failure(
  code: ErrorCode,
  message: string,
  options: { retryable?: boolean; cause?: unknown } = {},
): FerrosyncError {
  const init = options.cause === undefined ? undefined : { cause: options.cause };
  const error = (TYPE_ERRORS.includes(code) ? new TypeError(message, init) : new Error(message, init)) as FerrosyncError;
  error.code = code;
  if (options.retryable !== undefined) error.retryable = options.retryable;
  return error;
}
