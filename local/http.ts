import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parse as parseYaml } from 'yaml';
import type { DeploymentStore, LogReader } from '#shared/ports.ts';
import { isTerminal, type Requester } from '#shared/types.ts';
import { errorResponse, problem, problemResponse } from '../functions/api/problem.ts';
import { type Api, DEFAULT_MAX_BODY_BYTES } from '../functions/api/routes.ts';
import { SLACK_ROUTES, slackRouteOf } from '../functions/slack/local.ts';
import { isLoopback } from './config.ts';
import { type ApiCall, createConsole, isConsolePath } from './console/routes.ts';

/**
 * Serves the API core over HTTP on this machine: each request becomes the API Gateway HTTP API (payload 2.0)
 * event the Lambda receives, and the structured result becomes the response. Only what API Gateway cannot do
 * lives here: the bearer token (local stand-in for IAM auth), the body cap while reading, and following a
 * deployment's log as a stream.
 *
 * Two listeners, so that a tunnel for Slack cannot expose the API: the API's listener never serves the Slack
 * route, and without a token it refuses anything a proxy or tunnel forwarded; the Slack listener serves the
 * Slack route only (its signature is its authentication) and answers 404 to everything else.
 */

/**
 * Headers a reverse proxy or tunnel adds (ngrok: X-Forwarded-*; cloudflared: CF-Connecting-IP and
 * X-Forwarded-For; RFC 7239: Forwarded). A client on this machine talking to the port directly sends none.
 */
export const PROXY_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-real-ip',
  'cf-connecting-ip',
  'true-client-ip',
  'via',
] as const;

const OPENAPI = new URL('../openapi.yaml', import.meta.url);

interface Route {
  key: string;
  method: string;
  parts: string[];
}

/** The route keys API Gateway would match, from the contract (openapi.yaml), most specific first. */
export function loadRoutes(): Route[] {
  const spec = parseYaml(readFileSync(OPENAPI, 'utf8')) as {
    paths?: Record<string, Record<string, unknown>>;
  };
  const methods = ['get', 'post', 'put', 'patch', 'delete'];
  return Object.entries(spec.paths ?? {})
    .flatMap(([path, item]) =>
      Object.keys(item ?? {})
        .filter((m) => methods.includes(m))
        .map((m) => ({
          key: `${m.toUpperCase()} ${path}`,
          method: m.toUpperCase(),
          parts: path.split('/').slice(1),
        })),
    )
    .sort(
      (a, b) =>
        a.parts.filter((p) => p.startsWith('{')).length - b.parts.filter((p) => p.startsWith('{')).length,
    );
}

function matchRoute(routes: Route[], method: string, path: string) {
  const segments = (path.replace(/\/+$/, '') || '/').split('/').slice(1);
  for (const route of routes) {
    if (route.method !== method || route.parts.length !== segments.length) continue;
    const parameters: Record<string, string> = {};
    const ok = route.parts.every((part, i) => {
      const segment = segments[i] ?? '';
      const name = /^\{(.+)\}$/.exec(part)?.[1];
      if (!name) return part === segment;
      try {
        parameters[name] = decodeURIComponent(segment);
      } catch {
        return false;
      }
      return segment !== '';
    });
    if (ok) return { routeKey: route.key, pathParameters: parameters };
  }
  return undefined;
}

export interface LocalHttpOptions {
  api: Api;
  logs: LogReader;
  store: DeploymentStore;
  requester: Requester;
  maxBodyBytes?: number;
  /** Required on every request when set (always set for a non-loopback bind). */
  apiToken?: string;
  /** Loopback binds refuse other Host headers (DNS rebinding from a browser). */
  loopbackOnly: boolean;
  followPollMs?: number;
}

export function createLocalHttpServer(options: LocalHttpOptions): Server {
  const routes = loadRoutes();
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const tokenDigest = options.apiToken ? digest(options.apiToken) : undefined;
  // The console reads through the API core with this server's requester: what the API refuses, it shows not.
  const webConsole = createConsole({ call: inProcessCall(options.api, options.requester, routes) });

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) send(res, errorResponse(error));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const refusal = authenticate(req);
    if (refusal) {
      send(res, refusal);
      return drain(req, MAX_DRAIN_BYTES, MAX_DRAIN_MS);
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    if (isConsolePath(url.pathname)) {
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([name, value]) => [
          name,
          Array.isArray(value) ? value.join(',') : value,
        ]),
      );
      send(res, await webConsole(method, url, headers));
      return drain(req, MAX_DRAIN_BYTES, MAX_DRAIN_MS);
    }
    const match = matchRoute(routes, method, url.pathname);
    if (isSlackRequest(method, url, match)) {
      send(
        res,
        notHere(url, 'Slack is served on its own port (CROSSDEPLOY_SLACK_PORT), not on the API port'),
      );
      return drain(req, MAX_DRAIN_BYTES, MAX_DRAIN_MS);
    }
    const body = await readCapped(req, maxBodyBytes + 1);
    const event = toEvent(req, url, method, body.bytes, match);
    if (match?.routeKey === 'GET /deployments/{id}/logs' && url.searchParams.get('follow') === 'true') {
      return follow(event, res, match.pathParameters.id ?? '');
    }
    const result = await options.api(event, options.requester);
    send(res, result);
    // The oversized rest is drained unbuffered, so the client (still uploading) reads the 413 rather than
    // a reset connection; a body that does not end within the bounds gets the connection dropped.
    if (body.truncated) drain(req, MAX_DRAIN_BYTES, MAX_DRAIN_MS);
  }

  function authenticate(req: IncomingMessage): APIGatewayProxyStructuredResultV2 | undefined {
    if (!options.apiToken) {
      // Without a token, "on loopback" is the only guard, and a tunnel agent connects from loopback too.
      const header = PROXY_HEADERS.find((name) => req.headers[name] !== undefined);
      if (header) {
        return problemResponse(
          problem(
            'FORBIDDEN',
            403,
            `this request came through a proxy or tunnel (it carries ${header}); without CROSSDEPLOY_API_TOKEN this server answers requests made on this machine only. Slack is served on its own port (CROSSDEPLOY_SLACK_PORT): point a tunnel there`,
          ),
        );
      }
    }
    if (options.loopbackOnly && !options.apiToken) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (host !== '' && !isLoopback(host)) {
        return problemResponse(
          problem('FORBIDDEN', 403, `this server answers requests for a loopback host only, not ${host}`),
        );
      }
    }
    if (!tokenDigest) return undefined;
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    // Compared as digests of equal length, in constant time: the comparison leaks nothing about the token.
    if (timingSafeEqual(digest(presented), tokenDigest)) return undefined;
    return problemResponse(
      problem('UNAUTHENTICATED', 401, 'a valid `Authorization: Bearer <token>` header is required'),
      {
        'www-authenticate': 'Bearer realm="crossdeploy"',
      },
    );
  }

  /**
   * `GET /deployments/{id}/logs?follow=true`: API Gateway cannot stream, so this is local only. The first
   * page goes through the API (validation, 404, cursor checks); then new lines are sent as they arrive, one
   * JSON object per line, until the deployment is terminal and everything was sent.
   */
  async function follow(event: APIGatewayProxyEventV2, res: ServerResponse, id: string) {
    const first = await options.api(event, options.requester);
    if (first.statusCode !== 200) return send(res, first);
    const page = JSON.parse(String(first.body)) as { items: unknown[]; nextCursor?: string };
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    let closed = false;
    res.once('close', () => {
      closed = true;
    });
    for (const item of page.items) res.write(`${JSON.stringify(item)}\n`);
    let cursor = page.nextCursor;
    while (cursor !== undefined && !closed) {
      await new Promise((resolve) => setTimeout(resolve, options.followPollMs ?? 300));
      const deployment = await options.store.getDeployment(id);
      if (!deployment) break;
      const next = await options.logs.read(deployment, { cursor, limit: 1000 });
      for (const item of next.items) res.write(`${JSON.stringify(item)}\n`);
      cursor = next.nextCursor;
      if (next.items.length === 0 && cursor !== undefined && isTerminal(deployment.status)) {
        // Terminal and nothing new: a reader that keeps a cursor past the end would never finish.
        break;
      }
    }
    res.end();
  }

  return server;
}

export interface SlackHttpOptions {
  /** The API with the Slack route in front (functions/slack/local.ts); only that route reaches it. */
  api: Api;
  requester: Requester;
  maxBodyBytes?: number;
}

/**
 * The Slack listener: `POST /slack/commands`, `POST /slack/interactions` and nothing else. It needs no token and no loopback Host,
 * because the Slack core verifies every request's signature; so this is the one port a tunnel may expose.
 */
export function createSlackHttpServer(options: SlackHttpOptions): Server {
  const routes = loadRoutes().filter((route) => (SLACK_ROUTES as readonly string[]).includes(route.key));
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) send(res, errorResponse(error));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const match = matchRoute(routes, method, url.pathname);
    if (!isSlackRequest(method, url, match)) {
      send(res, notHere(url, 'this port serves POST /slack/commands and POST /slack/interactions only'));
      return drain(req, MAX_DRAIN_BYTES, MAX_DRAIN_MS);
    }
    const body = await readCapped(req, maxBodyBytes + 1);
    send(res, await options.api(toEvent(req, url, method, body.bytes, match), options.requester));
    if (body.truncated) drain(req, MAX_DRAIN_BYTES, MAX_DRAIN_MS);
  }

  return server;
}

/** Matched by functions/slack/local.ts's own matcher, so no spelling of the path slips past either listener. */
function isSlackRequest(method: string, url: URL, match: { routeKey: string } | undefined): boolean {
  return slackRouteOf(method, url.pathname, match?.routeKey) !== undefined;
}

function notHere(url: URL, detail: string): APIGatewayProxyStructuredResultV2 {
  return problemResponse(problem('NOT_FOUND', 404, detail, { instance: url.pathname }));
}

const MAX_DRAIN_BYTES = 16 * 1024 * 1024;
const MAX_DRAIN_MS = 30_000;

function drain(req: IncomingMessage, maxBytes: number, maxMs: number): void {
  let discarded = 0;
  const timer = setTimeout(() => req.socket.destroy(), maxMs);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxBytes) req.socket.destroy();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Reads at most `limit` bytes of the body; past that it stops reading and reports the body as truncated. */
function readCapped(req: IncomingMessage, limit: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      const room = limit - size;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(chunk.length, room);
      if (size >= limit) {
        req.off('data', onData);
        req.pause();
        resolve({ bytes: Buffer.concat(chunks), truncated: true });
      }
    };
    req.on('data', onData);
    req.once('end', () => resolve({ bytes: Buffer.concat(chunks), truncated: false }));
    req.once('error', reject);
  });
}

/** The console's API calls, made in-process: the same event shape as a request on the wire, GET only. */
function inProcessCall(api: Api, requester: Requester, routes: Route[]): ApiCall {
  return async (path, query = {}, headers = {}) => {
    const url = new URL(path, 'http://localhost');
    for (const [name, value] of Object.entries(query))
      if (value !== undefined) url.searchParams.set(name, value);
    const match = matchRoute(routes, 'GET', url.pathname);
    const queryStringParameters = Object.fromEntries(url.searchParams);
    const now = new Date();
    const event: APIGatewayProxyEventV2 = {
      version: '2.0',
      routeKey: match?.routeKey ?? '$default',
      rawPath: url.pathname,
      rawQueryString: url.search.slice(1),
      headers: { host: 'localhost', ...headers },
      ...(Object.keys(queryStringParameters).length > 0 ? { queryStringParameters } : {}),
      ...(match && Object.keys(match.pathParameters).length > 0
        ? { pathParameters: match.pathParameters }
        : {}),
      isBase64Encoded: false,
      requestContext: {
        accountId: 'local',
        apiId: 'local',
        domainName: 'localhost',
        domainPrefix: 'localhost',
        http: {
          method: 'GET',
          path: url.pathname,
          protocol: 'HTTP/1.1',
          sourceIp: '127.0.0.1',
          userAgent: 'console',
        },
        requestId: randomUUID(),
        routeKey: match?.routeKey ?? '$default',
        stage: '$default',
        time: now.toUTCString(),
        timeEpoch: now.getTime(),
      },
    };
    const result = await api(event, requester);
    const body = result.body ?? '';
    return {
      statusCode: result.statusCode ?? 200,
      headers: Object.fromEntries(
        Object.entries(result.headers ?? {}).map(([n, v]) => [n.toLowerCase(), String(v)]),
      ),
      body: result.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body,
    };
  };
}

/** The API Gateway HTTP API payload 2.0 event for a request. */
function toEvent(
  req: IncomingMessage,
  url: URL,
  method: string,
  body: Buffer,
  match: { routeKey: string; pathParameters: Record<string, string> } | undefined,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  // API Gateway joins repeated query parameters with commas.
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = name in query ? `${query[name]},${value}` : value;
  const text = body.length > 0 ? decodeUtf8(body) : undefined;
  const now = new Date();
  return {
    version: '2.0',
    routeKey: match?.routeKey ?? '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    ...(match && Object.keys(match.pathParameters).length > 0
      ? { pathParameters: match.pathParameters }
      : {}),
    ...(body.length > 0
      ? text !== undefined
        ? { body: text, isBase64Encoded: false }
        : { body: body.toString('base64'), isBase64Encoded: true }
      : { isBase64Encoded: false }),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: match?.routeKey ?? '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
  };
}

/** Text when the bytes are valid UTF-8; otherwise undefined and the body travels base64-encoded, unchanged. */
function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const headers: Record<string, string | number | boolean> = { ...(result.headers ?? {}) };
  const body =
    result.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  res.writeHead(result.statusCode ?? 200, { ...headers, 'content-length': body.length });
  res.end(body);
}
