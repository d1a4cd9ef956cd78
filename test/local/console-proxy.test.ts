import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createConsoleServer, signedApiCall } from '#local/console/proxy.ts';
import { type LocalMode, startLocalMode } from '#test/support/local-mode.ts';

/**
 * `crossdeploy console` in front of an API: here local mode stands in for the deployed API (it ignores the
 * signature), and a recording fetch shows what the proxy sent.
 */

const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLECONSOLE01',
  secretAccessKey: 'console-test-secret-key-not-real-0000000',
  sessionToken: 'console-test-session-token',
};

let local: LocalMode | undefined;
let proxy: ReturnType<typeof createConsoleServer> | undefined;
afterEach(async () => {
  proxy?.close();
  proxy?.closeAllConnections();
  await local?.close();
  local = undefined;
});

async function startProxy(mode: LocalMode) {
  const sent: { method: string; url: string; headers: Record<string, string> }[] = [];
  const recording: typeof fetch = async (input, init) => {
    sent.push({
      method: init?.method ?? 'GET',
      url: String(input),
      headers: Object.fromEntries(new Headers(init?.headers)),
    });
    return fetch(input, init);
  };
  proxy = createConsoleServer(
    signedApiCall({
      baseUrl: new URL(mode.url),
      auth: { kind: 'sigv4', region: 'eu-west-1' },
      fetch: recording,
      credentials: async () => async () => CREDENTIALS,
      userAgent: 'test',
    }),
  );
  await new Promise<void>((resolve) => proxy?.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, sent };
}

describe('crossdeploy console (loopback proxy to the API)', () => {
  it('renders the pages from GET calls signed with SigV4, and no credential reaches the browser', async () => {
    local = await startLocalMode();
    const id = await local.deploy();
    await local.waitUntil(id, (d) => d.status === 'SUCCEEDED');
    const { url, sent } = await startProxy(local);
    for (const path of [
      '/console',
      '/console/queue',
      '/console/environments/hello-world/staging',
      `/console/deployments/${id}`,
    ]) {
      const response = await fetch(`${url}${path}`);
      const text = await response.text();
      expect(response.status, path).toBe(200);
      expect(text).not.toContain(CREDENTIALS.secretAccessKey);
      expect(text).not.toContain(CREDENTIALS.sessionToken);
      expect(text).not.toContain(CREDENTIALS.accessKeyId);
    }
    expect(sent.length).toBeGreaterThan(0);
    for (const call of sent) {
      expect(call.method).toBe('GET');
      expect(call.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLECONSOLE01\/\d{8}\/eu-west-1\/execute-api\//,
      );
      expect(call.headers['x-amz-security-token']).toBe(CREDENTIALS.sessionToken);
    }
  });

  it('forwards nothing but console pages: API routes and writes get a 404 and no call', async () => {
    local = await startLocalMode();
    const { url, sent } = await startProxy(local);
    const post = await fetch(`${url}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ application: 'hello-world', environment: 'staging' }),
    });
    expect(post.status).toBe(404);
    expect((await fetch(`${url}/deployments?application=hello-world&environment=staging`)).status).toBe(404);
    expect((await fetch(`${url}/console`, { method: 'POST' })).status).toBe(405);
    expect(sent).toEqual([]);
  });

  it('refuses a foreign Host (DNS rebinding) and a tunnelled request', async () => {
    local = await startLocalMode();
    const { url, sent } = await startProxy(local);
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const target = new URL(`${url}/console`);
        const req = httpRequest(
          { host: target.hostname, port: target.port, path: '/console', headers },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await status({ host: 'attacker.example:8001' })).toBe(403);
    expect(await status({ forwarded: 'for=203.0.113.7' })).toBe(403);
    expect(sent).toEqual([]);
  });
});
