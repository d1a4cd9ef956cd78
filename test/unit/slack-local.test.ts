import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import type { PostOutcome, SlackMessage } from '#shared/chat/ports.ts';
import { recordEvent } from '#shared/deployments/record.ts';
import { logger } from '#shared/logger.ts';
import type { WorkflowStarter } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import { createTestStore } from '#test/support/store.ts';
import type { Api } from '../../functions/api/routes.ts';
import { createLocalChat } from '../../functions/slack/local.ts';
import { slackSignature } from '../../functions/slack/signature.ts';
import { LocalTaskTokens } from '../../local/workflow-engine.ts';

const SECRET = 'local-signing-secret';
const NOW = new Date('2026-03-01T12:00:00.000Z');
const registry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git', localPath: '.' },
      environments: {
        dev: {
          accountId: '111111111111',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::111111111111:role/deploy',
          executionRoleArn: 'arn:aws:iam::111111111111:role/cfn-exec',
          stackName: 'hello-world-dev',
          artifactsBucket: 'artifacts-111111111111-eu-west-1',
          runner: 'simulate',
          allowedRequesters: { local: ['*'], slack: [{ team: 'T1DC2JH3J' }] },
        },
      },
    },
  },
});

/** The event local/http.ts builds for a request (route matched from openapi.yaml). */
function slashEvent(text: string, secret = SECRET): APIGatewayProxyEventV2 {
  const event = JSON.parse(
    readFileSync(new URL('../events/slack/slash-command.json', import.meta.url), 'utf8'),
  ) as APIGatewayProxyEventV2;
  const body = new URLSearchParams({
    team_id: 'T1DC2JH3J',
    user_id: 'U2CERLKJA',
    user_name: 'roadrunner',
    command: '/deploy',
    text,
    response_url: 'https://hooks.slack.com/commands/T1DC2JH3J/1/LocalSecretToken',
  }).toString();
  const timestamp = String(NOW.getTime() / 1000);
  event.body = body;
  event.isBase64Encoded = false;
  event.headers = {
    host: '127.0.0.1:3000',
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': timestamp,
    'x-slack-signature': slackSignature(secret, timestamp, Buffer.from(body)),
  };
  return event;
}

async function setup(env: NodeJS.ProcessEnv) {
  const { store } = await createTestStore();
  const posts: { url: string; message: SlackMessage }[] = [];
  const starts: string[] = [];
  const workflow: WorkflowStarter = { start: async (id) => void starts.push(id) };
  const local = createLocalChat({
    env,
    registry,
    clock: { now: () => NOW },
    newId: () => '01JNLOCAL0000000000000001',
    baseUrl: () => 'http://127.0.0.1:3000',
    poster: {
      post: async (url, message): Promise<PostOutcome> => {
        posts.push({ url, message });
        return { outcome: 'posted', attempts: 1, status: 200 };
      },
    },
  });
  const observed = local.observe(store);
  const rest: Api = async () => ({ statusCode: 204 });
  const api = local.serve(rest, { store: observed, workflow, tokens: new LocalTaskTokens() });
  return { api, observed, posts, starts, chat: local.chat };
}

const caller = { type: 'local' as const, user: 'alice' };
const body = (response: APIGatewayProxyStructuredResultV2) =>
  JSON.parse(String(response.body)) as SlackMessage;

describe('local mode chat', () => {
  it('serves POST /slack/commands with the signing secret from CROSSDEPLOY_SLACK_SIGNING_SECRET', async () => {
    const { api, starts } = await setup({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET });
    const response = await api(slashEvent('hello-world dev'), caller);
    expect(response.statusCode).toBe(200);
    expect(body(response).text).toContain('01JNLOCAL0000000000000001');
    expect(JSON.stringify(body(response))).toContain(
      'http://127.0.0.1:3000/deployments/01JNLOCAL0000000000000001',
    );
    expect(starts).toEqual(['01JNLOCAL0000000000000001']);
  });

  it('refuses a request signed with another secret', async () => {
    const { api, starts } = await setup({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET });
    expect((await api(slashEvent('hello-world dev', 'other'), caller)).statusCode).toBe(401);
    expect(starts).toEqual([]);
  });

  it('answers 401 when no signing secret is configured', async () => {
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const { api, starts } = await setup({});
    expect((await api(slashEvent('hello-world dev'), caller)).statusCode).toBe(401);
    expect(starts).toEqual([]);
  });

  it('leaves every other route to the API', async () => {
    const { api } = await setup({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET });
    const event = slashEvent('help');
    event.routeKey = 'GET /applications';
    event.rawPath = '/applications';
    event.requestContext.http.method = 'GET';
    expect((await api(event, caller)).statusCode).toBe(204);
  });

  it('posts progress from the audit events the cores write, and keeps the URL in memory only', async () => {
    const { api, observed, posts, chat } = await setup({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET });
    await api(slashEvent('hello-world dev'), caller);
    const id = '01JNLOCAL0000000000000001';
    const clock = { now: () => NOW };
    await recordEvent(observed, clock, id, 'VALIDATED');
    await recordEvent(observed, clock, id, 'BUILD_STARTED', { buildId: 'b' });
    await vi.waitFor(() => expect(posts).toHaveLength(2));
    expect(posts.map((p) => p.message.text.split(':')[1])).toEqual(['rocket', 'hammer_and_wrench']);
    expect(posts[0]?.url).toBe('https://hooks.slack.com/commands/T1DC2JH3J/1/LocalSecretToken');
    expect(JSON.stringify(await observed.listEvents(id))).not.toContain('LocalSecretToken');
    expect(chat.snapshot().replies).toHaveLength(1);
  });

  it('posts the approval request with Approve and Reject buttons once the decision is awaited (APPROVAL_REQUESTED)', async () => {
    const { api, observed, posts } = await setup({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET });
    await api(slashEvent('hello-world dev'), caller);
    const id = '01JNLOCAL0000000000000001';
    await observed.updateDeployment(id, {
      status: 'RUNNING',
      phase: 'AWAITING_APPROVAL',
      approval: { mode: 'required', state: 'PENDING', expiresAt: '2026-03-01T13:00:00.000Z' },
      changeSetSummary: {
        changeSetArn: 'arn:aws:cloudformation:eu-west-1:111111111111:changeSet/cs/1',
        changeSetId: 'cs',
        added: [{ action: 'Add', logicalId: 'Fn', resourceType: 'AWS::Lambda::Function' }],
        modified: [],
        removed: [],
        iam: [],
        broadening: ['touches protected resource <!channel>'],
      },
      updatedAt: NOW.toISOString(),
    });
    await recordEvent(observed, { now: () => NOW }, id, 'APPROVAL_REQUESTED', { deploymentId: id });
    await vi.waitFor(() => expect(posts).toHaveLength(1));
    const message = posts[0]?.message as SlackMessage;
    expect(message).toMatchObject({ response_type: 'in_channel', replace_original: false });
    const actions = message.blocks.find((b) => b.type === 'actions') as {
      elements: { action_id: string; value: string; confirm?: unknown }[];
    };
    expect(actions.elements.map((e) => [e.action_id, e.value])).toEqual([
      ['crossdeploy_approve', id],
      ['crossdeploy_reject', id],
    ]);
    // Approving asks to confirm; what the change set does and why it is reviewed are on the message.
    expect(actions.elements[0]?.confirm).toBeDefined();
    const shown = JSON.stringify(message.blocks);
    expect(shown).toContain('+ `Fn` `AWS::Lambda::Function`');
    expect(shown).toContain('2026-03-01 13:00 UTC');
    // Text from the template (a logical id, a reason) cannot mention the channel.
    expect(shown).not.toContain('<!channel>');
    expect(shown).toContain('&lt;!channel&gt;');
  });

  it('posts no buttons for a deployment that is not awaiting a decision (a late or forged notice)', async () => {
    const { api, observed, posts } = await setup({ CROSSDEPLOY_SLACK_SIGNING_SECRET: SECRET });
    await api(slashEvent('hello-world dev'), caller);
    const id = '01JNLOCAL0000000000000001';
    await observed.updateDeployment(id, {
      status: 'RUNNING',
      approval: { mode: 'required', state: 'APPROVED' },
      updatedAt: NOW.toISOString(),
    });
    await recordEvent(observed, { now: () => NOW }, id, 'APPROVAL_REQUESTED', { deploymentId: id });
    // The notifier runs detached from the write: give it the time a post takes here (a few store calls).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(posts).toEqual([]);
  });
});
