import { describe, expect, it } from 'vitest';
import { isTransientError, RequestRejectedError, TransientError } from '#shared/errors.ts';

/** One classifier decides "try again" for the local store's retries and the API's cursor reads. */
describe('isTransientError', () => {
  const withCode = (code: string) => Object.assign(new Error(`connect ${code}`), { code });
  const named = (name: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(name), { name, ...extra });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET'])(
    'counts a connection that dropped (%s) as transient',
    (code) => expect(isTransientError(withCode(code))).toBe(true),
  );

  it.each([
    'ThrottlingException',
    'ProvisionedThroughputExceededException',
    'InternalServerError',
    'TimeoutError',
  ])('counts the SDK error %s as transient', (name) => expect(isTransientError(named(name))).toBe(true));

  it('counts a server fault or an SDK-retryable error as transient', () => {
    expect(isTransientError(named('Whatever', { $fault: 'server' }))).toBe(true);
    expect(isTransientError(named('Whatever', { $retryable: {} }))).toBe(true);
  });

  it('never counts a refused request as transient', () => {
    expect(isTransientError(named('ValidationException', { $fault: 'client' }))).toBe(false);
    expect(isTransientError(named('ConditionalCheckFailedException', { $fault: 'client' }))).toBe(false);
    expect(isTransientError(new RequestRejectedError('INVALID_FIELD', 400, 'bad'))).toBe(false);
    expect(isTransientError(undefined)).toBe(false);
  });

  it("keeps crossdeploy's own TransientError transient", () => {
    expect(isTransientError(new TransientError('the store did not answer'))).toBe(true);
  });
});
