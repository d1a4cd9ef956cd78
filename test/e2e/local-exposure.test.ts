import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { slackSignature } from '../../functions/slack/signature.ts';
import { call, deploy, ROOT, useLocalServer, waitForTerminal } from './support/local-server.ts';

/**
 * What a tunnel (ngrok, cloudflared) delivers to the local server. docs/slack.md once told users to tunnel
 * the API's port with `Host` rewritten to localhost and no token: then every route was public. These
 * requests arrive on loopback, as a tunnel agent's do, and carry what the tunnels add.
 */

const SECRET = 'e2e-slack-signing-secret';

const local = useLocalServer({
  env: {
    CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET,
    CROSSDEPLOY_SLACK_PORT: '0',
  },
});
let slackUrl: string;

beforeAll(async () => {
  slackUrl = /slack {2,}(http:\/\/\S+)/.exec(local.server.output())?.[1] ?? '';
  // Something to promote, so that a promotion that got through would be accepted (202), not refused.
  const { body } = await deploy(local.server.url, { application: 'demo', environment: 'sim' });
  expect(await waitForTerminal(local.server.url, String(body.deploymentId))).toMatchObject({
    status: 'SUCCEEDED',
  });
}, 90_000);

interface RawReply {
  status: number;
  body: string;
}

/** A request with headers fetch() will not send (Host), to a base URL's port on loopback. */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawReply> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { ...headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

const port = (base: string) => new URL(base).port;

/** `ngrok http --host-header=rewrite <port>`: Host rewritten, the public name and client kept aside. */
const ngrok = (base: string) => ({
  host: `localhost:${port(base)}`,
  'x-forwarded-for': '203.0.113.7',
  'x-forwarded-host': 'f00d-203-0-113-7.ngrok-free.app',
  'x-forwarded-proto': 'https',
});
/** `cloudflared tunnel --url ... --http-host-header localhost`. */
const cloudflared = () => ({
  host: 'localhost',
  'cf-connecting-ip': '203.0.113.8',
  'cf-ray': '8f00000000000000-AMS',
  'x-forwarded-for': '203.0.113.8',
  'x-forwarded-proto': 'https',
});
/** RFC 7239, as other reverse proxies send it. */
const forwarded = (base: string) => ({
  host: `127.0.0.1:${port(base)}`,
  forwarded: 'for=203.0.113.9;proto=https;host=crossdeploy.example.com',
});

const json = { 'content-type': 'application/json' };
const promotion = JSON.stringify({ application: 'demo', from: 'sim', to: 'sim-prod' });
const deployment = JSON.stringify({ application: 'demo', environment: 'sim' });

async function historyOf(environment: string) {
  const { body } = await call(
    local.server.url,
    'GET',
    `/deployments?application=demo&environment=${environment}`,
  );
  return body.items as unknown[];
}

function signed(text: string, secret = SECRET) {
  const body = new URLSearchParams({
    team_id: 'T1DC2JH3J',
    user_id: 'U2CERLKJA',
    user_name: 'roadrunner',
    command: '/deploy',
    text,
    response_url: 'https://hooks.slack.com/commands/T1DC2JH3J/1/E2eSecretToken',
  }).toString();
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': slackSignature(secret, timestamp, Buffer.from(body)),
    },
  };
}

describe('a tunnel to the API port (no token)', () => {
  for (const [name, headers] of [
    ['ngrok', ngrok],
    ['cloudflared', cloudflared],
    ['Forwarded', forwarded],
  ] as const) {
    it(`refuses a ${name}-tunnelled POST /promotions and POST /deployments, and records nothing`, async () => {
      const before = { sim: (await historyOf('sim')).length, prod: (await historyOf('sim-prod')).length };
      const promote = await raw(
        local.server.url,
        'POST',
        '/promotions',
        { ...headers(local.server.url), ...json },
        promotion,
      );
      const deploy = await raw(
        local.server.url,
        'POST',
        '/deployments',
        { ...headers(local.server.url), ...json },
        deployment,
      );
      const read = await raw(local.server.url, 'GET', '/applications', headers(local.server.url));
      expect([promote.status, deploy.status, read.status]).toEqual([403, 403, 403]);
      expect(JSON.parse(promote.body)).toMatchObject({ code: 'FORBIDDEN' });
      expect(JSON.parse(promote.body).detail).toContain('CROSSDEPLOY_SLACK_PORT');
      expect({ sim: (await historyOf('sim')).length, prod: (await historyOf('sim-prod')).length }).toEqual(
        before,
      );
    });
  }

  it('does not serve the Slack routes at all (they live on the Slack port)', async () => {
    const { body, headers } = signed('help');
    const reply = await raw(
      local.server.url,
      'POST',
      '/slack/commands',
      { host: 'localhost', ...headers },
      body,
    );
    expect(reply.status).toBe(404);
    const click = await raw(
      local.server.url,
      'POST',
      '/slack/interactions',
      { host: 'localhost', ...headers },
      body,
    );
    expect(click.status).toBe(404);
  });

  it('still answers the same request made on this machine, without proxy headers', async () => {
    const reply = await raw(local.server.url, 'GET', '/applications', {
      host: `localhost:${port(local.server.url)}`,
    });
    expect(reply.status).toBe(200);
  });
});

describe('the Slack port, as a tunnel delivers to it', () => {
  it('is announced in the banner', () => {
    expect(slackUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/slack\/commands$/);
    expect(port(slackUrl)).not.toBe(port(local.server.url));
  });

  it('answers a validly signed slash command', async () => {
    // As `ngrok http <slack port>` delivers it (the public Host, not rewritten), and with Host rewritten.
    for (const tunnel of [{ ...ngrok(slackUrl), host: 'f00d-203-0-113-7.ngrok-free.app' }, ngrok(slackUrl)]) {
      const { body, headers } = signed('help');
      const reply = await raw(slackUrl, 'POST', '/slack/commands', { ...tunnel, ...headers }, body);
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toMatchObject({ response_type: 'ephemeral' });
    }
    const { body, headers } = signed('help');
    const reply = await raw(slackUrl, 'POST', '/slack/commands', { ...cloudflared(), ...headers }, body);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ response_type: 'ephemeral' });
  });

  it('refuses a bad signature with 401 and starts nothing', async () => {
    const before = (await historyOf('sim')).length;
    const { body, headers } = signed('demo sim', 'not-the-secret');
    const reply = await raw(slackUrl, 'POST', '/slack/commands', { ...ngrok(slackUrl), ...headers }, body);
    expect(reply.status).toBe(401);
    expect(JSON.parse(reply.body)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await historyOf('sim')).length).toBe(before);
  });

  it('answers 404 to every other route, tunnelled or not, and starts nothing', async () => {
    const before = { sim: (await historyOf('sim')).length, prod: (await historyOf('sim-prod')).length };
    const replies = await Promise.all([
      raw(slackUrl, 'POST', '/promotions', { ...ngrok(slackUrl), ...json }, promotion),
      raw(slackUrl, 'POST', '/deployments', { ...cloudflared(), ...json }, deployment),
      raw(slackUrl, 'POST', '/promotions', { host: 'localhost', ...json }, promotion),
      raw(slackUrl, 'GET', '/applications', { host: 'localhost' }),
      raw(slackUrl, 'GET', '/slack/commands', { host: 'localhost' }),
      raw(slackUrl, 'GET', '/slack/interactions', { host: 'localhost' }),
      raw(slackUrl, 'POST', '/doctor/runs', { host: 'localhost', ...json }, '{}'),
    ]);
    expect(replies.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404, 404]);
    expect({ sim: (await historyOf('sim')).length, prod: (await historyOf('sim-prod')).length }).toEqual(
      before,
    );
  });
});

describe('configuration', () => {
  it.each([
    [
      { CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET },
      'CROSSDEPLOY_SLACK_PORT: is required with CROSSDEPLOY_SLACK_SIGNING_SECRET',
    ],
    [
      { CROSSDEPLOY_SLACK_PORT: '0' },
      'CROSSDEPLOY_SLACK_SIGNING_SECRET: is required with CROSSDEPLOY_SLACK_PORT',
    ],
  ])('refuses to start with one Slack variable and not the other (%o), exit status 2', (env, message) => {
    const run = spawnSync(process.execPath, ['local/main.ts'], {
      cwd: ROOT,
      env: {
        ...local.fixture.env,
        PORT: '0',
        CROSSDEPLOY_DATA_DIR: mkdtempSync(join(local.fixture.root, 'cfg-')),
        ...env,
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).not.toContain('listening on');
  });
});
