import { ApiError, ConnectionError, type Problem } from './errors.ts';
import {
  type Auth,
  type CredentialProvider,
  isLoopback,
  type OutgoingRequest,
  signRequest,
} from './signing.ts';

/**
 * The one way the CLI talks to a crossdeploy API: JSON in and out, problem+json turned into ApiError,
 * unreachable servers into ConnectionError, and authentication applied per `Auth`.
 */

export interface ClientOptions {
  baseUrl: URL;
  auth: Auth;
  fetch: typeof fetch;
  /** Only consulted for SigV4; created lazily by the caller so local use never loads the AWS SDK. */
  credentials: () => Promise<CredentialProvider>;
  sleep: (ms: number) => Promise<void>;
  timeoutMs?: number;
  userAgent?: string;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

export interface Client {
  readonly baseUrl: URL;
  get(path: string, query?: Record<string, string | number | undefined>): Promise<ApiResponse>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** An absolute URL for humans (e.g. the status URL printed after `deploy`). */
  urlOf(path: string): string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Statuses worth one more try: API Gateway throttling and a gateway between us and a busy server. */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);
const RETRY_DELAYS_MS = [250, 1000];
/** Network failures after which a repeat is safe and may well succeed; a refused connection is not one. */
const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ETIMEDOUT']);

/** RFC 3986 encoding, the one SigV4 canonicalises with (URLSearchParams would send spaces as `+`). */
export const encodeRfc3986 = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function buildUrl(
  baseUrl: URL,
  path: string,
  query: Record<string, string | number | undefined> = {},
): URL {
  const url = new URL(baseUrl);
  // A base URL may carry a stage or prefix path (https://api.example.com/crossdeploy): routes go below it.
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  const pairs = Object.entries(query)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([key, value]) => `${encodeRfc3986(key)}=${encodeRfc3986(String(value))}`);
  url.search = pairs.length > 0 ? `?${pairs.join('&')}` : '';
  url.hash = '';
  return url;
}

export function createClient(options: ClientOptions): Client {
  const { baseUrl, auth } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function prepare(request: OutgoingRequest): Promise<OutgoingRequest> {
    switch (auth.kind) {
      case 'none':
        return request;
      case 'bearer':
        return { ...request, headers: { ...request.headers, authorization: `Bearer ${auth.token}` } };
      case 'sigv4':
        return signRequest(request, auth.region, await options.credentials());
    }
  }

  async function send(request: OutgoingRequest): Promise<ApiResponse> {
    for (let attempt = 0; ; attempt++) {
      // Signed afresh per attempt: the signature carries a timestamp and credentials may have rotated.
      const ready = await prepare(request);
      let response: Response;
      try {
        response = await options.fetch(ready.url, {
          method: ready.method,
          headers: ready.headers,
          ...(ready.body !== undefined ? { body: ready.body } : {}),
          signal: AbortSignal.timeout(timeoutMs),
          redirect: 'error',
        });
      } catch (error) {
        const retryDelay = RETRY_DELAYS_MS[attempt];
        if (retryDelay !== undefined && RETRYABLE_CODES.has(networkCode(error) ?? '')) {
          await options.sleep(retryDelay);
          continue;
        }
        throw unreachable(baseUrl, error, timeoutMs);
      }
      const retryDelay = RETRY_DELAYS_MS[attempt];
      if (retryDelay !== undefined && RETRYABLE_STATUSES.has(response.status)) {
        await response.body?.cancel();
        await options.sleep(retryDelay);
        continue;
      }
      return read(response, ready);
    }
  }

  const headers = {
    accept: 'application/json, application/problem+json',
    'user-agent': options.userAgent ?? 'crossdeploy-cli',
  };

  return {
    baseUrl,
    get: (path, query) => send({ url: buildUrl(baseUrl, path, query), method: 'GET', headers }),
    post: (path, body, extra = {}) =>
      send({
        url: buildUrl(baseUrl, path),
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', ...extra },
        body: JSON.stringify(body),
      }),
    urlOf: (path) => buildUrl(baseUrl, path).toString(),
  };
}

async function read(response: Response, request: OutgoingRequest): Promise<ApiResponse> {
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const text = await response.text();
  let body: unknown;
  if (contentType === 'application/json' || contentType === 'application/problem+json') {
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new ConnectionError(`${where(request)} answered ${response.status} with invalid JSON`, {
        cause: error,
      });
    }
  }
  if (response.ok) {
    if (body === undefined) {
      throw new ConnectionError(
        `${where(request)} answered ${response.status} with ${contentType || 'no content type'}, not JSON: ` +
          'is --url pointing at a crossdeploy API?',
      );
    }
    return { status: response.status, body };
  }
  throw new ApiError(toProblem(response.status, body, text), body ?? text);
}

/**
 * Turns any error answer into a problem. API Gateway's own refusals (a missing or bad signature) are
 * `{ "message": ... }`, not problem+json; they still deserve a readable line.
 */
function toProblem(status: number, body: unknown, text: string): Problem {
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const record = body as Record<string, unknown>;
    if (typeof record.code === 'string' || typeof record.detail === 'string') {
      return { ...record, status: typeof record.status === 'number' ? record.status : status } as Problem;
    }
    if (typeof record.message === 'string') return { status, detail: record.message };
  }
  const snippet = text.trim().slice(0, 200);
  return { status, detail: snippet === '' ? `HTTP ${status}` : `HTTP ${status}: ${snippet}` };
}

const where = (request: OutgoingRequest) => `${request.method} ${request.url.origin}${request.url.pathname}`;

function networkCode(error: unknown): string | undefined {
  // fetch wraps the socket error: TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }).
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function unreachable(baseUrl: URL, error: unknown, timeoutMs: number): ConnectionError {
  const name = (error as { name?: unknown })?.name;
  if (name === 'TimeoutError') {
    return new ConnectionError(
      `crossdeploy at ${baseUrl.origin} did not answer within ${timeoutMs / 1000}s`,
      {
        cause: error,
      },
    );
  }
  const code = networkCode(error);
  const hint = isLoopback(baseUrl) ? ' — is `npm start` running?' : '';
  const reason = code ? ` (${code})` : '';
  return new ConnectionError(`cannot reach crossdeploy at ${baseUrl.origin}${reason}${hint}`, {
    cause: error,
  });
}
