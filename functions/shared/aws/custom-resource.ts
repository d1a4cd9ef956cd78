import { logger } from '../logger.ts';

const ATTEMPTS = 4;

/**
 * Answers a CloudFormation custom resource request: a PUT of the response document to the pre-signed S3 URL
 * the request carried. The URL is signed without a content type, so none is sent. A lost answer leaves the
 * stack waiting for an hour, so a failed PUT is tried again a few times before the error is thrown.
 */
export async function sendCustomResourceResponse(
  url: string,
  response: object,
  options: { fetch?: typeof fetch; delayMs?: number } = {},
): Promise<void> {
  const put = options.fetch ?? fetch;
  const body = JSON.stringify(response);
  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt += 1) {
    try {
      const answer = await put(url, { method: 'PUT', body, headers: { 'content-type': '' } });
      if (answer.ok) return;
      lastError = new Error(`the response URL answered ${answer.status}`);
    } catch (error) {
      lastError = error;
    }
    logger.warn('could not answer CloudFormation yet', { attempt, error: lastError });
    if (attempt < ATTEMPTS)
      await new Promise((resolve) => setTimeout(resolve, (options.delayMs ?? 500) * attempt));
  }
  throw new Error('could not answer the CloudFormation custom resource request', { cause: lastError });
}
