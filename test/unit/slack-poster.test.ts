import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SlackMessage } from '#shared/chat/ports.ts';
import { logger } from '#shared/logger.ts';
import {
  BOT_TOKEN_PLACEHOLDER,
  FetchBotPoster,
  FetchResponsePoster,
  type PosterOptions,
} from '../../functions/slack/poster.ts';

/** A stand-in for Slack's response_url on 127.0.0.1: answers each POST with the next scripted reply. */
let server: Server;
let url: string;
let bodies: unknown[];
let requests: { path: string; authorization: string | undefined }[];
let script: ((res: ServerResponse) => void)[];

beforeEach(async () => {
  bodies = [];
  requests = [];
  script = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
      const next = script.shift() ?? ((r: ServerResponse) => r.writeHead(200).end('ok'));
      next(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/commands/T1/1/secret`;
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const message: SlackMessage = {
  response_type: 'in_channel',
  replace_original: false,
  text: 'hi',
  blocks: [],
};

/** Test settings for either poster: short timeouts, recorded sleeps, no jitter. */
function quick<T>(make: (options: PosterOptions) => T, options: PosterOptions = {}) {
  const sleeps: number[] = [];
  const instance = make({
    timeoutMs: 500,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 1,
    ...options,
  });
  return { instance, sleeps };
}

const poster = (options: PosterOptions = {}) => quick((o) => new FetchResponsePoster(o), options);

describe('FetchResponsePoster', () => {
  it('posts the message as JSON', async () => {
    const { instance } = poster();
    expect(await instance.post(url, message)).toEqual({ outcome: 'posted', attempts: 1, status: 200 });
    expect(bodies).toEqual([message]);
  });

  it('retries a server error with exponential backoff, then posts', async () => {
    script = [(r) => r.writeHead(500).end(), (r) => r.writeHead(502).end()];
    const { instance, sleeps } = poster();
    expect(await instance.post(url, message)).toEqual({ outcome: 'posted', attempts: 3, status: 200 });
    expect(sleeps).toEqual([500, 1000]);
  });

  it('waits at least as long as a 429 asks (capped)', async () => {
    script = [(r) => r.writeHead(429, { 'retry-after': '2' }).end()];
    const { instance, sleeps } = poster({ random: () => 0 });
    expect((await instance.post(url, message)).outcome).toBe('posted');
    expect(sleeps).toEqual([2000]);
  });

  it('does not retry what cannot get better (an expired URL)', async () => {
    script = [(r) => r.writeHead(404).end('expired_url')];
    const { instance, sleeps } = poster();
    expect(await instance.post(url, message)).toEqual({
      outcome: 'failed',
      attempts: 1,
      status: 404,
      failure: 'http',
    });
    expect(sleeps).toEqual([]);
  });

  it('times out each attempt and gives up without throwing', async () => {
    script = [() => undefined, () => undefined, () => undefined];
    const { instance } = poster({ timeoutMs: 50 });
    expect(await instance.post(url, message)).toEqual({ outcome: 'failed', attempts: 3, failure: 'timeout' });
  });

  it('reports an unreachable URL as a network failure', async () => {
    const { instance } = poster({ attempts: 2 });
    const closed = 'http://127.0.0.1:1/commands/x';
    expect(await instance.post(closed, message)).toEqual({
      outcome: 'failed',
      attempts: 2,
      failure: 'network',
    });
  });

  it('does not follow a redirect somewhere else', async () => {
    script = [(r) => r.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end()];
    const { instance } = poster({ attempts: 1 });
    expect(await instance.post(url, message)).toMatchObject({ outcome: 'failed', attempts: 1 });
  });
});

/** Made up, shaped like a bot token. */
const TOKEN = 'xoxb-0000000000-0000000000-PoStErToKeN42abcdefgh';
const ok = (r: ServerResponse) =>
  r
    .writeHead(200, { 'content-type': 'application/json' })
    .end('{"ok":true,"channel":"C0DEPLOYS1","ts":"1.2"}');
const slackError =
  (error: string, status = 200) =>
  (r: ServerResponse) =>
    r.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error }));

const bot = (token: () => Promise<string | undefined> = async () => TOKEN, options: PosterOptions = {}) =>
  quick((o) => new FetchBotPoster({ ...o, token, apiBase: url.replace(/commands\/.*$/, 'api/') }), options);

describe('FetchBotPoster', () => {
  it('calls chat.postMessage with the token as a Bearer header, and the channel, text and blocks in the body', async () => {
    script = [ok];
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'hi' } }];
    const { instance } = bot();
    expect(await instance.post('C0DEPLOYS1', { ...message, blocks })).toEqual({
      outcome: 'posted',
      attempts: 1,
      status: 200,
    });
    expect(requests).toEqual([{ path: '/api/chat.postMessage', authorization: `Bearer ${TOKEN}` }]);
    expect(bodies).toEqual([
      { channel: 'C0DEPLOYS1', text: 'hi', blocks, unfurl_links: false, unfurl_media: false },
    ]);
    expect(JSON.stringify(bodies)).not.toContain(TOKEN);
  });

  it("reports Slack's refusal (HTTP 200, ok:false) by its error name, and does not retry what will not get better", async () => {
    script = [slackError('not_in_channel')];
    const { instance, sleeps } = bot();
    expect(await instance.post('C0DEPLOYS1', message)).toEqual({
      outcome: 'failed',
      attempts: 1,
      status: 200,
      failure: 'slack:not_in_channel',
    });
    expect(sleeps).toEqual([]);
  });

  it('retries a rate limit (429, waiting as asked) and a transient Slack error, then posts', async () => {
    script = [
      (r) =>
        r
          .writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' })
          .end('{"ok":false,"error":"ratelimited"}'),
      slackError('internal_error'),
      ok,
    ];
    const { instance, sleeps } = bot(undefined, { random: () => 0 });
    expect(await instance.post('C0DEPLOYS1', message)).toEqual({
      outcome: 'posted',
      attempts: 3,
      status: 200,
    });
    expect(sleeps).toEqual([3000, 0]);
  });

  it('does not pass on an error name that is not one (it could quote anything)', async () => {
    script = [slackError('<https://evil.example|click> xoxb-leak')];
    const { instance } = bot();
    expect(await instance.post('C0DEPLOYS1', message)).toMatchObject({ outcome: 'failed', failure: 'http' });
  });

  it.each([
    ['no token', async () => undefined],
    ["the template's placeholder", async () => 'not-configured'],
    ['a user token', async () => 'xoxp-0000000000-0000000000-UsErToKeN42abcdefgh'],
  ])('with %s, is not configured and sends nothing', async (_, token) => {
    const { instance } = bot(token);
    expect(await instance.configured()).toBe(false);
    expect(await instance.post('C0DEPLOYS1', message)).toEqual({
      outcome: 'failed',
      attempts: 0,
      failure: 'not-configured',
    });
    expect(requests).toEqual([]);
  });

  it('cannot tell whether a bot is configured from a secret it cannot read, sends nothing, and logs only the error name', async () => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const failing = Object.assign(new Error(`AccessDenied for ${TOKEN}`), { name: 'ConfigError' });
    const { instance } = bot(async () => Promise.reject(failing));
    expect(await instance.configured()).toBeUndefined();
    expect(await instance.post('C0DEPLOYS1', message)).toEqual({
      outcome: 'failed',
      attempts: 0,
      failure: 'secret-unreadable',
    });
    expect(requests).toEqual([]);
    expect(JSON.stringify(warn.mock.calls)).toContain('ConfigError');
    expect(JSON.stringify(warn.mock.calls)).not.toContain(TOKEN);
    warn.mockRestore();
  });

  it('says when the secret holds something that is no bot token (never what), and stays quiet about the placeholder', async () => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    expect(await bot(async () => BOT_TOKEN_PLACEHOLDER).instance.configured()).toBe(false);
    expect(warn).not.toHaveBeenCalled();
    expect(await bot(async () => 'xoxp-0000000000-UsErToKeN42abcdefgh').instance.configured()).toBe(false);
    expect(JSON.stringify(warn.mock.calls)).toContain('holds no bot token');
    expect(JSON.stringify(warn.mock.calls)).not.toContain('UsErToKeN42');
    warn.mockRestore();
  });

  it.each(['', 'general', '#deploys', 'C0DEPLOYS1/../../x', 'U2CERLKJA'])(
    'sends nothing to %j, which is not a channel id',
    async (channel) => {
      const { instance } = bot();
      expect(await instance.post(channel, message)).toMatchObject({ outcome: 'failed', attempts: 0 });
      expect(requests).toEqual([]);
    },
  );

  it('does not follow a redirect (the token would go with it)', async () => {
    let elsewhere = 0;
    const other = createServer((_req, res) => {
      elsewhere++;
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', () => resolve()));
    const port = (other.address() as AddressInfo).port;
    script = [(r) => r.writeHead(307, { location: `http://127.0.0.1:${port}/steal` }).end()];
    const { instance } = bot(undefined, { attempts: 1 });
    expect(await instance.post('C0DEPLOYS1', message)).toMatchObject({ outcome: 'failed', attempts: 1 });
    expect(elsewhere).toBe(0);
    other.closeAllConnections();
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });
});
