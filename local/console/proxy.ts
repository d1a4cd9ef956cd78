import { createServer, type Server } from 'node:http';
import { buildUrl } from '../cli/http.ts';
import { type Auth, type CredentialProvider, type OutgoingRequest, signRequest } from '../cli/signing.ts';
import { isLoopback } from '../config.ts';
import { PROXY_HEADERS } from '../http.ts';
import { type ApiCall, createConsole, isConsolePath } from './routes.ts';

/**
 * `crossdeploy console`: the console on loopback for a deployed orchestrator, as `kubectl proxy` does it. The
 * browser talks to this process only; this process calls the API's GET routes signed with the user's AWS
 * credentials (SigV4), so no browser ever holds AWS keys and the deployed API stays IAM-only.
 */

export function signedApiCall(options: {
  baseUrl: URL;
  auth: Auth;
  fetch: typeof fetch;
  credentials: () => Promise<CredentialProvider>;
  userAgent: string;
}): ApiCall {
  return async (path, query = {}, headers = {}) => {
    let request: OutgoingRequest = {
      url: buildUrl(options.baseUrl, path, query),
      method: 'GET',
      headers: {
        accept: 'application/json, application/problem+json',
        'user-agent': options.userAgent,
        ...headers,
      },
    };
    if (options.auth.kind === 'sigv4') {
      request = {
        ...request,
        ...(await signRequest(request, options.auth.region, await options.credentials())),
      };
    } else if (options.auth.kind === 'bearer') {
      request = {
        ...request,
        headers: { ...request.headers, authorization: `Bearer ${options.auth.token}` },
      };
    }
    const response = await options.fetch(request.url, {
      method: 'GET',
      headers: request.headers,
      redirect: 'error',
      signal: AbortSignal.timeout(30_000),
    });
    return {
      statusCode: response.status,
      headers: Object.fromEntries(response.headers),
      body: await response.text(),
    };
  };
}

/**
 * The loopback server: console pages only (everything else is a 404, so it forwards no API route as such),
 * and the local API's guards: a Host that is not loopback (DNS rebinding) or a request through a proxy or
 * tunnel is refused.
 */
export function createConsoleServer(call: ApiCall): Server {
  const handle = createConsole({ call });
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const proxied = PROXY_HEADERS.find((name) => req.headers[name] !== undefined);
    const refuse = (status: number, detail: string) => {
      res.writeHead(status, { 'content-type': 'application/problem+json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ title: status === 404 ? 'Not found' : 'Forbidden', status, detail }));
    };
    if (proxied)
      return refuse(403, `this console answers requests made on this machine only (got ${proxied})`);
    if (host !== '' && !isLoopback(host))
      return refuse(403, `this console answers a loopback host only, not ${host}`);
    if (url.pathname === '/') {
      res.writeHead(302, { location: '/console' });
      return res.end();
    }
    if (!isConsolePath(url.pathname)) return refuse(404, 'this server serves the console (/console) only');
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([name, value]) => [
        name,
        Array.isArray(value) ? value.join(',') : value,
      ]),
    );
    handle((req.method ?? 'GET').toUpperCase(), url, headers).then(
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        res.end(answer.body);
      },
      () => {
        if (!res.headersSent) refuse(502, 'the crossdeploy API could not be read');
        else res.destroy();
      },
    );
  });
}
