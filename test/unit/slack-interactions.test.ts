import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryChatStore } from '#shared/chat/memory-store.ts';
import type { ChatReply, PostOutcome, SlackMessage } from '#shared/chat/ports.ts';
import { newDeployment } from '#shared/deployments/record.ts';
import { logger } from '#shared/logger.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import type { Requester } from '#shared/types.ts';
import { createTestStore } from '#test/support/store.ts';
import { createSlackInteractions } from '../../functions/slack/interactions.ts';
import { notifyMilestone } from '../../functions/slack/notifier.ts';
import { slackSignature } from '../../functions/slack/signature.ts';
import { LocalTaskTokens } from '../../local/workflow-engine.ts';

/**
 * POST /slack/interactions: a click on an approval request's button, as Slack sends it (API Gateway v2 event,
 * form body `payload=<block_actions JSON>`, signed with the app's signing secret). The store is dynalite; the
 * waiting workflow is a real task token of local mode's engine.
 */

const SECRET = 'interaction-signing-secret';
const NOW = new Date('2024-12-04T08:14:03.000Z');
const TEAM = 'T1DC2JH3J';
const ID = '01JNAPPROVAL00000000000001';
const REQUESTER = 'U0REQUESTER';
const APPROVER = 'U0APPROVER';
const SECOND = 'U0SECONDAPPROVER';

const registry = parseRegistry({
  applications: {
    shop: {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/shop.git' },
      environments: {
        prod: {
          accountId: '222222222222',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/deploy',
          executionRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/cfn-exec',
          stackName: 'shop-prod',
          artifactsBucket: 'artifacts-222222222222-eu-west-1',
          allowedRequesters: { slack: [{ team: TEAM }] },
          // The requester is an approver too: only allowSelfApproval (off) keeps them from approving.
          approvers: { slack: [{ team: TEAM, users: [APPROVER, SECOND, REQUESTER] }] },
          approval: 'required',
        },
      },
    },
  },
});

const payloadFixture = () =>
  JSON.parse(
    readFileSync(new URL('../events/slack/block-actions-payload.json', import.meta.url), 'utf8'),
  ) as Record<string, unknown> & {
    user: { id: string; team_id: string };
    team: { id: string };
    actions: { action_id: string; value: string }[];
    response_url: string;
  };

type Payload = ReturnType<typeof payloadFixture>;

/** The interaction event with `payload` as the form body, signed (by default) as Slack signs it. */
function click(
  edit: (payload: Payload) => void = () => {},
  sign: { secret?: string; at?: Date; body?: (body: string) => string } = {},
): APIGatewayProxyEventV2 {
  const event = JSON.parse(
    readFileSync(new URL('../events/slack/interaction.json', import.meta.url), 'utf8'),
  ) as APIGatewayProxyEventV2;
  const payload = payloadFixture();
  edit(payload);
  const signed = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const timestamp = String(Math.floor((sign.at ?? NOW).getTime() / 1000));
  const sent = sign.body ? sign.body(signed) : signed;
  event.body = Buffer.from(sent).toString('base64');
  event.isBase64Encoded = true;
  event.headers = {
    ...event.headers,
    'x-slack-request-timestamp': timestamp,
    'x-slack-signature': slackSignature(sign.secret ?? SECRET, timestamp, Buffer.from(signed)),
  };
  return event;
}

const by =
  (userId: string, teamId = TEAM) =>
  (payload: Payload) => {
    payload.user.id = userId;
    payload.user.team_id = teamId;
    payload.team.id = teamId;
  };
const rejecting = (payload: Payload) => {
  (payload.actions[0] as { action_id: string }).action_id = 'crossdeploy_reject';
};

let store: DeploymentStore;
let tokens: LocalTaskTokens;
let outcome: Promise<unknown>;
let posts: { url: string; message: SlackMessage }[];
let handle: (event: APIGatewayProxyEventV2) => Promise<{ statusCode?: number; body?: string }>;
let chat: MemoryChatStore;

const requester: Requester = { type: 'slack', teamId: TEAM, userId: REQUESTER };

beforeEach(async () => {
  ({ store } = await createTestStore());
  tokens = new LocalTaskTokens();
  await store.createDeployment(
    newDeployment({
      deploymentId: ID,
      application: 'shop',
      environment: 'prod',
      requester,
      trigger: 'chat',
      requestedAt: '2024-12-04T08:00:00.000Z',
    }),
  );
  await store.updateDeployment(ID, {
    status: 'RUNNING',
    phase: 'AWAITING_APPROVAL',
    approval: { mode: 'required', state: 'PENDING' },
    changeSet: '+1 ~0 -0',
    updatedAt: '2024-12-04T08:10:00.000Z',
  });
  const issued = tokens.issue();
  outcome = issued.result.then(
    (value) => ({ approved: value }),
    (error: Error) => ({ failed: error.name, cause: JSON.parse(error.message) as Record<string, unknown> }),
  );
  await store.putTaskToken(ID, 'approval', issued.token);
  posts = [];
  chat = new MemoryChatStore();
  handle = createSlackInteractions({
    store,
    registry,
    tokens,
    clock: { now: () => NOW },
    chat,
    links: { status: () => undefined },
    signingSecret: async () => SECRET,
    poster: {
      post: async (url, message): Promise<PostOutcome> => {
        posts.push({ url, message });
        return { outcome: 'posted', attempts: 1, status: 200 };
      },
    },
  });
});

const pending = async () => (await store.getDeployment(ID))?.approval?.state === 'PENDING';
/** Whether the waiting workflow got a decision (the token settles at most once). */
const decided = async () =>
  Promise.race([outcome.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 50))]);
const refusals = async () =>
  (await store.listEvents(ID)).filter((e) => e.type === 'APPROVAL_REFUSED').map((e) => e.detail);

describe('POST /slack/interactions: an approver clicks', () => {
  it('Approve: the waiting workflow gets the decision with the Slack user as decider, and the request message is replaced', async () => {
    const result = await handle(click());
    expect(result.statusCode).toBe(200);
    expect(await outcome).toEqual({
      approved: expect.objectContaining({
        decision: 'APPROVED',
        decidedBy: { type: 'slack', teamId: TEAM, userId: APPROVER, userName: 'release.manager' },
      }),
    });
    expect(posts).toHaveLength(1);
    expect(posts[0]?.url).toBe('https://hooks.slack.com/actions/T1DC2JH3J/8188421913715/ClickSecretToken');
    expect(posts[0]?.message).toMatchObject({ replace_original: true, response_type: 'in_channel' });
    const shown = JSON.stringify(posts[0]?.message.blocks);
    expect(shown).toContain(`Approved by <@${APPROVER}>`);
    // The buttons are gone from the replaced message.
    expect(shown).not.toContain('crossdeploy_approve');
  });

  it('Reject: the wait fails as ApprovalRejectedError naming the Slack user', async () => {
    await handle(click((p) => rejecting(p)));
    const result = (await outcome) as { failed: string; cause: Record<string, unknown> };
    expect(result.failed).toBe('ApprovalRejectedError');
    expect(result.cause).toMatchObject({ decidedBy: { type: 'slack', userId: APPROVER } });
    expect(JSON.stringify(posts[0]?.message.blocks)).toContain(`Rejected by <@${APPROVER}>`);
  });

  it('takes a click from an org-wide install (Enterprise Grid), whose payload has no team, by the user’s own workspace', async () => {
    const result = await handle(
      click((p) => {
        (p as { team: unknown }).team = null;
        (p as { enterprise?: unknown }).enterprise = { id: 'E0GRID1234', name: 'Example Org' };
      }),
    );
    expect(result.statusCode).toBe(200);
    expect(await outcome).toMatchObject({
      approved: expect.objectContaining({
        decidedBy: expect.objectContaining({ teamId: TEAM, userId: APPROVER }),
      }),
    });
  });

  it('reads the deployment once per decided click: the replaced message shows the record decide() loaded', async () => {
    const reads = vi.spyOn(store, 'getDeployment');
    await handle(click());
    expect(await outcome).toMatchObject({ approved: expect.objectContaining({ decision: 'APPROVED' }) });
    expect(reads).toHaveBeenCalledTimes(1);
    const shown = JSON.stringify(posts[0]?.message.blocks);
    expect(shown).toContain(`Approved by <@${APPROVER}>`);
    expect(shown).toContain('+1 ~0 -0');
  });

  it('lets the requester withdraw (reject) their own change set', async () => {
    await handle(
      click((p) => {
        by(REQUESTER)(p);
        rejecting(p);
      }),
    );
    expect(await outcome).toMatchObject({ failed: 'ApprovalRejectedError' });
  });
});

describe('POST /slack/interactions: refused clicks decide nothing, and say why to the clicker only', () => {
  it('refuses a user who is not an approver (NOT_AN_APPROVER), audited on the deployment', async () => {
    const result = await handle(click(by('U0STRANGER')));
    expect(result.statusCode).toBe(200);
    expect(await decided()).toBe(false);
    expect(await pending()).toBe(true);
    expect(await refusals()).toEqual([
      expect.objectContaining({
        code: 'NOT_AN_APPROVER',
        decidedBy: expect.objectContaining({ userId: 'U0STRANGER' }),
      }),
    ]);
    expect(posts).toHaveLength(1);
    expect(posts[0]?.message).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(posts[0]?.message.text).toContain('not an approver');
  });

  it('refuses an approver’s user id clicking from another workspace (the team is part of who)', async () => {
    await handle(click(by(APPROVER, 'T0OTHERTEAM')));
    expect(await decided()).toBe(false);
    expect((await refusals()).map((r) => r.code)).toEqual(['NOT_AN_APPROVER']);
  });

  it('refuses the requester approving their own deployment (SELF_APPROVAL)', async () => {
    await handle(click(by(REQUESTER)));
    expect(await decided()).toBe(false);
    expect((await refusals()).map((r) => r.code)).toEqual(['SELF_APPROVAL']);
    expect(posts[0]?.message.text).toContain('allowSelfApproval is off');
  });

  it('refuses a click after the deployment ended (NOT_AWAITING_APPROVAL)', async () => {
    await store.finishDeployment(ID, 'FAILED', {
      approval: { mode: 'required', state: 'TIMED_OUT' },
      updatedAt: '2024-12-04T08:13:00.000Z',
    });
    await handle(click());
    expect(await decided()).toBe(false);
    expect((await refusals()).map((r) => r.code)).toEqual(['NOT_AWAITING_APPROVAL']);
  });

  it('refuses a second click after a decision, and says so', async () => {
    await handle(click());
    await outcome;
    // Another approver, a moment later (a different request, so a different signature).
    await handle(click(by(SECOND)));
    expect((await refusals()).map((r) => r.code)).toEqual(['NOT_AWAITING_APPROVAL']);
    expect(posts.at(-1)?.message.response_type).toBe('ephemeral');
  });

  it('answers a click on a deployment that does not exist without deciding anything', async () => {
    await handle(
      click((p) => {
        (p.actions[0] as { value: string }).value = '01JNNOSUCHDEPLOYMENT000001';
      }),
    );
    expect(await decided()).toBe(false);
    expect(posts[0]?.message.text).toContain('no deployment');
  });
});

describe('POST /slack/interactions: only Slack, once', () => {
  it('refuses an unsigned request (401) and decides nothing', async () => {
    const event = click();
    delete event.headers['x-slack-signature'];
    const result = await handle(event);
    expect(result.statusCode).toBe(401);
    expect(await decided()).toBe(false);
    expect(posts).toEqual([]);
  });

  it('refuses a signature made with another secret (401)', async () => {
    expect((await handle(click(undefined, { secret: 'guessed' }))).statusCode).toBe(401);
    expect(await decided()).toBe(false);
  });

  it('refuses a signed click whose body was changed afterwards (Reject turned into Approve) (401)', async () => {
    const event = click(rejecting, {
      body: (body) => body.replace('crossdeploy_reject', 'crossdeploy_approve'),
    });
    expect((await handle(event)).statusCode).toBe(401);
    expect(await decided()).toBe(false);
    expect(await pending()).toBe(true);
  });

  it('refuses a click signed more than 5 minutes ago (401)', async () => {
    const event = click(undefined, { at: new Date(NOW.getTime() - 6 * 60_000) });
    expect((await handle(event)).statusCode).toBe(401);
    expect(await decided()).toBe(false);
  });

  it('does nothing with the same signed click seen again (replay): no second decision, refusal or post', async () => {
    const event = click();
    await handle(event);
    await outcome;
    const again = await handle(structuredClone(event));
    expect(again.statusCode).toBe(200);
    expect(posts).toHaveLength(1);
    expect(await refusals()).toEqual([]);
  });

  it('refuses an action that is not one of our buttons (400) and decides nothing', async () => {
    const result = await handle(
      click((p) => {
        (p.actions[0] as { action_id: string }).action_id = 'crossdeploy_approve_all';
      }),
    );
    expect(result.statusCode).toBe(400);
    expect(result.body).toContain('MALFORMED_REQUEST');
    expect(await decided()).toBe(false);
  });

  it('does not post the outcome to a response_url outside Slack (the decision still stands)', async () => {
    await handle(
      click((p) => {
        p.response_url = 'https://attacker.example/collect';
      }),
    );
    expect(await outcome).toMatchObject({ approved: expect.anything() });
    expect(posts).toEqual([]);
  });
});

/** The slash command's reply item, its URL long expired (the decision came an hour later). */
const commandReply = (overrides: Partial<ChatReply>): ChatReply => ({
  deploymentId: ID,
  responseUrl: 'https://hooks.slack.com/commands/T1DC2JH3J/1/ExpiredCommandToken',
  teamId: TEAM,
  userId: REQUESTER,
  createdAt: '2024-12-04T07:00:00.000Z',
  expiresAt: '2024-12-04T07:29:00.000Z',
  stage: 0,
  posts: 0,
  ...overrides,
});

describe('POST /slack/interactions: the result after a long wait', () => {
  it('posts the result through the click’s fresh response_url, though the command’s expired long ago', async () => {
    // The command's URL expired (the decision came an hour later); the sweep may already have deleted it.
    await chat.putReply(commandReply({ stage: 3, posts: 3 }));
    await handle(click());
    await outcome;
    await store.finishDeployment(ID, 'SUCCEEDED', {
      finishedAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
    });
    const notifier = {
      store,
      chat,
      clock: { now: () => NOW },
      links: { status: () => undefined },
      poster: {
        post: async (url: string, message: SlackMessage): Promise<PostOutcome> => {
          posts.push({ url, message });
          return { outcome: 'posted', attempts: 1, status: 200 };
        },
      },
    };
    expect(await notifyMilestone(ID, 'final', notifier)).toBe('posted');
    expect(posts.map((p) => [p.url, p.message.text.split(':')[0]])).toEqual([
      ['https://hooks.slack.com/actions/T1DC2JH3J/8188421913715/ClickSecretToken', 'Approved'],
      ['https://hooks.slack.com/actions/T1DC2JH3J/8188421913715/ClickSecretToken', ''],
    ]);
    expect(posts[1]?.message.text).toContain('Succeeded');
    // Earlier milestones do not post again through the new URL, and the URL is gone once the result is out.
    expect(await notifyMilestone(ID, 'deploy', notifier)).toBe('skipped');
    expect(await chat.getReply(ID)).not.toHaveProperty('responseUrl');
  });

  it('takes over an item kept for the bot (its URL gone), keeping the command’s channel when the click names none', async () => {
    await chat.putReply(commandReply({ channelId: 'C0DEPLOYS1', stage: 4, posts: 4 }));
    await chat.retainReply(ID, '2024-12-05T08:00:00.000Z');
    await handle(
      click((p) => {
        delete (p as { channel?: unknown }).channel;
      }),
    );
    expect(await outcome).toMatchObject({ approved: expect.anything() });
    expect(await chat.getReply(ID)).toMatchObject({
      responseUrl: 'https://hooks.slack.com/actions/T1DC2JH3J/8188421913715/ClickSecretToken',
      channelId: 'C0DEPLOYS1',
      stage: 4,
      posts: 1,
    });
  });

  it('does not say "nothing was decided" when the decision may have reached the workflow before an error', async () => {
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    tokens.succeed = async () => Promise.reject(new Error('SendTaskSuccess timed out'));
    expect((await handle(click())).statusCode).toBe(200);
    expect(posts[0]?.message).toMatchObject({ response_type: 'ephemeral' });
    expect(posts[0]?.message.text).not.toContain('nothing was decided');
    expect(posts[0]?.message.text).toContain('may not have been recorded');
    expect(posts[0]?.message.text).toContain(`crossdeploy status ${ID}`);
    logged.mockRestore();
  });

  it('does not take over the reply on a refused click', async () => {
    await handle(click(by('U0STRANGER')));
    expect(await chat.getReply(ID)).toBeUndefined();
  });

  it('says the decision stands when something fails after it was delivered (never "nothing was decided")', async () => {
    const logged = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    chat.rearmReply = async () => Promise.reject(new Error('throttled'));
    expect((await handle(click())).statusCode).toBe(200);
    expect(await outcome).toMatchObject({ approved: expect.objectContaining({ decision: 'APPROVED' }) });
    expect(posts).toHaveLength(1);
    expect(posts[0]?.message).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(posts[0]?.message.text).not.toContain('nothing was decided');
    expect(posts[0]?.message.text).toContain('approved');
    expect(posts[0]?.message.text).toContain('was recorded');
    logged.mockRestore();
  });
});

describe('POST /slack/interactions: who clicked is the user of their own workspace', () => {
  it('refuses a Slack Connect user of another organisation clicking in our workspace, even where the whole workspace may approve', async () => {
    const teamWide = parseRegistry({
      applications: {
        shop: {
          ...registry.applications.shop,
          environments: {
            prod: {
              ...(registry.applications.shop?.environments.prod as object),
              approvers: { slack: [{ team: TEAM }] },
            },
          },
        },
      },
    } as never);
    const open = createSlackInteractions({
      store,
      registry: teamWide,
      tokens,
      clock: { now: () => NOW },
      chat,
      links: { status: () => undefined },
      signingSecret: async () => SECRET,
      poster: { post: async () => ({ outcome: 'posted', attempts: 1, status: 200 }) },
    });
    // A shared channel: the click comes from our workspace (team.id), the user belongs to another (user.team_id).
    await open(
      click((p) => {
        p.user.id = 'U0EXTERNAL';
        p.user.team_id = 'T0EXTERNAL';
      }),
    );
    expect(await decided()).toBe(false);
    expect(await refusals()).toEqual([
      expect.objectContaining({
        code: 'NOT_AN_APPROVER',
        decidedBy: expect.objectContaining({ teamId: 'T0EXTERNAL', userId: 'U0EXTERNAL' }),
      }),
    ]);
  });
});
