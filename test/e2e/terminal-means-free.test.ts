import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  createFixture,
  deploy,
  type Fixture,
  type ServerProcess,
  startServer,
  TERMINAL,
  waitForTerminal,
} from './support/local-server.ts';

/**
 * The real local server over HTTP, as an impatient client: it polls a deployment without pausing and, the
 * instant the record reads terminal, deploys again to the same `reject` environment. A terminal status must
 * mean the environment is already free, so that request is accepted (202), never refused as busy (409).
 */

let fixture: Fixture;
let server: ServerProcess;

beforeAll(async () => {
  fixture = await createFixture();
  server = await startServer(fixture, join(fixture.root, 'data'));
}, 60_000);

afterAll(async () => {
  await server?.stop('SIGKILL');
  await fixture?.sts.close();
  if (fixture) rmSync(fixture.root, { recursive: true, force: true });
});

const ROUNDS = 4;

describe('local mode over HTTP', () => {
  it(`accepts a deployment requested the instant the previous one reads terminal (${ROUNDS} rounds)`, async () => {
    const request = { application: 'demo', environment: 'sim', dryRun: true };
    const first = await deploy(server.url, request);
    expect(first.status).toBe(202);
    let id = String(first.body.deploymentId);
    const refused: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (;;) {
        const { body } = await call(server.url, 'GET', `/deployments/${id}`);
        if (TERMINAL.has(String(body.status))) break;
      }
      const next = await deploy(server.url, request);
      if (next.status !== 202) {
        refused.push(`round ${round}: ${next.status} ${String(next.body.code)}`);
        break;
      }
      id = String(next.body.deploymentId);
    }
    await waitForTerminal(server.url, id);
    expect(refused).toEqual([]);
  }, 180_000);
});
