import type { ErrorCode } from './ferrosync.js';

/**
 * Thrown (or rejected with) by a `persist` function when retrying cannot help, for example a
 * validation error from the API: the transaction fails at once and rolls back, instead of being
 * retried under the retry policy. Its `code` is `non_retriable`.
 */
export class NonRetriableError extends Error {
  /** Always `non_retriable`. */
  readonly code = 'non_retriable' satisfies ErrorCode;
  /** Always `false`: the same request cannot succeed later. */
  readonly retryable = false;
  /** @param message - why the write can never succeed */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetriableError';
  }
}
