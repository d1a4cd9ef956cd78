import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoChatStore } from '#shared/aws/slack-store.ts';
import type { ChatLinks, SlackMessage } from '#shared/chat/ports.ts';
import { finish, newDeployment, recordEvent } from '#shared/deployments/record.ts';
import { assignRelease } from '#shared/deployments/releases.ts';
import { logger } from '#shared/logger.ts';
import type { DeploymentStore, JobInfo, JobRunner, WorkflowStarter } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import { sourceIdentity } from '#shared/registry/requester.ts';
import type { Requester } from '#shared/types.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import { createSlackCommands, type SlackCommandHandler, slackHooksOnly } from '../../functions/slack/core.ts';
import { createHandler, type SlackDeps } from '../../functions/slack/handler.ts';
import {
  BOT_HORIZON_MS,
  type NotifierDeps,
  notifyingStore,
  notifyMilestone,
  sweepExpiredReplies,
} from '../../functions/slack/notifier.ts';
import { FetchBotPoster, FetchResponsePoster } from '../../functions/slack/poster.ts';
import { slackSignature } from '../../functions/slack/signature.ts';

// Fixtures -------------------------------------------------------------------------------------------

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../events/slack/${name}`, import.meta.url), 'utf8')) as T;

const SECRET = 'test-signing-secret-0123456789abcdef';
const TEAM = 'T1DC2JH3J';
const USER = 'U2CERLKJA';
const START = '2026-03-01T12:00:00.000Z';
/** The part of the response_url that makes it a credential: it must never show up anywhere but its item. */
const URL_TOKEN = 'ReSpOnSeUrLsEcReT96rGlfmibIGlgcZRsk';

const ROLE = (account: string, name: string) => `arn:aws:iam::${account}:role/crossdeploy/${name}`;
const environment = (account: string, stack: string, extra: Record<string, unknown>) => ({
  accountId: account,
  region: 'eu-west-1',
  deployRoleArn: ROLE(account, 'deploy'),
  executionRoleArn: ROLE(account, 'cfn-exec'),
  stackName: stack,
  artifactsBucket: `artifacts-${account}-eu-west-1`,
  ...extra,
});

const registry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
      defaultRef: 'main',
      environments: {
        // Anyone in the workspace.
        staging: environment('111111111111', 'hello-world-staging', {
          allowedRequesters: { slack: [{ team: TEAM }] },
        }),
        // Only the named user; promotions from staging.
        prod: environment('222222222222', 'hello-world-prod', {
          allowedRequesters: { slack: [{ team: TEAM, users: [USER] }] },
          promoteFrom: ['staging'],
        }),
        // Refuses while busy.
        hotfix: environment('333333333333', 'hello-world-hotfix', {
          mode: 'reject',
          allowedRequesters: { slack: [{ team: TEAM }] },
          // Its deployments are read outside chat only.
          readers: { iam: ['Auditor'] },
        }),
        // Not for chat at all.
        internal: environment('444444444444', 'hello-world-internal', {
          allowedRequesters: { iam: ['ci-*'] },
        }),
      },
    },
  },
});

class RecordingWorkflow implements WorkflowStarter {
  readonly starts: { deploymentId: string; input: unknown }[] = [];
  async start(deploymentId: string, input: unknown) {
    this.starts.push({ deploymentId, input });
  }
}

/** A stand-in for Slack's response_url on 127.0.0.1: records every message posted to it. */
class ResponseUrlServer {
  readonly posts: SlackMessage[] = [];
  private server: Server | undefined;
  url = '';

  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.url?.endsWith(URL_TOKEN)) this.posts.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/commands/${TEAM}/397700885554/${URL_TOKEN}`;
  }

  async stop() {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const links: ChatLinks = { status: (id) => `https://console.example.com/executions/${id}` };

interface Harness {
  commands: SlackCommandHandler;
  notifier: NotifierDeps;
  store: DeploymentStore;
  chat: DynamoChatStore;
  workflow: RecordingWorkflow;
  clock: { now: () => Date; set: (iso: string) => void };
  scanTable: () => Promise<Record<string, unknown>[]>;
}

async function harness(
  options: { workflow?: WorkflowStarter; store?: DeploymentStore } = {},
): Promise<Harness> {
  const { store: realStore, doc, tableName } = await createTestStore();
  const store = options.store ?? realStore;
  const chat = new DynamoChatStore({ client: doc, tableName });
  const workflow = new RecordingWorkflow();
  let now = new Date(START);
  const clock = { now: () => new Date(now), set: (iso: string) => (now = new Date(iso)) };
  let n = 0;
  const commands = createSlackCommands({
    store,
    workflow: options.workflow ?? workflow,
    registry,
    clock,
    newId: () => `01JNSLACK${String(++n).padStart(17, '0')}`,
    chat,
    links,
    signingSecret: async () => SECRET,
    // Production allows Slack's hooks host only; these tests post to 127.0.0.1.
    responseUrlAllowed: (url) => url.hostname === '127.0.0.1' || slackHooksOnly(url),
  });
  const notifier: NotifierDeps = {
    store: realStore,
    chat,
    poster: new FetchResponsePoster({ timeoutMs: 2_000, sleep: async () => undefined }),
    clock,
    links,
    sleep: async () => undefined,
    finalWait: { attempts: 2, delayMs: 0 },
  };
  const scanTable = async () => (await doc.send(new ScanCommand({ TableName: tableName }))).Items ?? [];
  return { commands, notifier, store, chat, workflow, clock, scanTable };
}

interface SlashOptions {
  team?: string;
  user?: string;
  responseUrl?: string;
  secret?: string;
  timestamp?: string;
  base64?: boolean;
}

/** A slash command as API Gateway delivers it: the real event shape, signed like Slack signs it. */
function slash(h: Harness, text: string, options: SlashOptions = {}): APIGatewayProxyEventV2 {
  const body = new URLSearchParams({
    token: 'xyzz0WbapA4vBCDEFasx0q6G',
    team_id: options.team ?? TEAM,
    team_domain: 'testteamnow',
    channel_id: 'C0DEPLOYS1',
    channel_name: 'deploys',
    user_id: options.user ?? USER,
    user_name: 'roadrunner',
    command: '/deploy',
    text,
    response_url: options.responseUrl ?? `https://hooks.slack.com/commands/${TEAM}/397700885554/${URL_TOKEN}`,
    trigger_id: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  }).toString();
  const timestamp = options.timestamp ?? String(Math.floor(h.clock.now().getTime() / 1000));
  const event = fixture<APIGatewayProxyEventV2>('slash-command.json');
  const base64 = options.base64 ?? true;
  event.body = base64 ? Buffer.from(body).toString('base64') : body;
  event.isBase64Encoded = base64;
  event.headers = {
    ...event.headers,
    'content-length': String(Buffer.byteLength(body)),
    'x-slack-request-timestamp': timestamp,
    'x-slack-signature': slackSignature(options.secret ?? SECRET, timestamp, Buffer.from(body)),
  };
  return event;
}

interface Answer {
  status: number;
  message: SlackMessage;
  /** Everything the person sees, for matching. */
  text: string;
}

async function send(h: Harness, event: APIGatewayProxyEventV2): Promise<Answer> {
  const response: APIGatewayProxyStructuredResultV2 = await h.commands(event);
  const message = expectValidResponse('POST', '/slack/commands', response) as SlackMessage;
  return { status: response.statusCode ?? 0, message, text: JSON.stringify(message) };
}

const command = (h: Harness, text: string, options?: SlashOptions) => send(h, slash(h, text, options));

const deploymentIdIn = (answer: Answer) => /`(01JNSLACK\d{17})`/.exec(answer.text)?.[1] ?? '';

/** Every log line's arguments, captured as the logger is called (the real logger still runs). */
function captureLogs() {
  const spies = (['debug', 'info', 'warn', 'error', 'critical'] as const).map((level) =>
    vi.spyOn(logger, level),
  );
  return () => JSON.stringify(spies.flatMap((spy) => spy.mock.calls));
}

// The signature is the route's authentication ----------------------------------------------------------

describe('POST /slack/commands: signature', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });

  it("accepts Slack's documented request (base64-encoded by API Gateway) at its own time", async () => {
    const documented = await harness();
    const commands = createSlackCommands({
      ...documented.notifier,
      workflow: documented.workflow,
      registry,
      newId: () => 'X',
      clock: { now: () => new Date(1531420618 * 1000) },
      signingSecret: async () => '8f742231b10e8888abcd99yyyzzz85a5',
    });
    const response = await commands(fixture('slash-command.json'));
    const message = expectValidResponse('POST', '/slack/commands', response) as SlackMessage;
    expect(response.statusCode).toBe(200);
    expect(message.response_type).toBe('ephemeral');
    expect(JSON.stringify(message)).toContain('/deploy help');
  });

  it('reads a body that is not base64-encoded the same way', async () => {
    expect((await command(h, 'help', { base64: false })).status).toBe(200);
  });

  it.each([
    ['the wrong secret', (e: APIGatewayProxyEventV2) => e, { secret: 'not-the-secret' }],
    [
      'a stale timestamp',
      (e: APIGatewayProxyEventV2) => e,
      { timestamp: String(Date.parse(START) / 1000 - 301) },
    ],
    [
      'no signature header',
      (e: APIGatewayProxyEventV2) => {
        delete e.headers['x-slack-signature'];
        return e;
      },
      {},
    ],
    [
      'a body changed after signing',
      (e: APIGatewayProxyEventV2) => ({
        ...e,
        body: Buffer.from(`${Buffer.from(e.body ?? '', 'base64').toString()}&text=hotfix+prod`).toString(
          'base64',
        ),
      }),
      {},
    ],
    [
      'the base64 text taken as the body',
      (e: APIGatewayProxyEventV2) => ({ ...e, isBase64Encoded: false }),
      {},
    ],
  ])(
    'answers 401 for %s, starts nothing and audits the attempt without the body',
    async (_what, tamper, options) => {
      const logs = captureLogs();
      const event = tamper(slash(h, 'hello-world staging main -- secret-marker', options));
      const response = await h.commands(event);
      const problem = expectValidResponse('POST', '/slack/commands', response) as Record<string, unknown>;
      expect(response.statusCode).toBe(401);
      expect(problem.code).toBe('UNAUTHENTICATED');
      expect(h.workflow.starts).toEqual([]);
      expect(await h.scanTable()).toEqual([]);
      expect(logger.warn).toHaveBeenCalledWith(
        'slack request refused',
        expect.objectContaining({
          audit: 'refused',
          code: 'UNAUTHENTICATED',
          status: 401,
          sourceIp: '54.209.32.10',
        }),
      );
      expect(logs()).not.toContain('secret-marker');
      expect(logs()).not.toContain(URL_TOKEN);
    },
  );

  it('answers 413 for a body far larger than any slash command, before computing anything', async () => {
    const response = await h.commands(slash(h, `hello-world staging -- ${'x'.repeat(20_000)}`));
    expectValidResponse('POST', '/slack/commands', response);
    expect(response.statusCode).toBe(413);
  });
});

// Commands ---------------------------------------------------------------------------------------------

describe('POST /slack/commands: deploy', () => {
  let h: Harness;
  let slack: ResponseUrlServer;
  beforeEach(async () => {
    h = await harness();
    slack = new ResponseUrlServer();
    await slack.start();
  });
  afterEach(() => slack.stop());

  it('accepts a deployment: ephemeral acknowledgement, chat trigger, typed slack requester, workflow started', async () => {
    const answer = await command(h, 'hello-world staging release/1.2 -- "fix the login bug"', {
      responseUrl: slack.url,
    });
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    const id = deploymentIdIn(answer);
    expect(answer.text).toContain('accepted');
    expect(answer.text).toContain(`/deploy status ${id}`);
    expect(answer.text).toContain(links.status(id));

    const requester: Requester = { type: 'slack', teamId: TEAM, userId: USER, userName: 'roadrunner' };
    expect(h.workflow.starts).toEqual([
      {
        deploymentId: id,
        input: {
          deploymentId: id,
          application: 'hello-world',
          environment: 'staging',
          ref: 'release/1.2',
          reason: 'fix the login bug',
          dryRun: false,
          requester,
          trigger: 'chat',
          requestedAt: START,
        },
      },
    ]);
    expect(await h.store.getDeployment(id)).toMatchObject({ status: 'QUEUED', trigger: 'chat', requester });
    // The requester reaches the target account's CloudTrail as SourceIdentity.
    expect(sourceIdentity(requester)).toMatch(/^slack-roadrunner-[0-9a-f]{8}$/);
    expect(await h.chat.getReply(id)).toMatchObject({ responseUrl: slack.url, teamId: TEAM, stage: 0 });
  });

  it("uses the application's default ref", async () => {
    await command(h, 'hello-world staging');
    expect(h.workflow.starts[0]?.input).toMatchObject({ ref: 'main' });
  });

  it('refuses, with nothing started, a user the registry does not allow (recorded REJECTED)', async () => {
    const answer = await command(h, 'hello-world prod main', { user: 'U0STRANGER' });
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).toContain('FORBIDDEN');
    expect(h.workflow.starts).toEqual([]);
    const [record] = (await h.store.listHistory('hello-world', 'prod', { limit: 5 })).items;
    expect(record).toMatchObject({ status: 'REJECTED', errorCode: 'FORBIDDEN', trigger: 'chat' });
    expect(await h.chat.getReply(record?.deploymentId ?? '')).toBeUndefined();
  });

  it('lets the named user deploy to prod', async () => {
    await command(h, 'hello-world prod main');
    expect(h.workflow.starts).toHaveLength(1);
  });

  it.each([
    ['another workspace', 'hello-world staging', { team: 'T0OTHERTEAM' }],
    ['an environment not open to chat', 'hello-world internal', {}],
  ])('refuses %s', async (_what, text, options) => {
    const answer = await command(h, text, options);
    expect(answer.text).toContain('FORBIDDEN');
    expect(h.workflow.starts).toEqual([]);
  });

  it('refuses a hostile ref by validation (recorded as data, nothing started)', async () => {
    const answer = await command(h, 'hello-world prod main;rm');
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('INVALID_REF');
    expect(h.workflow.starts).toEqual([]);
    const [record] = (await h.store.listHistory('hello-world', 'prod', { limit: 5 })).items;
    expect(record).toMatchObject({ status: 'REJECTED', ref: 'main;rm' });
  });

  it('refuses `/deploy app prod main;rm -rf /` with nothing started or recorded', async () => {
    const answer = await command(h, 'hello-world prod main;rm -rf /');
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).toContain('a reason goes after');
    expect(h.workflow.starts).toEqual([]);
    expect(await h.scanTable()).toEqual([]);
  });

  it.each([
    ['an unknown application', 'no-such-app staging', 'UNKNOWN_APPLICATION'],
    ['an unknown environment', 'hello-world nowhere', 'UNKNOWN_ENVIRONMENT'],
    ['a reason with control characters', 'hello-world staging -- a\u001b[31mred', 'INVALID_REASON'],
  ])('answers %s with an ephemeral error', async (_what, text, code) => {
    const answer = await command(h, text);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain(code);
    expect(h.workflow.starts).toEqual([]);
  });

  it.each([
    ['an unknown application', 'no-such-app staging', 'UNKNOWN_APPLICATION'],
    ['an unknown environment', 'hello-world nowhere', 'UNKNOWN_ENVIRONMENT'],
  ])('writes no record for %s (nobody could read it), only an audit line', async (_what, text, code) => {
    const logs = captureLogs();
    const answer = await command(h, text);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).not.toMatch(/`01JNSLACK/);
    // Only the replay claim that makes Slack's own retries answer alike; no deployment, no event.
    const items = await h.scanTable();
    expect(items.filter((item) => !String(item.PK).startsWith('SLACKREQ#'))).toEqual([]);
    expect(logs()).toContain(`"audit":"refused","code":"${code}"`);
  });

  it('refuses while a reject-mode environment is busy, and keeps no response_url', async () => {
    await h.store.acquireLock({
      application: 'hello-world',
      environment: 'hotfix',
      owner: 'OTHER',
      acquiredAt: START,
      leaseExpiresAt: '2026-03-01T13:00:00.000Z',
    });
    const answer = await command(h, 'hello-world hotfix', { responseUrl: slack.url });
    expect(answer.text).toContain('ENVIRONMENT_BUSY');
    expect(h.workflow.starts).toEqual([]);
    expect(JSON.stringify(await h.scanTable())).not.toContain(URL_TOKEN);
  });

  it('does not keep a response_url that is not Slack’s (progress is then not posted)', async () => {
    const strict = createSlackCommands({
      ...h.notifier,
      workflow: h.workflow,
      registry,
      newId: () => '01JNSLACK00000000000000099',
      signingSecret: async () => SECRET,
    });
    const response = await strict(slash(h, 'hello-world staging', { responseUrl: slack.url }));
    expect(response.statusCode).toBe(200);
    expect(h.workflow.starts).toHaveLength(1);
    expect(await h.chat.getReply('01JNSLACK00000000000000099')).toBeUndefined();
  });

  it('answers a replay of the same signed request with the original deployment and starts nothing new', async () => {
    const event = slash(h, 'hello-world staging main', { responseUrl: slack.url });
    const first = await send(h, structuredClone(event));
    const id = deploymentIdIn(first);
    await h.store.updateDeployment(id, { status: 'RUNNING', phase: 'BUILDING' });
    h.clock.set('2026-03-01T12:02:00.000Z');
    const again = await send(h, structuredClone(event));
    expect(again.status).toBe(200);
    expect(deploymentIdIn(again)).toBe(id);
    expect(again.text).toContain('Already received');
    expect(h.workflow.starts).toHaveLength(1);
    expect((await h.store.listHistory('hello-world', 'staging', { limit: 5 })).items).toHaveLength(1);
  });

  it('answers a replay of a refused request with the same refusal, recorded once', async () => {
    const event = slash(h, 'hello-world prod main', { user: 'U0STRANGER' });
    const first = await send(h, structuredClone(event));
    const again = await send(h, structuredClone(event));
    expect(again.text).toContain('FORBIDDEN');
    expect(deploymentIdIn(again)).toBe(deploymentIdIn(first));
    expect((await h.store.listHistory('hello-world', 'prod', { limit: 5 })).items).toHaveLength(1);
  });

  it('treats the same words signed at another time as a new request', async () => {
    await command(h, 'hello-world staging');
    h.clock.set('2026-03-01T12:00:01.000Z');
    await command(h, 'hello-world staging');
    expect(h.workflow.starts).toHaveLength(2);
  });

  it('records a failed start as FAILED, says so, and drops the response_url', async () => {
    const denied = await harness({
      workflow: {
        start: async () => {
          throw Object.assign(new Error('not authorized on arn:aws:states:x'), {
            name: 'AccessDeniedException',
          });
        },
      },
    });
    vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const answer = await send(denied, slash(denied, 'hello-world staging', { responseUrl: slack.url }));
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('EXECUTION_FAILED');
    expect(answer.text).not.toContain('arn:');
    const id = /`(01JNSLACK\d{17})`/.exec(answer.text)?.[1] ?? '';
    expect(await denied.store.getDeployment(id)).toMatchObject({ status: 'FAILED' });
    expect(await denied.chat.getReply(id)).toBeUndefined();
  });

  it('answers 200 with a generic ephemeral error when the store fails', async () => {
    const broken = await harness();
    const failing = new Proxy(broken.store, {
      get: (target, property) =>
        property === 'createDeployment'
          ? async () => {
              throw new Error('ProvisionedThroughputExceeded on arn:aws:dynamodb:eu-west-1:1:table/t');
            }
          : Reflect.get(target, property),
    });
    const h2 = await harness({ store: failing });
    vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const answer = await command(h2, 'hello-world staging');
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).toContain('Something went wrong');
    expect(answer.text).not.toMatch(/arn:|Provisioned/);
  });

  it('answers 200 with an ephemeral error for a signed request without a team or user', async () => {
    const answer = await command(h, 'help', { team: '' });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('could not be read');
  });
});

describe('POST /slack/commands: promote and rollback', () => {
  let h: Harness;
  let slack: ResponseUrlServer;
  beforeEach(async () => {
    h = await harness();
    slack = new ResponseUrlServer();
    await slack.start();
  });
  afterEach(() => slack.stop());

  /** A finished, successful deployment with a recorded build output, numbered as the workflow numbers it. */
  async function succeeded(environment: string, n: number) {
    const deploymentId = `01JNDONE${String(n).padStart(18, '0')}`;
    await h.store.createDeployment(
      newDeployment({
        deploymentId,
        application: 'hello-world',
        environment,
        ref: 'main',
        requester: { type: 'local', user: 'alice' },
        trigger: 'local',
        requestedAt: START,
      }),
    );
    const buildOutput = {
      bucket: 'b',
      key: `builds/${n}.zip`,
      versionId: `v-${n}`,
      sha256: String(n).repeat(64),
      resolvedCommit: String(n).repeat(40),
    };
    const deployment = await h.store.updateDeployment(deploymentId, { buildOutput, status: 'RUNNING' });
    const release = await assignRelease(h.store, deployment!, START);
    await finish(h.store, h.clock, deploymentId, 'SUCCEEDED', { release });
    return { deploymentId, release };
  }

  const requester: Requester = { type: 'slack', teamId: TEAM, userId: USER, userName: 'roadrunner' };

  it("accepts a promotion of staging's last successful build: acknowledged, recorded, workflow started", async () => {
    await succeeded('staging', 1);
    const latest = await succeeded('staging', 2);
    const answer = await command(h, 'promote hello-world staging prod -- weekly release', {
      responseUrl: slack.url,
    });
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    const id = deploymentIdIn(answer);
    expect(answer.text).toContain(`Promotion \`${id}\` of *hello-world → prod* accepted`);
    expect(answer.text).toContain('*Promotion*\\nfrom `staging` (release 2)');
    expect(answer.text).toContain('without a new build');

    expect(h.workflow.starts).toEqual([
      {
        deploymentId: id,
        input: {
          deploymentId: id,
          application: 'hello-world',
          environment: 'prod',
          reason: 'weekly release',
          dryRun: false,
          promoteFrom: 'staging',
          buildOutputFrom: latest.deploymentId,
          requester,
          trigger: 'chat',
          requestedAt: START,
        },
      },
    ]);
    expect(await h.store.getDeployment(id)).toMatchObject({
      status: 'QUEUED',
      kind: 'promotion',
      trigger: 'chat',
      requester,
      source: { deploymentId: latest.deploymentId, environment: 'staging', release: 2 },
    });
    expect(await h.chat.getReply(id)).toMatchObject({ responseUrl: slack.url, stage: 0 });
  });

  it('accepts a rollback to release N: the workflow told which build output, recorded as a rollback of N', async () => {
    const one = await succeeded('staging', 1);
    await succeeded('staging', 2);
    const answer = await command(h, 'rollback hello-world staging 1 -- "login broken in 2"');
    const id = deploymentIdIn(answer);
    expect(answer.text).toContain(`Rollback \`${id}\` of *hello-world → staging* accepted`);
    expect(h.workflow.starts[0]?.input).toMatchObject({
      environment: 'staging',
      reason: 'login broken in 2',
      rollbackRelease: 1,
      buildOutputFrom: one.deploymentId,
      trigger: 'chat',
    });
    expect(await h.store.getDeployment(id)).toMatchObject({ kind: 'rollback', rollbackOf: 1, requester });
  });

  it('refuses a promotion path the registry does not list: a readable ephemeral error and a REJECTED record', async () => {
    await succeeded('prod', 1);
    const answer = await command(h, 'promote hello-world prod staging', { responseUrl: slack.url });
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.message.text).toBe(':warning: Refused: staging accepts no promotions');
    const id = deploymentIdIn(answer);
    expect(answer.text).toContain(`PROMOTION_NOT_ALLOWED (recorded as REJECTED deployment \`${id}\`)`);
    expect(h.workflow.starts).toEqual([]);
    // Filed under the environment the promotion was aimed at.
    expect(await h.store.getDeployment(id)).toMatchObject({
      application: 'hello-world',
      environment: 'staging',
      status: 'REJECTED',
      errorCode: 'PROMOTION_NOT_ALLOWED',
      trigger: 'chat',
      requester,
    });
    expect(await h.chat.getReply(id)).toBeUndefined();
  });

  it.each([
    ['nothing to promote', 'promote hello-world staging prod', 'NOTHING_TO_PROMOTE', 'prod'],
    ['an unknown release', 'rollback hello-world staging 7', 'UNKNOWN_RELEASE', 'staging'],
    ['a user the target does not allow', 'promote hello-world staging prod', 'FORBIDDEN', 'prod'],
  ])('refuses %s with its code, recorded as REJECTED', async (what, text, code, environment) => {
    if (what !== 'nothing to promote') await succeeded('staging', 1);
    const options = code === 'FORBIDDEN' ? { user: 'U0STRANGER' } : {};
    const answer = await command(h, text, options);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).toContain(code);
    expect(h.workflow.starts).toEqual([]);
    expect(await h.store.getDeployment(deploymentIdIn(answer))).toMatchObject({
      environment,
      status: 'REJECTED',
      errorCode: code,
    });
  });

  it.each([
    ['a release that is not a number', 'rollback hello-world prod latest', 'is not a release number'],
    ['release 0', 'rollback hello-world prod 0', 'is not a release number'],
    ['a rollback without a release', 'rollback hello-world prod', 'usage: `/deploy rollback'],
    ['a promotion without a target', 'promote hello-world staging', 'usage: `/deploy promote'],
    [
      'a promotion with a reason but no --',
      'promote hello-world staging prod go now',
      'usage: `/deploy promote',
    ],
  ])('answers %s with the usage, recording and starting nothing', async (_what, text, message) => {
    const answer = await command(h, text);
    expect(answer.status).toBe(200);
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).toContain(message);
    expect(h.workflow.starts).toEqual([]);
    expect(await h.scanTable()).toEqual([]);
  });

  it('answers a replay of the same signed promotion with the original and starts nothing new', async () => {
    await succeeded('staging', 1);
    const event = slash(h, 'promote hello-world staging prod', { responseUrl: slack.url });
    const first = await send(h, structuredClone(event));
    const id = deploymentIdIn(first);
    await h.store.updateDeployment(id, { status: 'RUNNING', phase: 'DEPLOYING' });
    const again = await send(h, structuredClone(event));
    expect(deploymentIdIn(again)).toBe(id);
    expect(again.text).toContain('Already received: promotion');
    expect(h.workflow.starts).toHaveLength(1);
  });

  it('shows kind, source and release in status and history', async () => {
    await succeeded('staging', 1);
    const promotion = deploymentIdIn(await command(h, 'promote hello-world staging prod'));
    await h.store.updateDeployment(promotion, { status: 'RUNNING', freezeOverride: true });
    await finish(h.store, h.clock, promotion, 'SUCCEEDED', { release: 1 });
    const status = await command(h, `status ${promotion}`);
    expect(status.text).toContain('*Promotion*\\nfrom `staging` (release 1)');
    expect(status.text).toContain('*Release*\\n1');
    expect(status.text).toContain('*Freeze*\\noverridden by an approver');
    const history = await command(h, 'history hello-world prod');
    expect(history.text).toContain(`\`${promotion}\` SUCCEEDED release 1`);
    expect(history.text).toContain('· promotion from `staging` (release 1) · freeze overridden');
  });
});

describe('POST /slack/commands: other commands', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });

  it('help lists the commands', async () => {
    const answer = await command(h, 'help');
    expect(answer.message.response_type).toBe('ephemeral');
    expect(answer.text).toContain('/deploy history');
    expect(answer.text).toContain('/deploy promote <app> <from> <to> [-- reason]');
    expect(answer.text).toContain('/deploy rollback <app> <env> <release> [-- reason]');
  });

  it('answers junk with the usage, recording nothing', async () => {
    const answer = await command(h, 'status');
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('usage');
    expect(await h.scanTable()).toEqual([]);
  });

  it('status shows a deployment the workspace may see, with its status and links', async () => {
    const id = deploymentIdIn(await command(h, 'hello-world staging v1 -- <!channel> ping'));
    const answer = await command(h, `status ${id}`);
    expect(answer.text).toContain('QUEUED');
    expect(answer.text).toContain(links.status(id));
    // What a person typed is shown, never interpreted.
    expect(answer.text).toContain('&lt;!channel&gt; ping');
    expect(answer.text).not.toContain('<!channel>');
  });

  it('status shows whom a waiting deployment waits behind now, and not once it holds the lock', async () => {
    const holder = deploymentIdIn(await command(h, 'hello-world staging'));
    const waiting = deploymentIdIn(await command(h, 'hello-world staging v2'));
    await h.store.updateDeployment(waiting, {
      status: 'RUNNING',
      phase: 'WAITING_FOR_LOCK',
      waitStartedAt: START,
      waitingBehind: { deploymentId: holder, reason: 'HOLDS_LOCK' },
    });
    expect((await command(h, `status ${waiting}`)).text).toContain(
      `RUNNING (WAITING_FOR_LOCK), behind \`${holder}\` (deploying now)`,
    );
    // The queue moved: the lock step rewrote whom it waits behind.
    await h.store.updateDeployment(waiting, {
      waitingBehind: { deploymentId: '01JEARLIERREQUEST000000000', reason: 'EARLIER_REQUEST' },
    });
    const moved = (await command(h, `status ${waiting}`)).text;
    expect(moved).toContain('behind `01JEARLIERREQUEST000000000` (requested earlier, goes first)');
    expect(moved).not.toContain(holder);
    await h.store.updateDeployment(waiting, { phase: 'DEPLOYING' });
    expect((await command(h, `status ${waiting}`)).text).not.toContain('behind');
  });

  it('status of a deployment in another workspace reads like an unknown id', async () => {
    const id = deploymentIdIn(await command(h, 'hello-world staging'));
    const other = await command(h, `status ${id}`, { team: 'T0OTHERTEAM' });
    const unknown = await command(h, 'status 01JNNOSUCHDEPLOYMENT00000');
    expect(other.text).toContain('that you can see');
    expect(unknown.text).toContain('that you can see');
  });

  it('history lists the newest deployments first', async () => {
    const first = deploymentIdIn(await command(h, 'hello-world staging'));
    h.clock.set('2026-03-01T12:01:00.000Z');
    const second = deploymentIdIn(await command(h, 'hello-world staging v2'));
    const answer = await command(h, 'history hello-world staging');
    expect(answer.text.indexOf(second)).toBeGreaterThan(-1);
    expect(answer.text.indexOf(second)).toBeLessThan(answer.text.indexOf(first));
    expect((await command(h, 'history hello-world staging', { team: 'T0OTHERTEAM' })).text).toContain(
      'that you can see',
    );
  });

  it("status and history follow an environment's readers when it lists them", async () => {
    const id = deploymentIdIn(await command(h, 'hello-world hotfix'));
    expect((await command(h, `status ${id}`)).text).toContain('that you can see');
    expect((await command(h, 'history hello-world hotfix')).text).toContain('that you can see');
  });
});

// Progress back to the channel -------------------------------------------------------------------------

class FakeRunner implements Pick<JobRunner, 'describe'> {
  jobs = new Map<string, Partial<JobInfo>>();
  async describe(buildIds: string[]): Promise<JobInfo[]> {
    return buildIds.map((buildId) => ({
      buildId,
      status: 'IN_PROGRESS',
      complete: false,
      exportedVariables: {},
      environmentVariables: {},
      ...this.jobs.get(buildId),
    }));
  }
}

/** Step Functions' "Execution Status Change" for a deployment (the fixture with its name and status set). */
const executionEvent = (deploymentId: string, status: string) => {
  const event = fixture<{ detail: { name: string; status: string } }>('sfn-execution-running.json');
  event.detail.name = deploymentId;
  event.detail.status = status;
  return event as never;
};

/** crossdeploy's own "Deployment Awaiting Approval" for a deployment. */
const awaitingApproval = (deploymentId: string) => {
  const event = fixture<{ detail: { deploymentId: string } }>('awaiting-approval.json');
  event.detail.deploymentId = deploymentId;
  return event as never;
};

describe('progress through response_url', () => {
  let h: Harness;
  let slack: ResponseUrlServer;
  let runner: FakeRunner;
  let handle: ReturnType<typeof createHandler>;
  beforeEach(async () => {
    h = await harness();
    slack = new ResponseUrlServer();
    await slack.start();
    runner = new FakeRunner();
    const deps: SlackDeps = {
      commands: h.commands,
      interactions: async () => {
        throw new Error('the interactions route is tested in slack-interactions.test.ts');
      },
      notifier: { ...h.notifier, runner: runner as unknown as JobRunner },
    };
    handle = createHandler(() => deps);
  });
  afterEach(() => slack.stop());

  const jobStarted = (deploymentId: string, job: 'build' | 'deploy') => {
    const event = fixture<{ detail: { 'build-id': string } }>('codebuild-build-in-progress.json');
    const buildId = `crossdeploy-${job}:${deploymentId}-${job}`;
    event.detail['build-id'] = buildId;
    runner.jobs.set(buildId, { deploymentId, job });
    return event as never;
  };

  async function accepted(): Promise<string> {
    return deploymentIdIn(
      await command(h, 'hello-world staging main -- ship it', { responseUrl: slack.url }),
    );
  }

  it('posts the approval request with its buttons on "Deployment Awaiting Approval": five posts in all, within Slack’s limit', async () => {
    const id = await accepted();
    h.clock.set('2026-03-01T12:00:02.000Z');
    expect(await handle(executionEvent(id, 'RUNNING'))).toEqual({ outcome: 'posted' });
    expect(await handle(jobStarted(id, 'build'))).toEqual({ outcome: 'posted' });
    expect(await handle(jobStarted(id, 'deploy'))).toEqual({ outcome: 'posted' });
    // Before the decision is awaited (or after it was taken) the notice posts nothing.
    expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'skipped' });
    await h.store.updateDeployment(id, {
      phase: 'AWAITING_APPROVAL',
      approval: { mode: 'required', state: 'PENDING', expiresAt: '2026-03-01T13:00:00.000Z' },
      changeSet: '+1 ~0 -0',
    });
    expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'posted' });
    // A redelivered notice posts nothing more.
    expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'skipped' });
    h.clock.set('2026-03-01T12:04:12.000Z');
    await finish(h.store, h.clock, id, 'SUCCEEDED');
    expect(await handle(executionEvent(id, 'SUCCEEDED'))).toEqual({ outcome: 'posted' });
    expect(slack.posts.map((p) => p.text.split(':')[1])).toEqual([
      'rocket',
      'hammer_and_wrench',
      'package',
      'raising_hand',
      'white_check_mark',
    ]);
    const request = slack.posts[3] as SlackMessage;
    expect(request.blocks.some((b) => b.type === 'actions')).toBe(true);
  });

  it('posts acknowledgement, build started, deploy started and the result as Block Kit, then forgets the URL', async () => {
    const logs = captureLogs();
    const id = await accepted();

    h.clock.set('2026-03-01T12:00:02.000Z');
    expect(await handle(executionEvent(id, 'RUNNING'))).toEqual({ outcome: 'posted' });
    await h.store.updateDeployment(id, {
      status: 'RUNNING',
      phase: 'BUILDING',
      jobs: { build: { buildId: 'b', startedAt: START, logUrl: 'https://console.example.com/build/b/log' } },
    });
    expect(await handle(jobStarted(id, 'build'))).toEqual({ outcome: 'posted' });
    await h.store.updateDeployment(id, {
      phase: 'DEPLOYING',
      resolvedCommit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      jobs: {
        deploy: { buildId: 'd', startedAt: START, logUrl: 'https://console.example.com/deploy/d/log' },
      },
    });
    expect(await handle(jobStarted(id, 'deploy'))).toEqual({ outcome: 'posted' });
    h.clock.set('2026-03-01T12:04:12.000Z');
    await finish(h.store, h.clock, id, 'SUCCEEDED');
    expect(await handle(executionEvent(id, 'SUCCEEDED'))).toEqual({ outcome: 'posted' });

    expect(slack.posts.map((p) => p.text)).toEqual([
      ':rocket: Deployment requested: hello-world → staging (QUEUED)',
      ':hammer_and_wrench: Build started: hello-world → staging (RUNNING)',
      ':package: Deploy started: hello-world → staging (RUNNING)',
      ':white_check_mark: Succeeded: hello-world → staging (SUCCEEDED)',
    ]);
    for (const post of slack.posts) {
      expect(post).toMatchObject({ response_type: 'in_channel', replace_original: false });
      expect(post.blocks.length).toBeLessThanOrEqual(50);
      expect(post.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    }
    const final = JSON.stringify(slack.posts[3]);
    for (const expected of [
      '*Application*\\n`hello-world`',
      '*Environment*\\n`staging`',
      '*Commit*\\n`a1b2c3d4e5f6`',
      `*Requester*\\n<@${USER}>`,
      '*Status*\\n:white_check_mark: SUCCEEDED',
      '*Duration*\\n4m 12s',
      '*Reason*\\nship it',
      '<https://console.example.com/deploy/d/log|Logs>',
    ]) {
      expect(final).toContain(expected);
    }

    // The URL lived only on its own item, and that is gone now; the item stays a while as "finished".
    expect(await h.chat.getReply(id)).toMatchObject({ stage: 5, keepUntil: '2026-03-01T12:34:12.000Z' });
    expect(await h.chat.getReply(id)).not.toHaveProperty('responseUrl');
    expect(JSON.stringify(await h.scanTable())).not.toContain(URL_TOKEN);
    // A redelivered final event posts nothing more; the sweep deletes the item when its time is up.
    expect(await handle(executionEvent(id, 'SUCCEEDED'))).toEqual({ outcome: 'skipped' });
    expect(slack.posts).toHaveLength(4);
    h.clock.set('2026-03-01T12:34:13.000Z');
    expect(await handle(fixture('scheduled-sweep.json'))).toEqual({ deleted: 1, kept: 0 });
    expect(await h.chat.getReply(id)).toBeUndefined();
    expect(JSON.stringify(await h.store.listEvents(id))).not.toContain(URL_TOKEN);
    expect(logs()).not.toContain(URL_TOKEN);
    expect(logs()).toContain('chat progress');
  });

  it('keeps the URL out of every log line and stored item while the deployment runs', async () => {
    const logs = captureLogs();
    const id = await accepted();
    await handle(executionEvent(id, 'RUNNING'));
    const items = await h.scanTable();
    const holding = items.filter((item) => JSON.stringify(item).includes(URL_TOKEN));
    expect(holding.map((item) => item.PK)).toEqual([`CHAT#${id}`]);
    expect(JSON.stringify(await h.store.getDeployment(id))).not.toContain(URL_TOKEN);
    expect(JSON.stringify(h.workflow.starts)).not.toContain(URL_TOKEN);
    expect(logs()).not.toContain(URL_TOKEN);
  });

  it('posts each milestone once, in order, however events are redelivered or reordered', async () => {
    const id = await accepted();
    await handle(executionEvent(id, 'RUNNING'));
    expect(await handle(executionEvent(id, 'RUNNING'))).toEqual({ outcome: 'skipped' });
    await handle(jobStarted(id, 'deploy'));
    expect(await handle(jobStarted(id, 'build'))).toEqual({ outcome: 'skipped' });
    expect(slack.posts.map((p) => p.text.split(':')[1])).toEqual(['rocket', 'package']);
  });

  it('reports a failure with its code and message', async () => {
    const id = await accepted();
    await finish(h.store, h.clock, id, 'FAILED', {
      errorCode: 'DEPLOY_FAILED',
      errorMessage: 'the deploy job ended FAILED',
    });
    await handle(executionEvent(id, 'FAILED'));
    const [post] = slack.posts;
    expect(post?.text).toContain(':x: Failed');
    expect(JSON.stringify(post)).toContain('*DEPLOY_FAILED*: the deploy job ended FAILED');
  });

  it('says so when the workflow ended before the record (an aborted execution still settling)', async () => {
    const id = await accepted();
    await handle(executionEvent(id, 'ABORTED'));
    expect(slack.posts[0]?.text).toContain('Workflow ended ABORTED');
    expect(await h.chat.getReply(id)).not.toHaveProperty('responseUrl');
  });

  it('does nothing for a deployment that did not come from chat', async () => {
    expect(await handle(executionEvent('01JNAPIDEPLOYMENT000000001', 'RUNNING'))).toEqual({
      outcome: 'not-chat',
    });
    expect(await handle(jobStarted('01JNAPIDEPLOYMENT000000001', 'build'))).toEqual({ outcome: 'not-chat' });
    expect(slack.posts).toEqual([]);
  });

  it('stops posting once the URL expired, and the schedule deletes expired URLs', async () => {
    const id = await accepted();
    const other = deploymentIdIn(await command(h, 'hello-world staging v2', { responseUrl: slack.url }));
    h.clock.set('2026-03-01T12:30:00.000Z');
    expect(await handle(executionEvent(id, 'SUCCEEDED'))).toEqual({ outcome: 'expired' });
    expect(await h.chat.getReply(id)).not.toHaveProperty('responseUrl');
    expect(await handle(fixture('scheduled-sweep.json'))).toEqual({ deleted: 1, kept: 0 });
    expect(await h.chat.getReply(other)).toBeUndefined();
    expect(slack.posts).toEqual([]);
  });

  it('never fails, whatever Slack or the store does', async () => {
    const id = await accepted();
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const unreachable: NotifierDeps = {
      ...h.notifier,
      poster: new FetchResponsePoster({ timeoutMs: 100, attempts: 2, sleep: async () => undefined }),
    };
    await h.chat.deleteReply(id);
    await h.chat.putReply({
      deploymentId: id,
      responseUrl: 'http://127.0.0.1:1/commands/gone',
      teamId: TEAM,
      userId: USER,
      createdAt: START,
      expiresAt: '2026-03-01T12:29:00.000Z',
      stage: 0,
      posts: 0,
    });
    expect(await notifyMilestone(id, 'ack', unreachable)).toBe('post-failed');
    const broken: NotifierDeps = {
      ...h.notifier,
      chat: { ...h.chat, getReply: async () => Promise.reject(new Error('throttled')) } as never,
    };
    expect(await notifyMilestone(id, 'build', broken)).toBe('error');
  });

  it('answers the HTTP route with a generic 500 when the signing secret cannot be read', async () => {
    const failing = createHandler(() => ({
      interactions: async () => {
        throw new Error('not this route');
      },
      commands: async () => {
        throw new Error('AccessDeniedException on arn:aws:secretsmanager:x');
      },
      notifier: { ...h.notifier, runner: runner as unknown as JobRunner },
    }));
    vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const response = (await failing(slash(h, 'help'))) as APIGatewayProxyStructuredResultV2;
    expectValidResponse('POST', '/slack/commands', response);
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('arn:');
  });
});

describe('local mode: milestones from the audit events the cores record', () => {
  it('tells the notifier once per newly written milestone event, detached from the core', async () => {
    const { store } = await createTestStore();
    const seen: string[] = [];
    const observed = notifyingStore(store, async (id, milestone) => {
      seen.push(`${id}:${milestone}`);
      throw new Error('the notifier failing never reaches the core');
    });
    const clock = { now: () => new Date(START) };
    await recordEvent(observed, clock, 'D1', 'REQUESTED');
    await recordEvent(observed, clock, 'D1', 'VALIDATED');
    await recordEvent(observed, clock, 'D1', 'VALIDATED');
    await recordEvent(observed, clock, 'D1', 'BUILD_STARTED', { buildId: 'b' });
    await recordEvent(observed, clock, 'D1', 'DEPLOY_STARTED', { buildId: 'd' });
    await recordEvent(observed, clock, 'D1', 'SUCCEEDED');
    expect(seen).toEqual(['D1:ack', 'D1:build', 'D1:deploy', 'D1:final']);
    expect(await observed.listEvents('D1')).toHaveLength(5);
  });
});

// Past the response_url: the bot ----------------------------------------------------------------------

/** Made up; shaped like a bot token so the poster takes it. It must never show up outside the poster. */
const BOT_TOKEN = 'xoxb-0000000000-0000000000-BoTtOkEnSeCrEt42abcdefgh';

interface ApiCall {
  path: string;
  authorization: string | undefined;
  body: { channel?: string; text?: string; blocks?: Record<string, unknown>[] };
}

/** A stand-in for Slack's Web API on 127.0.0.1: records each call and answers as the test scripts it. */
class SlackApiServer {
  readonly calls: ApiCall[] = [];
  answer: () => { status: number; body: unknown } = () => ({
    status: 200,
    body: { ok: true, channel: 'C0DEPLOYS1', ts: '1772366400.000100' },
  });
  base = '';
  private server: Server | undefined;
  async start() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.calls.push({
          path: req.url ?? '',
          authorization: req.headers.authorization,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        const { status, body } = this.answer();
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/`;
  }
  async stop() {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

describe('progress past the response_url: the bot token', () => {
  let h: Harness;
  let slack: ResponseUrlServer;
  let api: SlackApiServer;
  let token: string;
  /** How often the poster read the token: only the paths past a URL's expiry may. */
  let tokenReads: number;
  let handle: ReturnType<typeof createHandler>;
  beforeEach(async () => {
    h = await harness();
    slack = new ResponseUrlServer();
    api = new SlackApiServer();
    await Promise.all([slack.start(), api.start()]);
    token = BOT_TOKEN;
    tokenReads = 0;
    h.notifier.bot = new FetchBotPoster({
      token: async () => {
        tokenReads++;
        return token;
      },
      apiBase: api.base,
      timeoutMs: 2_000,
      sleep: async () => undefined,
    });
    const deps: SlackDeps = {
      commands: h.commands,
      interactions: async () => {
        throw new Error('the interactions route is tested in slack-interactions.test.ts');
      },
      notifier: { ...h.notifier, runner: new FakeRunner() as unknown as JobRunner },
    };
    handle = createHandler(() => deps);
  });
  afterEach(() => Promise.all([slack.stop(), api.stop()]));

  const sweep = () => handle(fixture('scheduled-sweep.json'));
  // Different words each time: the same signed words would be a replay of the first.
  const accepted = async (reason = 'ship it') =>
    deploymentIdIn(await command(h, `hello-world staging main -- ${reason}`, { responseUrl: slack.url }));
  const awaitDecision = (id: string) =>
    h.store.updateDeployment(id, {
      status: 'RUNNING',
      phase: 'AWAITING_APPROVAL',
      approval: { mode: 'required', state: 'PENDING', expiresAt: '2026-03-01T14:00:00.000Z' },
      changeSet: '+1 ~0 -0',
    });

  it("posts the approval request and the result to the command's channel as the bot once the URL expired; the token shows up nowhere", async () => {
    const logs = captureLogs();
    const id = await accepted();
    h.clock.set('2026-03-01T12:00:02.000Z');
    expect(await handle(executionEvent(id, 'RUNNING'))).toEqual({ outcome: 'posted' });
    expect(slack.posts).toHaveLength(1);
    // While the URL is live the secret is not read at all.
    expect(tokenReads).toBe(0);

    // The build and change set took 40 minutes: Slack no longer takes the URL.
    h.clock.set('2026-03-01T12:40:00.000Z');
    await awaitDecision(id);
    expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'posted' });
    expect(slack.posts).toHaveLength(1);
    expect(api.calls).toHaveLength(1);
    const [request] = api.calls;
    expect(request?.path).toBe('/api/chat.postMessage');
    expect(request?.authorization).toBe(`Bearer ${BOT_TOKEN}`);
    // The channel is the one of the signed slash command, nothing else.
    expect(request?.body.channel).toBe('C0DEPLOYS1');
    expect(request?.body.text).toContain(':raising_hand:');
    expect(request?.body.blocks?.some((block) => block.type === 'actions')).toBe(true);

    // The sweep keeps the item for the bot, without the expired URL.
    h.clock.set('2026-03-01T12:41:00.000Z');
    expect(await sweep()).toEqual({ deleted: 0, kept: 1 });
    const kept = await h.chat.getReply(id);
    expect(kept?.responseUrl).toBeUndefined();
    expect(kept?.keepUntil).toBe(new Date(Date.parse(START) + BOT_HORIZON_MS).toISOString());
    expect(JSON.stringify(await h.scanTable())).not.toContain(URL_TOKEN);
    // A redelivered notice posts nothing more.
    expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'skipped' });

    // Decided from the CLI an hour later: the result still reaches the channel.
    h.clock.set('2026-03-01T13:45:00.000Z');
    await finish(h.store, h.clock, id, 'SUCCEEDED');
    expect(await handle(executionEvent(id, 'SUCCEEDED'))).toEqual({ outcome: 'posted' });
    expect(api.calls.map((call) => call.body.text?.split(':')[1])).toEqual([
      'raising_hand',
      'white_check_mark',
    ]);
    expect(await h.chat.getReply(id)).toMatchObject({ stage: 5 });

    for (const where of [
      logs(),
      JSON.stringify(await h.scanTable()),
      JSON.stringify(await h.store.getDeployment(id)),
      JSON.stringify(await h.store.listEvents(id)),
      JSON.stringify(api.calls.map((call) => call.body)),
    ]) {
      expect(where).not.toContain(BOT_TOKEN);
      expect(where).not.toContain('BoTtOkEnSeCrEt42');
    }
    expect(logs()).toContain('"via":"bot"');
  });

  it.each([
    ['the template’s placeholder', 'not-configured'],
    ['a user token', 'xoxp-0000000000-0000000000-UsErToKeN42abcdefgh'],
  ])(
    'with %s in place of a bot token, progress past the URL stops and the sweep deletes the item',
    async (_, value) => {
      token = value;
      const id = await accepted();
      const other = await accepted('and this one');
      h.clock.set('2026-03-01T12:40:00.000Z');
      await awaitDecision(id);
      expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'expired' });
      expect(await h.chat.getReply(id)).toBeUndefined();
      expect(await sweep()).toEqual({ deleted: 1, kept: 0 });
      expect(await h.chat.getReply(other)).toBeUndefined();
      expect(api.calls).toEqual([]);
    },
  );

  it('deletes, rather than keeps, the item of a deployment that ended, and a kept item once its horizon passed', async () => {
    const ended = await accepted();
    const running = await accepted('and this one');
    expect(running).not.toBe(ended);
    await finish(h.store, h.clock, ended, 'FAILED', {
      errorCode: 'BUILD_FAILED',
      errorMessage: 'the build failed',
    });
    h.clock.set('2026-03-01T12:40:00.000Z');
    expect(await sweep()).toEqual({ deleted: 1, kept: 1 });
    expect(await h.chat.getReply(ended)).toBeUndefined();
    expect(await h.chat.getReply(running)).toMatchObject({ deploymentId: running });
    // The final event was lost: the item goes at its horizon, and nothing is posted after it.
    h.clock.set(new Date(Date.parse(START) + BOT_HORIZON_MS + 60_000).toISOString());
    expect(await handle(executionEvent(running, 'FAILED'))).toEqual({ outcome: 'expired' });
    expect(await sweep()).toEqual({ deleted: 0, kept: 0 });
    expect(api.calls).toEqual([]);
  });

  it('reports what Slack refused (not_in_channel) by its error name, without retrying or logging the token', async () => {
    const logs = captureLogs();
    api.answer = () => ({ status: 200, body: { ok: false, error: 'not_in_channel' } });
    const id = await accepted();
    h.clock.set('2026-03-01T12:40:00.000Z');
    await awaitDecision(id);
    expect(await handle(awaitingApproval(id))).toEqual({ outcome: 'post-failed' });
    expect(api.calls).toHaveLength(1);
    expect(logs()).toContain('slack:not_in_channel');
    expect(logs()).not.toContain('BoTtOkEnSeCrEt42');
  });

  it('gives nothing up on a bot token secret it cannot read for a moment: the item stays, and the next event posts', async () => {
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const id = await accepted();
    h.clock.set('2026-03-01T12:40:00.000Z');
    await awaitDecision(id);
    let reads = 0;
    const flaky = new FetchBotPoster({
      token: async () => {
        if (++reads === 1) throw Object.assign(new Error('throttled'), { name: 'TransientError' });
        return BOT_TOKEN;
      },
      apiBase: api.base,
      sleep: async () => undefined,
    });
    const deps = { ...h.notifier, bot: flaky };
    expect(await notifyMilestone(id, 'approval', deps)).toBe('error');
    expect(await h.chat.getReply(id)).toMatchObject({ deploymentId: id, stage: 0 });
    expect(await notifyMilestone(id, 'approval', deps)).toBe('posted');
    expect(api.calls).toHaveLength(1);
  });

  it('leaves an item alone in the sweep while the secret cannot be read', async () => {
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const id = await accepted();
    h.clock.set('2026-03-01T12:40:00.000Z');
    const unreadable = new FetchBotPoster({
      token: async () => Promise.reject(Object.assign(new Error('denied'), { name: 'ConfigError' })),
      apiBase: api.base,
    });
    expect(await sweepExpiredReplies({ ...h.notifier, bot: unreadable })).toEqual({ deleted: 0, kept: 0 });
    expect(await h.chat.getReply(id)).toMatchObject({ deploymentId: id });
  });

  it('sends the final result through the bot when the URL expires while it waits for the record to settle', async () => {
    const id = await accepted();
    // 12:28: the URL has a minute left; the record is still RUNNING, and the wait takes the clock past 12:29.
    h.clock.set('2026-03-01T12:28:00.000Z');
    const deps: NotifierDeps = {
      ...h.notifier,
      finalWait: { attempts: 2, delayMs: 0 },
      sleep: async () => {
        h.clock.set('2026-03-01T12:29:30.000Z');
        await finish(h.store, h.clock, id, 'SUCCEEDED');
      },
    };
    expect(await notifyMilestone(id, 'final', deps, { executionStatus: 'SUCCEEDED' })).toBe('posted');
    expect(slack.posts).toEqual([]);
    expect(api.calls.map((call) => call.body.text)).toEqual([expect.stringContaining('Succeeded')]);
  });

  it('outlasts every execution: the horizon is longer than the state machine’s TimeoutSeconds', () => {
    const asl = JSON.parse(
      readFileSync(new URL('../../statemachine/deploy.asl.json', import.meta.url), 'utf8'),
    );
    expect(typeof asl.TimeoutSeconds).toBe('number');
    expect(BOT_HORIZON_MS).toBeGreaterThan(asl.TimeoutSeconds * 1000);
  });
});
