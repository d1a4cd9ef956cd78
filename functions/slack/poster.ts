import type { PostOutcome, ResponsePoster, SlackMessage } from '#shared/chat/ports.ts';

/**
 * Posts progress to a Slack response_url with fetch. Every attempt has a timeout, transient failures
 * (network, timeout, 429, 5xx) are retried with exponential backoff and jitter, and nothing is thrown:
 * chat is a courtesy, and a deployment must never fail because Slack was slow.
 */

export interface PosterOptions {
  timeoutMs?: number;
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  fetch?: typeof fetch;
}

const sleeper = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class FetchResponsePoster implements ResponsePoster {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly fetch: typeof fetch;

  constructor(options: PosterOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 3_000;
    this.attempts = options.attempts ?? 3;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 4_000;
    this.sleep = options.sleep ?? sleeper;
    this.random = options.random ?? Math.random;
    this.fetch = options.fetch ?? fetch;
  }

  async post(responseUrl: string, message: SlackMessage): Promise<PostOutcome> {
    const body = JSON.stringify(message);
    let last: PostOutcome = { outcome: 'failed', attempts: 0 };
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const response = await this.fetch(responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8' },
          body,
          // A response_url never redirects; following one could send the message somewhere else.
          redirect: 'error',
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        // The body is read (and dropped) so the connection can be reused; Slack answers "ok" or an error name.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return { outcome: 'posted', attempts: attempt, status: response.status };
        last = { outcome: 'failed', attempts: attempt, status: response.status, failure: 'http' };
        // 4xx other than 429 (expired_url, invalid_blocks, ...) will not get better by asking again.
        if (response.status !== 429 && response.status < 500) return last;
        retryAfterMs = retryAfter(response.headers.get('retry-after'));
      } catch (error) {
        const name = (error as { name?: string }).name;
        last = {
          outcome: 'failed',
          attempts: attempt,
          failure: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network',
        };
      }
      if (attempt < this.attempts) {
        const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        // Full jitter, but never sooner than Slack asked (capped, so a huge Retry-After cannot stall us).
        const delay = Math.max(
          Math.round(this.random() * backoff),
          Math.min(retryAfterMs ?? 0, this.maxDelayMs),
        );
        await this.sleep(delay);
      }
    }
    return last;
  }
}

function retryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}
