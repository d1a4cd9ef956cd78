import type { BotPoster, PostOutcome, ResponsePoster, SlackMessage } from '#shared/chat/ports.ts';
import { logger } from '#shared/logger.ts';

/**
 * Posts to Slack with fetch: progress to a response_url, and (past a URL's 30 minutes) to the channel as the
 * app's bot user. Every attempt has a timeout, transient failures (network, timeout, 429, 5xx, Slack's own
 * transient errors) are retried with exponential backoff and jitter, and nothing is thrown: chat is a
 * courtesy, and a deployment must never fail because Slack was slow.
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

/** What one answer means: delivered, failed for good, or worth another attempt. */
type Verdict = { outcome: 'posted' } | { outcome: 'failed'; failure: string; retry: boolean };

class Delivery {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly fetch: typeof fetch;

  constructor(options: PosterOptions) {
    this.timeoutMs = options.timeoutMs ?? 3_000;
    this.attempts = options.attempts ?? 3;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 4_000;
    this.sleep = options.sleep ?? sleeper;
    this.random = options.random ?? Math.random;
    this.fetch = options.fetch ?? fetch;
  }

  async send(
    url: string,
    headers: Record<string, string>,
    body: string,
    judge: (response: Response) => Promise<Verdict>,
  ): Promise<PostOutcome> {
    let last: PostOutcome = { outcome: 'failed', attempts: 0 };
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const response = await this.fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
          body,
          // Slack never redirects these; following one could send the message (or the token) elsewhere.
          redirect: 'error',
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const verdict = await judge(response);
        if (verdict.outcome === 'posted')
          return { outcome: 'posted', attempts: attempt, status: response.status };
        last = { outcome: 'failed', attempts: attempt, status: response.status, failure: verdict.failure };
        if (!verdict.retry) return last;
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

/** 429 and 5xx may get better; any other 4xx (expired_url, invalid_blocks, ...) will not. */
const transientStatus = (status: number) => status === 429 || status >= 500;

export class FetchResponsePoster implements ResponsePoster {
  private readonly delivery: Delivery;

  constructor(options: PosterOptions = {}) {
    this.delivery = new Delivery(options);
  }

  post(responseUrl: string, message: SlackMessage): Promise<PostOutcome> {
    return this.delivery.send(responseUrl, {}, JSON.stringify(message), async (response) => {
      // The body is read (and dropped) so the connection can be reused; Slack answers "ok" or an error name.
      await response.arrayBuffer().catch(() => undefined);
      return response.ok
        ? { outcome: 'posted' }
        : { outcome: 'failed', failure: 'http', retry: transientStatus(response.status) };
    });
  }
}

/** What template.yaml puts into the bot token's secret until an operator puts a token. */
export const BOT_TOKEN_PLACEHOLDER = 'not-configured';

const UNREADABLE = Symbol('unreadable');

/** A bot token (xoxb-); a user token or the template's placeholder means "not configured". */
export const isBotToken = (value: string | undefined): value is string =>
  typeof value === 'string' && /^xoxb-[A-Za-z0-9-]{10,250}$/.test(value);

/** Public and private channels and direct messages, as Slack names them in a signed request. */
export const isChannelId = (value: string | undefined): value is string =>
  typeof value === 'string' && /^[CDG][A-Z0-9]{1,30}$/.test(value);

/** Slack's Web API errors that say "try again" rather than "this request is wrong". */
const TRANSIENT_SLACK_ERRORS = new Set([
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'ratelimited',
]);

export interface BotPosterOptions extends PosterOptions {
  /** Reads the token (a secret): undefined or anything but an xoxb- token means no bot is configured. */
  token: () => Promise<string | undefined>;
  /** Slack's Web API; only tests point it elsewhere (local mode and AWS always use Slack's). */
  apiBase?: string;
}

/**
 * `chat.postMessage` with the bot token. Slack answers HTTP 200 with `{ ok: false, error }` for most
 * failures (not_in_channel, channel_not_found, invalid_auth): those are reported by their error name, which
 * is a fixed vocabulary and never the token.
 */
export class FetchBotPoster implements BotPoster {
  private readonly delivery: Delivery;
  private readonly token: () => Promise<string | undefined>;
  private readonly url: string;

  constructor(options: BotPosterOptions) {
    this.delivery = new Delivery(options);
    this.token = options.token;
    this.url = new URL('chat.postMessage', options.apiBase ?? 'https://slack.com/api/').toString();
  }

  async configured(): Promise<boolean | undefined> {
    const token = await this.readToken();
    return token === UNREADABLE ? undefined : isBotToken(token);
  }

  async post(channelId: string, message: SlackMessage): Promise<PostOutcome> {
    if (!isChannelId(channelId)) return { outcome: 'failed', attempts: 0, failure: 'channel' };
    const token = await this.readToken();
    if (token === UNREADABLE) return { outcome: 'failed', attempts: 0, failure: 'secret-unreadable' };
    if (!isBotToken(token)) return { outcome: 'failed', attempts: 0, failure: 'not-configured' };
    const body = JSON.stringify({
      channel: channelId,
      text: message.text,
      blocks: message.blocks,
      unfurl_links: false,
      unfurl_media: false,
    });
    return this.delivery.send(this.url, { authorization: `Bearer ${token}` }, body, async (response) => {
      const answer = (await response.json().catch(() => undefined)) as
        | { ok?: unknown; error?: unknown }
        | undefined;
      if (response.ok && answer?.ok === true) return { outcome: 'posted' };
      const error =
        typeof answer?.error === 'string' && /^[a-z_]{1,60}$/.test(answer.error) ? answer.error : 'http';
      return {
        outcome: 'failed',
        failure: error === 'http' ? 'http' : `slack:${error}`,
        retry: transientStatus(response.status) || TRANSIENT_SLACK_ERRORS.has(error),
      };
    });
  }

  private async readToken(): Promise<string | undefined | typeof UNREADABLE> {
    let token: string | undefined;
    try {
      token = await this.token();
    } catch (error) {
      // Chat never fails a deployment, and a read that failed says nothing about whether a bot is
      // configured: the caller gives nothing up on it. The error's name is logged, never its message.
      logger.warn('the Slack bot token could not be read', { errorName: (error as { name?: string })?.name });
      return UNREADABLE;
    }
    // The template's placeholder is the normal "no bot"; anything else that is no bot token is a mistake an
    // operator should hear about (the value itself is never logged).
    if (token !== undefined && token !== BOT_TOKEN_PLACEHOLDER && !isBotToken(token)) {
      logger.warn(
        'the Slack bot token secret holds no bot token (xoxb-); progress past the response_url is not posted',
      );
    }
    return token;
  }
}

function retryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}
