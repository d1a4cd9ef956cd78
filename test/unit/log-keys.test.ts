import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseRegistry } from '#shared/registry/registry.ts';
import type { Requester } from '#shared/types.ts';
import {
  BUILD_SUCCEEDED,
  type LocalMode,
  postEvent,
  startLocalMode,
} from '#test/support/local-orchestrator.ts';
import { showLogs } from '#test/support/logs.ts';
import { createHandler as acquireLock } from '../../functions/acquire-lock/handler.ts';
import { handler as apiHandler } from '../../functions/api/handler.ts';
import { createHandler as assumeTargetRole } from '../../functions/assume-target-role/handler.ts';
import { handler as doctorHandler } from '../../functions/doctor/handler.ts';
import { type BuildStateChange, createHandler as jobEvents } from '../../functions/job-events/handler.ts';
import { createHandler as reconcile } from '../../functions/reconcile/handler.ts';
import { createHandler as recordResult } from '../../functions/record-result/handler.ts';
import { createHandler as releaseLock } from '../../functions/release-lock/handler.ts';
import { createHandler as slack } from '../../functions/slack/handler.ts';
import { createLocalChat } from '../../functions/slack/local.ts';
import { createHandler as startJob } from '../../functions/start-job/handler.ts';
import { createHandler as validateRequest } from '../../functions/validate-request/handler.ts';

/**
 * Correlation keys belong to one invocation. Every handler shares one logger (and in local mode one
 * process, with invocations in flight at the same time), so a key left on the logger would be printed by
 * whatever logs next: a Slack refusal line carried another deployment's id, job and build.
 */

const A = '01JDEPLOYMENTA000000000000';
const BUILD_A = 'arn:aws:codebuild:eu-west-1:123456789012:build/crossdeploy-build:aaaa-build-of-a';
const BUILD_B = 'arn:aws:codebuild:eu-west-1:123456789012:build/crossdeploy-build:bbbb-build-of-b';
/** Every key a handler adds for its invocation. */
const INVOCATION_KEYS = [
  'deploymentId',
  'job',
  'buildId',
  'outcome',
  'reportedStatus',
  'executionStatus',
  'requestId',
  'routeKey',
];

// This file reads the log lines the handlers print.
showLogs();

let lines: string[] = [];
beforeEach(() => {
  lines = [];
  const capture = (chunk: unknown) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  // Powertools writes info and debug to stdout, warnings and errors to stderr.
  vi.spyOn(process.stdout, 'write').mockImplementation(capture as never);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture as never);
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => capture(args.join(' ')));
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The structured line with this message (the last one, if it was logged more than once). */
function logLine(message: string): Record<string, unknown> {
  const found = lines
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    })
    .filter((line) => line.message === message);
  const line = found.at(-1);
  if (!line) throw new Error(`no log line "${message}" in:\n${lines.join('\n')}`);
  return line;
}

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
          allowedRequesters: { local: ['*'] },
        },
      },
    },
  },
});

const SLACK_REFUSED = 'slack request refused: CROSSDEPLOY_SLACK_SIGNING_SECRET is not set';

const slashEvent = (): APIGatewayProxyEventV2 =>
  JSON.parse(readFileSync(new URL('../events/slack/slash-command.json', import.meta.url), 'utf8'));

/** An unrelated request: a slash command to a server without a signing secret, refused and logged. */
async function slackRefusal(): Promise<Record<string, unknown>> {
  const chat = createLocalChat({
    env: {},
    registry,
    clock: { now: () => new Date() },
    newId: () => 'unused',
    baseUrl: () => undefined,
  });
  const serve = chat.serve(async () => ({ statusCode: 204 }), {
    store: {} as never,
    workflow: { start: async () => undefined },
    tokens: {} as never,
  });
  const response = await serve(slashEvent(), { type: 'local', user: 'alice' });
  expect(response.statusCode).toBe(401);
  return logLine(SLACK_REFUSED);
}

function expectNoKeysOf(line: Record<string, unknown>, values: string[]) {
  for (const key of INVOCATION_KEYS) expect(line, `key ${key}`).not.toHaveProperty(key);
  const text = JSON.stringify(line);
  for (const value of values) expect(text).not.toContain(value);
}

const noDeps = (): never => {
  throw new Error('no dependencies in this test');
};

const context = (requestId: string) =>
  ({
    awsRequestId: requestId,
    functionName: 'crossdeploy-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:crossdeploy-test',
    memoryLimitInMB: '256',
    getRemainingTimeInMillis: () => 60_000,
  }) as unknown as Context;

const buildStateChange = (buildId: string): BuildStateChange =>
  ({
    'detail-type': 'CodeBuild Build State Change',
    source: 'aws.codebuild',
    detail: { 'build-id': buildId, 'build-status': 'SUCCEEDED', 'project-name': 'crossdeploy-build' },
  }) as BuildStateChange;

const executionChange = (name: string) => ({
  'detail-type': 'Step Functions Execution Status Change' as const,
  source: 'aws.states',
  detail: {
    executionArn: `arn:aws:states:eu-west-1:123456789012:execution:sm:${name}`,
    stateMachineArn: 'arn',
    name,
    status: 'FAILED',
  },
});

/** One invocation of each handler that adds keys, for deployment A (its work fails: no dependencies here). */
const INVOCATIONS: [string, () => Promise<unknown>, string[]][] = [
  [
    'validate-request',
    () => validateRequest(noDeps)({ deploymentId: A, input: { requester: { type: 'local', user: 'a' } } }),
    [A],
  ],
  ['start-job', () => startJob(noDeps)({ deploymentId: A, job: 'deploy', taskToken: 'token-of-a' }), [A]],
  ['acquire-lock', () => acquireLock(noDeps)({ deploymentId: A }), [A]],
  ['assume-target-role', () => assumeTargetRole(noDeps)({ deploymentId: A }), [A]],
  ['release-lock', () => releaseLock(noDeps)({ deploymentId: A }), [A]],
  ['record-result', () => recordResult(noDeps)({ deploymentId: A, outcome: 'FAILED' } as never), [A]],
  ['job-events', () => jobEvents(noDeps)(buildStateChange(BUILD_A)), [BUILD_A]],
  ['reconcile', () => reconcile(noDeps)(executionChange(A) as never), [A]],
  ['slack (execution event)', () => slack(noDeps)(executionChange(A) as never, context('ctx-a')), [A]],
  ['slack (job event)', () => slack(noDeps)(buildStateChange(BUILD_A) as never, context('ctx-a')), [BUILD_A]],
  [
    'slack (slash command)',
    () =>
      slack(() => ({
        commands: async () => Promise.reject(new Error('down')),
        interactions: async () => Promise.reject(new Error('not this route')),
        notifier: {} as never,
      }))(slashEvent(), context('ctx-a')),
    ['SlAcKrEqId0001='],
  ],
  ['api', () => apiHandler(postEvent({ application: 'x' }) as never, context('ctx-a')), ['Tq0bEgWvjoEEJ8Q=']],
  [
    'doctor',
    () => doctorHandler(postEvent({ application: 'x' }) as never, context('ctx-a')),
    ['Tq0bEgWvjoEEJ8Q='],
  ],
];

describe('log keys end with their invocation', () => {
  it.each(INVOCATIONS)(
    '%s: an unrelated refusal logged next carries none of its keys',
    async (_name, invoke, values) => {
      await invoke().catch(() => undefined);
      expectNoKeysOf(await slackRefusal(), values);
    },
  );

  it('two invocations in flight at once each log their own keys, and a refusal meanwhile none', async () => {
    const gates = new Map<string, () => void>();
    const handler = jobEvents(() => ({
      store: {} as never,
      tokens: {} as never,
      clock: { now: () => new Date() },
      runner: {
        // The job's state is read while the other invocation runs: no info, so the event is ignored.
        describe: ([id]: string[]) => new Promise((resolve) => gates.set(String(id), () => resolve([]))),
      } as never,
    }));
    const first = handler(buildStateChange(BUILD_A));
    const second = handler(buildStateChange(BUILD_B));
    await vi.waitFor(() => expect(gates.size).toBe(2));

    expectNoKeysOf(await slackRefusal(), [BUILD_A, BUILD_B]);

    gates.get(BUILD_A)?.();
    await first;
    expect(logLine('job state change handled')).toMatchObject({ buildId: BUILD_A, outcome: 'ignored' });
    gates.get(BUILD_B)?.();
    await second;
    expect(logLine('job state change handled')).toMatchObject({ buildId: BUILD_B, outcome: 'ignored' });
  });
});

describe('no code keeps keys on the shared logger', () => {
  it('functions/ and local/ add keys only through withLogKeys', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const sources = ['functions', 'local'].flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.ts'))
        .map((file) => join(dir, file)),
    );
    expect(sources.length).toBeGreaterThan(50);
    const offenders = sources.filter((file) =>
      /\.(appendKeys|appendPersistentKeys|addPersistentLogAttributes|setPersistentLogAttributes)\(/.test(
        readFileSync(join(root, file), 'utf8'),
      ),
    );
    expect(offenders).toEqual([]);
  });
});

describe('local mode: the same handlers in one process', () => {
  const alice: Requester = { type: 'local', user: 'alice' };
  let mode: LocalMode | undefined;
  afterEach(async () => {
    await mode?.close();
    mode = undefined;
  });

  it("a Slack refusal after a deployment carries none of that deployment's keys", async () => {
    mode = await startLocalMode(registry, { requester: alice });
    const accepted = await mode.call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'dev', ref: 'main' }),
    );
    const id = String(accepted.deploymentId);
    const done = await mode.settled(id);
    expect(done.status).toBe('SUCCEEDED');
    const jobs = done.jobs as Record<string, { buildId: string }>;

    // Each handler's own line keeps its own key, and only its own (not the last job's build, say).
    const assumed = logLine('target role assumed');
    expect(assumed.deploymentId).toBe(id);
    for (const key of ['job', 'buildId', 'outcome', 'reportedStatus'])
      expect(assumed).not.toHaveProperty(key);

    const response = await mode.orchestrator.api(slashEvent(), alice);
    expect(response.statusCode).toBe(401);
    expectNoKeysOf(logLine(SLACK_REFUSED), [id, String(jobs.build?.buildId), String(jobs.deploy?.buildId)]);
  });

  it('a Slack refusal while a deployment builds carries none of its keys', async () => {
    let release: () => void = () => undefined;
    const building = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    mode = await startLocalMode(registry, {
      requester: alice,
      execute: async (job) => {
        if (job.job !== 'build') return { status: 'SUCCEEDED' };
        started = true;
        await building;
        return BUILD_SUCCEEDED;
      },
    });
    const accepted = await mode.call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'dev', ref: 'main' }),
    );
    const id = String(accepted.deploymentId);
    await vi.waitFor(() => expect(started).toBe(true), { timeout: 10_000 });

    try {
      const response = await mode.orchestrator.api(slashEvent(), alice);
      expect(response.statusCode).toBe(401);
      expectNoKeysOf(logLine(SLACK_REFUSED), [id]);
    } finally {
      release();
    }
    expect((await mode.settled(id)).status).toBe('SUCCEEDED');
  });
});
