import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { slackSignature } from '../../functions/slack/signature.ts';
import { call, deployment, useLocalServer, waitFor, waitForTerminal } from './support/local-server.ts';

/**
 * Approval from Slack's buttons end to end in local mode: the real server (`node local/main.ts`, the real ASL,
 * `runner: simulate`) with its Slack listener, a deployment of an environment whose approvers are a Slack user,
 * and signed `block_actions` requests as Slack sends them to the listener (docs/slack.md).
 */

const SECRET = 'e2e-slack-interactions-secret';
const local = useLocalServer({
  env: {
    CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET,
    CROSSDEPLOY_SLACK_PORT: '0',
  },
});
let interactionsUrl: string;

beforeAll(async () => {
  const slackUrl = /slack {2,}(http:\/\/\S+)/.exec(local.server.output())?.[1] ?? '';
  interactionsUrl = slackUrl.replace(/\/slack\/commands$/, '/slack/interactions');
}, 90_000);

/** A click on the approval request's button, signed now with the server's secret. */
async function click(deploymentId: string, userId: string, action = 'crossdeploy_approve') {
  const payload = JSON.parse(
    readFileSync(new URL('../events/slack/block-actions-payload.json', import.meta.url), 'utf8'),
  ) as { user: { id: string }; actions: { action_id: string; value: string }[] };
  payload.user.id = userId;
  payload.actions = [{ ...payload.actions[0], action_id: action, value: deploymentId }];
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const response = await fetch(interactionsUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': slackSignature(SECRET, timestamp, Buffer.from(body)),
    },
    body,
  });
  return response.status;
}

async function awaitingApproval(): Promise<string> {
  const { status, body } = await call(local.server.url, 'POST', '/deployments', {
    body: { application: 'demo', environment: 'reviewed-chat' },
    template: '/deployments',
  });
  expect(status, JSON.stringify(body)).toBe(202);
  const id = String(body.deploymentId);
  await waitFor(`deployment ${id} to await approval`, async () => {
    const d = await deployment(local.server.url, id);
    return d.phase === 'AWAITING_APPROVAL' || ['SUCCEEDED', 'FAILED', 'REJECTED'].includes(String(d.status))
      ? d
      : undefined;
  });
  expect(await deployment(local.server.url, id)).toMatchObject({ phase: 'AWAITING_APPROVAL' });
  return id;
}

const events = async (id: string) =>
  (await call(local.server.url, 'GET', `/deployments/${id}/events`, { template: '/deployments/{id}/events' }))
    .body.items as { type: string; detail: Record<string, unknown> }[];

describe('approval from Slack buttons (local mode, real local.server)', () => {
  it('refuses a click from a Slack user who is not an approver (audited), then runs the change set on the approver’s click', async () => {
    const id = await awaitingApproval();

    expect(await click(id, 'U0STRANGER')).toBe(200);
    await waitFor('the refusal on the record', async () =>
      (await events(id)).find((e) => e.type === 'APPROVAL_REFUSED'),
    );
    const refused = (await events(id)).find((e) => e.type === 'APPROVAL_REFUSED');
    expect(refused?.detail).toMatchObject({
      code: 'NOT_AN_APPROVER',
      decidedBy: { type: 'slack', teamId: 'T1DC2JH3J', userId: 'U0STRANGER' },
    });
    expect(await deployment(local.server.url, id)).toMatchObject({
      status: 'RUNNING',
      phase: 'AWAITING_APPROVAL',
    });

    expect(await click(id, 'U0APPROVER')).toBe(200);
    const done = await waitForTerminal(local.server.url, id);
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      approval: { state: 'APPROVED', decidedBy: { type: 'slack', userId: 'U0APPROVER' } },
    });
  });

  it('rejects on the Reject button: nothing applied, REJECTED/APPROVAL_REJECTED', async () => {
    const id = await awaitingApproval();
    expect(await click(id, 'U0APPROVER', 'crossdeploy_reject')).toBe(200);
    expect(await waitForTerminal(local.server.url, id)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'APPROVAL_REJECTED',
    });
  });

  it('refuses an unsigned click (401) and keeps waiting', async () => {
    const id = await awaitingApproval();
    const response = await fetch(interactionsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ payload: '{}' }).toString(),
    });
    expect(response.status).toBe(401);
    expect(await deployment(local.server.url, id)).toMatchObject({ phase: 'AWAITING_APPROVAL' });
    // Leave nothing waiting on the shared lock for the next run: withdraw it through the API.
    await call(local.server.url, 'POST', `/deployments/${id}/approval`, {
      body: { decision: 'reject' },
      template: '/deployments/{id}/approval',
    });
  });
});
