import type { Server } from 'node:http';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalHttpServer, createSlackHttpServer, PROXY_HEADERS } from '#local/http.ts';
import type { DeploymentStore, LogReader } from '#shared/ports.ts';
import type { Api } from '../../functions/api/routes.ts';

/** The listeners alone, in front of an API that records what reached it. */

const TOKEN = 'b'.repeat(32);
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function recordingApi() {
  const seen: APIGatewayProxyEventV2[] = [];
  const api: Api = async (event) => {
    seen.push(event);
    return { statusCode: 202, body: '{}', headers: { 'content-type': 'application/json' } };
  };
  return { api, seen };
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

function send(port: number, method: string, path: string, headers: Record<string, string>, body = '') {
  return new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end(body);
  });
}

const apiServer = (api: Api, apiToken?: string) =>
  createLocalHttpServer({
    api,
    logs: {} as LogReader,
    store: {} as DeploymentStore,
    requester: { type: 'local', user: 'me' },
    loopbackOnly: true,
    ...(apiToken ? { apiToken } : {}),
  });

describe('the API listener', () => {
  it.each(PROXY_HEADERS)(
    'without a token, refuses a request carrying %s and calls nothing',
    async (header) => {
      const { api, seen } = recordingApi();
      const port = await listen(apiServer(api));
      const status = await send(port, 'POST', '/promotions', {
        host: 'localhost',
        'content-type': 'application/json',
        [header]: header === 'forwarded' ? 'for=203.0.113.1' : '203.0.113.1',
      });
      expect(status).toBe(403);
      expect(seen).toEqual([]);
    },
  );

  it('with a token, a forwarded request with the token is served, and one without it is not', async () => {
    const { api, seen } = recordingApi();
    const port = await listen(apiServer(api, TOKEN));
    const forwarded = { host: 'crossdeploy.example.com', 'x-forwarded-for': '203.0.113.1' };
    expect(await send(port, 'GET', '/applications', forwarded)).toBe(401);
    expect(await send(port, 'GET', '/applications', { ...forwarded, authorization: `Bearer ${TOKEN}` })).toBe(
      202,
    );
    expect(seen.map((e) => e.routeKey)).toEqual(['GET /applications']);
  });

  it.each([
    ['/slack/commands', {}],
    ['/slack/commands/', {}],
    ['/slack/commands', { authorization: `Bearer ${TOKEN}` }],
  ])('never serves POST %s, with or without the token', async (path, auth) => {
    const { api, seen } = recordingApi();
    const port = await listen(apiServer(api, TOKEN));
    expect(await send(port, 'POST', path, { host: 'localhost', ...auth }, 'text=help')).toBe(
      'authorization' in auth ? 404 : 401,
    );
    expect(seen).toEqual([]);
  });
});

describe('the Slack listener', () => {
  it('hands POST /slack/commands to the API, whatever Host and proxy headers a tunnel sends', async () => {
    const { api, seen } = recordingApi();
    const port = await listen(createSlackHttpServer({ api, requester: { type: 'local', user: 'me' } }));
    const status = await send(
      port,
      'POST',
      '/slack/commands',
      {
        host: 'f00d.ngrok-free.app',
        'x-forwarded-for': '203.0.113.1',
        'content-type': 'application/x-www-form-urlencoded',
      },
      'text=help',
    );
    expect(status).toBe(202);
    expect(seen.map((e) => [e.routeKey, e.body])).toEqual([['POST /slack/commands', 'text=help']]);
  });

  it.each([
    ['POST', '/promotions'],
    ['POST', '/deployments'],
    ['POST', '/rollbacks'],
    ['GET', '/applications'],
    ['GET', '/deployments/01J0000000000000000000000A/logs'],
    ['POST', '/doctor/runs'],
    ['GET', '/slack/commands'],
    ['POST', '/slack/commands/extra'],
    ['POST', '/%73lack/commands'],
  ])('answers 404 to %s %s and calls nothing', async (method, path) => {
    const { api, seen } = recordingApi();
    const port = await listen(createSlackHttpServer({ api, requester: { type: 'local', user: 'me' } }));
    expect(
      await send(port, method, path, { host: 'localhost', 'content-type': 'application/json' }, '{}'),
    ).toBe(404);
    expect(seen).toEqual([]);
  });
});
