import { describe, expect, it } from 'vitest';
import { call, deploy, TERMINAL, useLocalServer, waitForTerminal } from './support/local-server.ts';

/**
 * The real local server over HTTP, as an impatient client: it polls a deployment without pausing and, the
 * instant the record reads terminal, deploys again to the same `reject` environment. A terminal status must
 * mean the environment is already free, so that request is accepted (202), never refused as busy (409).
 */

const local = useLocalServer();

const ROUNDS = 4;

describe('local mode over HTTP', () => {
  it(`accepts a deployment requested the instant the previous one reads terminal (${ROUNDS} rounds)`, async () => {
    const request = { application: 'demo', environment: 'sim', dryRun: true };
    const first = await deploy(local.server.url, request);
    expect(first.status).toBe(202);
    let id = String(first.body.deploymentId);
    const refused: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (;;) {
        const { body } = await call(local.server.url, 'GET', `/deployments/${id}`);
        if (TERMINAL.has(String(body.status))) break;
      }
      const next = await deploy(local.server.url, request);
      if (next.status !== 202) {
        refused.push(`round ${round}: ${next.status} ${String(next.body.code)}`);
        break;
      }
      id = String(next.body.deploymentId);
    }
    await waitForTerminal(local.server.url, id);
    expect(refused).toEqual([]);
  }, 180_000);
});
