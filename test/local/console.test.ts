import { afterEach, describe, expect, it } from 'vitest';
import { type LocalMode, startLocalMode } from '#test/support/local-mode.ts';

/** The console served by local mode (same port, same guards as the API), read without a browser. */

const HOSTILE = '<img src=x onerror=alert(1)>';

let local: LocalMode | undefined;
afterEach(async () => {
  await local?.close();
  local = undefined;
});

async function deployWithReason(mode: LocalMode, reason: string): Promise<string> {
  const response = await fetch(`${mode.url}/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ application: 'hello-world', environment: 'staging', ref: 'main', reason }),
  });
  const body = (await response.json()) as { deploymentId: string };
  expect(response.status).toBe(202);
  return body.deploymentId;
}

describe('console (local mode)', () => {
  it('escapes a hostile reason on every page that shows it, and forbids inline script by policy', async () => {
    local = await startLocalMode();
    const id = await deployWithReason(local, HOSTILE);
    await local.waitUntil(id, (d) => d.status === 'SUCCEEDED');
    for (const path of ['/console/environments/hello-world/staging', `/console/deployments/${id}`]) {
      const response = await fetch(`${local.url}${path}`);
      const text = await response.text();
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(response.headers.get('content-security-policy')).not.toContain('unsafe-inline');
      expect(text, path).toContain('&lt;img src=x onerror=alert(1)>');
      expect(text, path).not.toContain(HOSTILE);
    }
  });

  it('offers no way to write: no form posts, and any method but GET and HEAD is refused', async () => {
    local = await startLocalMode();
    const id = await local.deploy();
    await local.waitUntil(id, (d) => d.status === 'SUCCEEDED');
    for (const path of [
      '/console',
      '/console/queue',
      '/console/environments/hello-world/staging',
      `/console/deployments/${id}`,
    ]) {
      const text = await (await fetch(`${local.url}${path}`)).text();
      expect(text, path).not.toMatch(/method=["']?post/i);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const response = await fetch(`${local.url}/console/deployments/${id}`, { method });
      expect(response.status, method).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
    }
  });

  it('keeps the API guards: a foreign Host (DNS rebinding) and a tunnelled request are refused', async () => {
    local = await startLocalMode();
    const { request } = await import('node:http');
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(`${local?.url}/console`);
        const req = request({ host: url.hostname, port: url.port, path: '/console', headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status({ host: 'attacker.example' })).toBe(403);
    expect(await status({ 'x-forwarded-for': '203.0.113.7' })).toBe(403);
    expect(await status({})).toBe(200);
  });

  it("links the environment's audit export, served as a file through the same API call", async () => {
    local = await startLocalMode();
    const id = await deployWithReason(local, '=cmd|calc');
    await local.waitUntil(id, (d) => d.status === 'SUCCEEDED');
    const page = await (await fetch(`${local.url}/console/environments/hello-world/staging`)).text();
    const link = /href="(\/console\/export\?[^"]*format=csv)"/.exec(page)?.[1]?.replaceAll('&amp;', '&');
    expect(link).toBeDefined();
    const response = await fetch(`${local.url}${link}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toMatch(
      /^attachment; filename="hello-world-staging-/,
    );
    const csv = await response.text();
    expect(csv).toContain(id);
    expect(csv).toContain(`"'=cmd|calc"`);
  });

  it('escapes a hostile application name from the URL in the refusal it shows', async () => {
    local = await startLocalMode();
    const response = await fetch(`${local.url}/console/environments/${encodeURIComponent(HOSTILE)}/staging`);
    const text = await response.text();
    expect(response.status).toBe(403);
    expect(text).toContain('&lt;img src=x onerror=alert(1)>');
    expect(text).not.toContain(HOSTILE);
  });

  it('answers a 404 page for an unknown deployment and for a path outside the console', async () => {
    local = await startLocalMode();
    const missing = await fetch(`${local.url}/console/deployments/NOPE`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('no deployment');
    expect((await fetch(`${local.url}/console/nowhere`)).status).toBe(404);
  });
});
