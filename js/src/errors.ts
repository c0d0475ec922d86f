/**
 * Thrown (or rejected with) by a `persist` function when retrying cannot help, for example a
 * validation error from the API: the transaction fails at once and rolls back, instead of being
 * retried under the retry policy.
 */
export class NonRetriableError extends Error {
  /** @param message - why the write can never succeed */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetriableError';
  }
}
