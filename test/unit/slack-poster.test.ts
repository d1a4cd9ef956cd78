import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SlackMessage } from '#shared/chat/ports.ts';
import { FetchResponsePoster } from '../../functions/slack/poster.ts';

/** A stand-in for Slack's response_url on 127.0.0.1: answers each POST with the next scripted reply. */
let server: Server;
let url: string;
let bodies: unknown[];
let script: ((res: ServerResponse) => void)[];

beforeEach(async () => {
  bodies = [];
  script = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
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

function poster(options: ConstructorParameters<typeof FetchResponsePoster>[0] = {}) {
  const sleeps: number[] = [];
  const instance = new FetchResponsePoster({
    timeoutMs: 500,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 1,
    ...options,
  });
  return { instance, sleeps };
}

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
