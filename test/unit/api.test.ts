import 'aws-sdk-client-mock-vitest/extend';
import { readFileSync } from 'node:fs';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { CloudWatchLogReader } from '#shared/aws/logs.ts';
import { SfnWorkflowStarter } from '#shared/aws/workflow.ts';
import { finish, newDeployment } from '#shared/deployments/record.ts';
import { assignRelease } from '#shared/deployments/releases.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import type { DeploymentStore, LogLine, LogReader, WorkflowStarter } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import { iamRequester } from '#shared/registry/requester.ts';
import type { Deployment, Requester } from '#shared/types.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import { type Api, createApi } from '../../functions/api/routes.ts';
import { validateStep, type WorkflowInput } from '../../functions/validate-request/core.ts';

// Fixtures -------------------------------------------------------------------------------------------

type Event = APIGatewayProxyEventV2WithIAMAuthorizer;

/** Real API Gateway HTTP API (payload 2.0, IAM authorizer) events, parsed afresh so no test sees another's edits. */
const fixture = (name: string): Event =>
  JSON.parse(readFileSync(new URL(`../events/apigw/${name}`, import.meta.url), 'utf8')) as Event;

const ROLE = (account: string, name: string) => `arn:aws:iam::${account}:role/crossdeploy/${name}`;

const registry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
      defaultRef: 'main',
      environments: {
        staging: {
          accountId: '111111111111',
          region: 'eu-west-1',
          deployRoleArn: ROLE('111111111111', 'deploy'),
          executionRoleArn: ROLE('111111111111', 'cfn-exec'),
          stackName: 'hello-world-staging',
          artifactsBucket: 'artifacts-111111111111-eu-west-1',
          allowedRequesters: { iam: ['ci-*'], local: ['alice'] },
          mode: 'reject',
        },
        prod: {
          accountId: '222222222222',
          region: 'eu-west-1',
          deployRoleArn: ROLE('222222222222', 'deploy'),
          externalId: 'prod-external-id-7f3a',
          executionRoleArn: ROLE('222222222222', 'cfn-exec'),
          stackName: 'hello-world-prod',
          artifactsBucket: 'artifacts-222222222222-eu-west-1',
          allowedRequesters: { iam: ['AWSReservedSSO_Release_*'] },
          // Auditors may read prod's deployments, events and logs, and deploy nothing.
          readers: { iam: ['AWSReservedSSO_Release_*', 'Auditor'] },
          promoteFrom: ['staging'],
        },
        // Frozen for the first week of March 2026, which START falls in.
        frozen: {
          accountId: '555555555555',
          region: 'eu-west-1',
          deployRoleArn: ROLE('555555555555', 'deploy'),
          executionRoleArn: ROLE('555555555555', 'cfn-exec'),
          stackName: 'hello-world-frozen',
          artifactsBucket: 'artifacts-555555555555-eu-west-1',
          allowedRequesters: { iam: ['ci-*', 'AWSReservedSSO_Release_*'] },
          approvers: { iam: ['AWSReservedSSO_Release_*'] },
          freezeWindows: [
            { name: 'march-freeze', start: '2026-03-01T00:00:00Z', end: '2026-03-08T00:00:00Z' },
          ],
        },
      },
    },
  },
});

const START = '2026-03-01T12:00:00.000Z';
/** The fixtures' callers are roles of the account the API runs in, as an HTTP API's IAM authorization requires. */
const ORCHESTRATOR = '123456789012';

class RecordingWorkflow implements WorkflowStarter {
  readonly starts: { deploymentId: string; input: unknown }[] = [];
  async start(deploymentId: string, input: unknown) {
    this.starts.push({ deploymentId, input });
  }
}

/** Fails the way Step Functions does when the role may not start it: the message is full of ARNs. */
class DeniedWorkflow implements WorkflowStarter {
  async start(): Promise<void> {
    throw Object.assign(
      new Error(
        'User: arn:aws:sts::123456789012:assumed-role/api-role/fn is not authorized to perform: states:StartExecution on resource: arn:aws:states:eu-west-1:123456789012:stateMachine:x',
      ),
      { name: 'AccessDeniedException', $fault: 'client' },
    );
  }
}

/** An in-memory LogReader with an offset cursor, refusing cursors it did not issue like the real one. */
class MemoryLogs implements LogReader {
  lines: LogLine[] = [];
  async read(_deployment: Deployment, options: { cursor?: string; limit: number }) {
    let offset = 0;
    if (options.cursor !== undefined) {
      const match = /^o(\d+)$/.exec(Buffer.from(options.cursor, 'base64url').toString('utf8'));
      if (!match) throw new RequestRejectedError('BAD_CURSOR', 400, 'not a cursor this reader issued');
      offset = Number(match[1]);
    }
    const items = this.lines.slice(offset, offset + options.limit);
    const next = offset + items.length;
    return next < this.lines.length
      ? { items, nextCursor: Buffer.from(`o${next}`).toString('base64url') }
      : { items };
  }
}

interface Harness {
  api: Api;
  store: DeploymentStore;
  workflow: RecordingWorkflow;
  logs: MemoryLogs;
  clock: { now: () => Date; set: (iso: string) => void };
}

async function harness(
  options: { workflow?: WorkflowStarter; maxBodyBytes?: number } = {},
): Promise<Harness> {
  const { store } = await createTestStore();
  const workflow = new RecordingWorkflow();
  const logs = new MemoryLogs();
  let now = new Date(START);
  const clock = { now: () => new Date(now), set: (iso: string) => (now = new Date(iso)) };
  let n = 0;
  const api = createApi({
    store,
    workflow: options.workflow ?? workflow,
    logs,
    registry,
    clock,
    newId: () => `01JNTEST${String(++n).padStart(18, '0')}`,
    orchestratorAccount: ORCHESTRATOR,
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
  });
  return { api, store, workflow, logs, clock };
}

function post(body: unknown, options: { headers?: Record<string, string>; base64?: boolean } = {}): Event {
  const event = fixture('post-deployments.json');
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  event.body = options.base64 ? Buffer.from(text).toString('base64') : text;
  event.isBase64Encoded = options.base64 === true;
  event.headers = { ...event.headers, 'content-length': String(Buffer.byteLength(text)), ...options.headers };
  return event;
}

/** A GET on `template` (e.g. /deployments/{id}/events), shaped like API Gateway shapes a matched route. */
function get(template: string, params: { id?: string; query?: Record<string, string> } = {}): Event {
  const event = fixture('get-deployment.json');
  const path = params.id === undefined ? template : template.replace('{id}', encodeURIComponent(params.id));
  event.routeKey = `GET ${template}`;
  event.requestContext.routeKey = event.routeKey;
  event.rawPath = path;
  event.requestContext.http.path = path;
  if (params.id === undefined) delete event.pathParameters;
  else event.pathParameters = { id: params.id };
  if (params.query) {
    event.queryStringParameters = params.query;
    event.rawQueryString = new URLSearchParams(params.query).toString();
  }
  return event;
}

const callerOf = (event: Event): Requester => iamRequester(event.requestContext.authorizer.iam.userArn);

/** Calls the API as the Lambda handler does and checks the response against openapi.yaml. */
async function call(h: Harness, method: string, template: string, event: Event, requester = callerOf(event)) {
  const response: APIGatewayProxyStructuredResultV2 = await h.api(event, requester);
  const body = expectValidResponse(method, template, response) as Record<string, unknown>;
  return { status: response.statusCode, headers: response.headers ?? {}, body };
}

const deploy = (h: Harness, body: unknown, options?: Parameters<typeof post>[1], requester?: Requester) =>
  call(h, 'POST', '/deployments', post(body, options), requester);

const staging = { application: 'hello-world', environment: 'staging' };

async function expectRejectedRecord(h: Harness, deploymentId: unknown, code: string) {
  expect(typeof deploymentId).toBe('string');
  const record = await h.store.getDeployment(deploymentId as string);
  expect(record).toMatchObject({ status: 'REJECTED', errorCode: code });
  const events = await h.store.listEvents(deploymentId as string);
  expect(events.map((e) => e.type)).toEqual(['REQUESTED', 'REJECTED']);
  return record as Deployment;
}

async function historyOf(h: Harness, application = 'hello-world', environment = 'staging') {
  return (await h.store.listHistory(application, environment, { limit: 100 })).items;
}

// POST /deployments ----------------------------------------------------------------------------------

describe('freeze windows', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });

  const frozen = { application: 'hello-world', environment: 'frozen', ref: 'main' };
  const releaseManager = iamRequester(
    'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0a1b/rm',
  );

  it('409 ENVIRONMENT_FROZEN inside a window, naming the window and its end: recorded REJECTED, nothing started', async () => {
    const { status, headers, body } = await deploy(h, frozen);
    expect(status).toBe(409);
    expect(headers['content-type']).toBe('application/problem+json');
    expect(body.code).toBe('ENVIRONMENT_FROZEN');
    expect(body.detail).toBe('deployments are frozen by "march-freeze" until 2026-03-08T00:00:00.000Z');
    const record = await expectRejectedRecord(h, body.deploymentId, 'ENVIRONMENT_FROZEN');
    expect(record).toMatchObject({ environment: 'frozen', ref: 'main' });
    expect(record.errorMessage).toContain('"march-freeze" until 2026-03-08T00:00:00.000Z');
    expect(h.workflow.starts).toEqual([]);
  });

  it('accepts the same request once the window has ended', async () => {
    h.clock.set('2026-03-08T00:00:00.000Z');
    const { status } = await deploy(h, frozen);
    expect(status).toBe(202);
    expect(h.workflow.starts).toHaveLength(1);
  });

  it("accepts an approver's override, and the workflow's first step audits it as FREEZE_OVERRIDDEN", async () => {
    const { status, body } = await deploy(h, { ...frozen, overrideFreeze: true }, undefined, releaseManager);
    expect(status).toBe(202);
    expect(body).toMatchObject({ status: 'QUEUED', environment: 'frozen' });
    const [start] = h.workflow.starts;
    expect(start?.input).toMatchObject({ overrideFreeze: true, requester: releaseManager });

    // Step Functions hands Validate Request the execution input and the execution name.
    const step = await validateStep(
      { deploymentId: start!.deploymentId, input: structuredClone(start!.input) as WorkflowInput },
      { store: h.store, registry, clock: h.clock, orchestratorAccount: ORCHESTRATOR },
    );
    expect(step).toEqual({ outcome: 'VALIDATED' });
    expect(await h.store.getDeployment(start!.deploymentId)).toMatchObject({
      status: 'RUNNING',
      freezeOverride: true,
      freezeOverrideRequested: true,
    });
    const override = (await h.store.listEvents(start!.deploymentId)).find(
      (e) => e.type === 'FREEZE_OVERRIDDEN',
    );
    expect(override?.detail).toEqual({
      window: 'march-freeze',
      endsAt: '2026-03-08T00:00:00.000Z',
      by: releaseManager,
      check: 'request',
    });
    const events = await call(
      h,
      'GET',
      '/deployments/{id}/events',
      get('/deployments/{id}/events', { id: start!.deploymentId }),
    );
    expect((events.body.items as { type: string }[]).map((e) => e.type)).toContain('FREEZE_OVERRIDDEN');
  });

  it('refuses the override of a requester who may deploy there but is not an approver', async () => {
    const { status, body } = await deploy(h, { ...frozen, overrideFreeze: true });
    expect(status).toBe(409);
    expect(body.code).toBe('ENVIRONMENT_FROZEN');
    expect(body.detail).toBe(
      'deployments are frozen by "march-freeze" until 2026-03-08T00:00:00.000Z; ' +
        "only the environment's approvers may override a freeze",
    );
    await expectRejectedRecord(h, body.deploymentId, 'ENVIRONMENT_FROZEN');
    expect(h.workflow.starts).toEqual([]);
  });
});

describe('POST /deployments', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });

  it('accepts a valid request, records it QUEUED and starts the workflow named after the deployment', async () => {
    const { status, headers, body } = await call(h, 'POST', '/deployments', fixture('post-deployments.json'));
    expect(status).toBe(202);
    expect(headers['content-type']).toBe('application/json');
    const id = body.deploymentId as string;
    expect(body).toMatchObject({
      status: 'QUEUED',
      application: 'hello-world',
      environment: 'staging',
      ref: 'main',
    });
    expect(headers.location).toBe(`/deployments/${id}`);
    expect(headers['idempotent-replayed']).toBeUndefined();

    const requester = {
      type: 'iam',
      arn: 'arn:aws:sts::123456789012:assumed-role/ci-deployer/ci-session',
      principal: 'arn:aws:iam::123456789012:role/ci-deployer',
    };
    expect(h.workflow.starts).toEqual([
      {
        deploymentId: id,
        input: {
          deploymentId: id,
          application: 'hello-world',
          environment: 'staging',
          ref: 'main',
          reason: 'release 1.2',
          dryRun: false,
          requester,
          trigger: 'api',
          requestedAt: START,
        },
      },
    ]);
    expect(await h.store.getDeployment(id)).toMatchObject({ status: 'QUEUED', requester, trigger: 'api' });
    const events = await h.store.listEvents(id);
    expect(events.map(({ type, detail }) => ({ type, detail }))).toEqual([
      {
        type: 'REQUESTED',
        detail: { requester, trigger: 'api', ref: 'main', reason: 'release 1.2', dryRun: false },
      },
    ]);
  });

  it("uses the application's default ref and records a local requester with trigger local", async () => {
    const { status, body } = await deploy(
      h,
      { ...staging, dryRun: true },
      {},
      { type: 'local', user: 'alice' },
    );
    expect(status).toBe(202);
    expect(body).toMatchObject({ ref: 'main', dryRun: true });
    expect(h.workflow.starts[0]?.input).toMatchObject({ ref: 'main', dryRun: true, trigger: 'local' });
  });

  it('reads a base64-encoded body', async () => {
    const { status } = await deploy(h, { ...staging, ref: 'release/1.2' }, { base64: true });
    expect(status).toBe(202);
    expect(h.workflow.starts[0]?.input).toMatchObject({ ref: 'release/1.2' });
  });

  it('accepts a 40-hex commit SHA as the ref', async () => {
    const sha = 'a'.repeat(40);
    const { status } = await deploy(h, { ...staging, ref: sha });
    expect(status).toBe(202);
  });

  describe('refusals that name an application and environment are recorded as REJECTED and start nothing', () => {
    it.each([
      ['an unknown field', { ...staging, force: true }, 'INVALID_FIELD'],
      ['an ill-typed dryRun', { ...staging, dryRun: 'yes' }, 'INVALID_FIELD'],
      ['a reason that is too long', { ...staging, reason: 'x'.repeat(501) }, 'INVALID_FIELD'],
      ['a ref with a shell command', { ...staging, ref: 'main;rm -rf /' }, 'INVALID_REF'],
      ['a ref that starts with "-"', { ...staging, ref: '--upload-pack=x' }, 'INVALID_REF'],
      ['a pull-request ref', { ...staging, ref: 'pr/12' }, 'INVALID_REF'],
      ['a ref with ".."', { ...staging, ref: 'main..x' }, 'INVALID_REF'],
      ['a reason with control characters', { ...staging, reason: 'hi\u001b[31m' }, 'INVALID_REASON'],
    ])('400 for %s', async (_what, body, code) => {
      const { status, headers, body: problem } = await deploy(h, body);
      expect(status).toBe(400);
      expect(headers['content-type']).toBe('application/problem+json');
      expect(problem.code).toBe(code);
      expect(problem.type).toBe(
        `https://crossdeploy.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
      );
      await expectRejectedRecord(h, problem.deploymentId, code);
      expect(h.workflow.starts).toEqual([]);
    });

    it('records the refused ref as data', async () => {
      const { body } = await deploy(h, { ...staging, ref: 'main;rm -rf /' });
      const record = await expectRejectedRecord(h, body.deploymentId, 'INVALID_REF');
      expect(record.ref).toBe('main;rm -rf /');
      expect(body.field).toBe('ref');
    });

    it('403 when the registry does not let the requester deploy there', async () => {
      const { status, body } = await deploy(h, { application: 'hello-world', environment: 'prod' });
      expect(status).toBe(403);
      expect(body.code).toBe('FORBIDDEN');
      await expectRejectedRecord(h, body.deploymentId, 'FORBIDDEN');
      expect(h.workflow.starts).toEqual([]);
    });

    it('409 when another deployment holds an unexpired lock on the environment', async () => {
      await h.store.acquireLock({
        ...staging,
        owner: 'OTHER',
        acquiredAt: START,
        leaseExpiresAt: '2026-03-01T13:00:00.000Z',
      });
      const { status, body } = await deploy(h, staging);
      expect(status).toBe(409);
      expect(body.code).toBe('ENVIRONMENT_BUSY');
      expect(body.detail).toContain('OTHER');
      await expectRejectedRecord(h, body.deploymentId, 'ENVIRONMENT_BUSY');
      expect(h.workflow.starts).toEqual([]);
    });

    it('accepts a request for a busy environment in queued mode: the workflow queues it', async () => {
      await h.store.acquireLock({
        application: 'hello-world',
        environment: 'prod',
        owner: 'OTHER',
        acquiredAt: START,
        leaseExpiresAt: '2026-03-01T13:00:00.000Z',
      });
      const release = iamRequester('arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0a1b/bob');
      const { status } = await deploy(h, { application: 'hello-world', environment: 'prod' }, {}, release);
      expect(status).toBe(202);
      expect(h.workflow.starts).toHaveLength(1);
    });

    it('does not treat an expired lease as busy (the workflow takes it over)', async () => {
      await h.store.acquireLock({
        ...staging,
        owner: 'OTHER',
        acquiredAt: '2026-03-01T10:00:00.000Z',
        leaseExpiresAt: '2026-03-01T11:00:00.000Z',
      });
      const { status } = await deploy(h, staging);
      expect(status).toBe(202);
    });
  });

  describe('refusals that name no target are answered and logged, not recorded', () => {
    let warn: ReturnType<typeof vi.spyOn>;
    beforeEach(() => {
      warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    });

    async function expectUnrecorded(
      status: number,
      code: string,
      response: Awaited<ReturnType<typeof deploy>>,
    ) {
      expect(response.status).toBe(status);
      expect(response.headers['content-type']).toBe('application/problem+json');
      expect(response.body.code).toBe(code);
      expect(response.body.deploymentId).toBeUndefined();
      expect(h.workflow.starts).toEqual([]);
      expect(await historyOf(h)).toEqual([]);
      expect(warn).toHaveBeenCalledWith(
        'request refused',
        expect.objectContaining({ audit: 'refused', code, status }),
      );
      // The audit line never carries the body.
      expect(JSON.stringify(warn.mock.calls)).not.toContain('secret-marker');
    }

    it.each([
      ['application', { application: 'no-such-app', environment: 'staging' }, 'UNKNOWN_APPLICATION'],
      ['environment', { application: 'hello-world', environment: 'no-such-env' }, 'UNKNOWN_ENVIRONMENT'],
    ])(
      '404 for an unknown %s: no REJECTED record (nobody could read it), an audit line naming it',
      async (_what, body, code) => {
        await expectUnrecorded(404, code, await deploy(h, body));
        expect(await historyOf(h, body.application, body.environment)).toEqual([]);
        expect(warn).toHaveBeenCalledWith(
          'request refused',
          expect.objectContaining({ application: body.application, environment: body.environment }),
        );
      },
    );

    it('400 for malformed JSON', async () => {
      await expectUnrecorded(400, 'MALFORMED_REQUEST', await deploy(h, '{"application":"secret-marker'));
    });

    it('400 for a body that is not UTF-8', async () => {
      const event = post('');
      event.body = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64');
      event.isBase64Encoded = true;
      await expectUnrecorded(400, 'MALFORMED_REQUEST', await call(h, 'POST', '/deployments', event));
    });

    it('400 for a body without an application', async () => {
      await expectUnrecorded(
        400,
        'INVALID_FIELD',
        await deploy(h, { environment: 'staging', ref: 'secret-marker' }),
      );
    });

    it('400 for a JSON array', async () => {
      await expectUnrecorded(400, 'INVALID_FIELD', await deploy(h, ['secret-marker']));
    });

    it('413 for a body over the limit', async () => {
      const response = await deploy(h, { ...staging, reason: `secret-marker${'x'.repeat(2_000_000)}` });
      await expectUnrecorded(413, 'PAYLOAD_TOO_LARGE', response);
    });

    it.each([
      ['text/plain', 'text/plain'],
      ['form data', 'application/x-www-form-urlencoded'],
      ['JSON in another charset', 'application/json; charset=iso-8859-1'],
    ])('415 for %s', async (_what, contentType) => {
      const response = await deploy(h, 'application=secret-marker', {
        headers: { 'content-type': contentType },
      });
      await expectUnrecorded(415, 'UNSUPPORTED_MEDIA_TYPE', response);
    });

    it('415 without a content type', async () => {
      const event = post(staging);
      delete event.headers['content-type'];
      await expectUnrecorded(415, 'UNSUPPORTED_MEDIA_TYPE', await call(h, 'POST', '/deployments', event));
    });
  });

  it('measures the size limit on the decoded body', async () => {
    const small = await harness({ maxBodyBytes: 300 });
    const fits = { ...staging, reason: 'x'.repeat(200) }; // 265 bytes, 356 as base64
    expect(JSON.stringify(fits).length).toBeLessThanOrEqual(300);
    expect(Buffer.from(JSON.stringify(fits)).toString('base64').length).toBeGreaterThan(300);
    expect((await deploy(small, fits, { base64: true })).status).toBe(202);
    const over = { ...staging, reason: 'x'.repeat(250) };
    expect((await deploy(small, over, { base64: true })).status).toBe(413);
    expect(small.workflow.starts).toHaveLength(1);
  });

  it('accepts application/json with a utf-8 charset and mixed-case header names', async () => {
    const event = post(staging);
    delete event.headers['content-type'];
    event.headers['Content-Type'] = 'Application/JSON; charset=UTF-8';
    expect((await call(h, 'POST', '/deployments', event)).status).toBe(202);
  });

  describe('Idempotency-Key', () => {
    const key = { 'idempotency-key': 'c0ffee-0001' };

    it('answers a repeat with the same body with the original deployment', async () => {
      const first = await deploy(h, staging, { headers: key });
      h.clock.set('2026-03-01T12:00:30.000Z');
      const again = await deploy(h, staging, { headers: key });
      expect(again.status).toBe(202);
      expect(again.body.deploymentId).toBe(first.body.deploymentId);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(await historyOf(h)).toHaveLength(1);
      // A repeat while still QUEUED re-sends the identical start, which Step Functions dedupes by name.
      expect(new Set(h.workflow.starts.map((s) => JSON.stringify(s))).size).toBe(1);
    });

    it('does not start again once the workflow has picked the deployment up', async () => {
      const first = await deploy(h, staging, { headers: key });
      const id = first.body.deploymentId as string;
      await h.store.updateDeployment(id, { status: 'RUNNING', phase: 'BUILDING' });
      await h.store.acquireLock({
        ...staging,
        owner: id,
        acquiredAt: START,
        leaseExpiresAt: '2026-03-01T14:00:00Z',
      });
      const again = await deploy(h, staging, { headers: key });
      expect(again.status).toBe(202);
      expect(again.body).toMatchObject({ deploymentId: id, status: 'RUNNING' });
      expect(h.workflow.starts).toHaveLength(1);
    });

    it('refuses the same key with a different body (409) and records the refusal', async () => {
      const first = await deploy(h, staging, { headers: key });
      const { status, body } = await deploy(h, { ...staging, ref: 'develop' }, { headers: key });
      expect(status).toBe(409);
      expect(body.code).toBe('IDEMPOTENCY_KEY_REUSED');
      expect(body.deploymentId).not.toBe(first.body.deploymentId);
      await expectRejectedRecord(h, body.deploymentId, 'IDEMPOTENCY_KEY_REUSED');
      expect(h.workflow.starts).toHaveLength(1);
    });

    it('treats key order in the body as the same body', async () => {
      const first = await deploy(h, '{"application":"hello-world","environment":"staging"}', {
        headers: key,
      });
      const again = await deploy(h, '{"environment":"staging","application":"hello-world"}', {
        headers: key,
      });
      expect(again.body.deploymentId).toBe(first.body.deploymentId);
    });

    it('scopes keys to the requester', async () => {
      const first = await deploy(h, staging, { headers: key });
      const other = await deploy(h, staging, { headers: key }, { type: 'local', user: 'alice' });
      expect(other.status).toBe(202);
      expect(other.body.deploymentId).not.toBe(first.body.deploymentId);
    });

    it('400 for a key that is not visible ASCII', async () => {
      const { status, body } = await deploy(h, staging, { headers: { 'idempotency-key': 'has space' } });
      expect(status).toBe(400);
      expect(body).toMatchObject({ code: 'INVALID_FIELD', field: 'Idempotency-Key' });
      await expectRejectedRecord(h, body.deploymentId, 'INVALID_FIELD');
    });
  });

  it('resumes a replayed request whose first attempt claimed the key but never created the deployment', async () => {
    const key = 'resume-0001';
    // Find the hash the API computes by letting it claim a key in another store, then plant only the claim.
    const probe = await harness();
    await deploy(probe, staging, { headers: { 'idempotency-key': key } });
    const claimed = await probe.store.claimIdempotencyKey(
      `arn:aws:iam::123456789012:role/ci-deployer\n${key}`,
      'x',
      'y',
      START,
    );
    if (claimed.claimed) throw new Error('expected the probe to have claimed the key');
    await h.store.claimIdempotencyKey(
      `arn:aws:iam::123456789012:role/ci-deployer\n${key}`,
      claimed.bodyHash,
      'ORPHANED0000000000000000001',
      START,
    );
    const { status, body } = await deploy(h, staging, { headers: { 'idempotency-key': key } });
    expect(status).toBe(202);
    expect(body.deploymentId).toBe('ORPHANED0000000000000000001');
    expect(h.workflow.starts.map((s) => s.deploymentId)).toEqual(['ORPHANED0000000000000000001']);
    expect(await h.store.getDeployment('ORPHANED0000000000000000001')).toMatchObject({ status: 'QUEUED' });
  });

  it('marks the deployment FAILED and answers a 500 without internals when the workflow cannot start', async () => {
    const denied = await harness({ workflow: new DeniedWorkflow() });
    const error = vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const { status, headers, body } = await deploy(denied, staging);
    expect(status).toBe(500);
    expect(headers['content-type']).toBe('application/problem+json');
    expect(body.code).toBe('EXECUTION_FAILED');
    expect(JSON.stringify(body)).not.toMatch(/arn:|not authorized|AccessDenied|at .*\.ts/);
    const record = await denied.store.getDeployment(body.deploymentId as string);
    expect(record).toMatchObject({ status: 'FAILED', errorCode: 'EXECUTION_FAILED' });
    expect(record?.errorMessage).not.toContain('arn:');
    const events = await denied.store.listEvents(body.deploymentId as string);
    expect(events.map((e) => e.type)).toEqual(['REQUESTED', 'FAILED']);
    expect(error).toHaveBeenCalled();
  });

  it('answers a 500 without internals when the store fails', async () => {
    const broken = await harness();
    broken.api = createApi({
      store: {
        ...broken.store,
        getLock: async () => {
          throw new Error('ProvisionedThroughputExceeded on table arn:aws:dynamodb:eu-west-1:1:table/t');
        },
      } as unknown as DeploymentStore,
      workflow: broken.workflow,
      logs: broken.logs,
      registry,
      clock: broken.clock,
      newId: () => 'ID1',
      orchestratorAccount: ORCHESTRATOR,
    });
    vi.spyOn(logger, 'error').mockImplementation(() => undefined);
    const { status, body } = await deploy(broken, staging);
    expect(status).toBe(500);
    expect(body.code).toBe('INTERNAL');
    expect(JSON.stringify(body)).not.toMatch(/arn:|Provisioned/);
    expect(body.detail).toContain('Tq0bEgWvjoEEJ8Q='); // the request id, so an operator can find the log
  });
});

// GET routes -----------------------------------------------------------------------------------------

// POST /promotions, POST /rollbacks -------------------------------------------------------------------

describe('POST /promotions and POST /rollbacks', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });

  const releaseManager = iamRequester(
    'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0a1b/rm',
  );
  const at = (template: string, body: unknown) => {
    const event = post(body);
    event.routeKey = `POST ${template}`;
    event.requestContext.routeKey = event.routeKey;
    event.rawPath = template;
    event.requestContext.http.path = template;
    return event;
  };
  const promote = (body: unknown, requester = releaseManager) =>
    call(h, 'POST', '/promotions', at('/promotions', body), requester);
  const rollback = (body: unknown, requester = releaseManager) =>
    call(h, 'POST', '/rollbacks', at('/rollbacks', body), requester);

  /** A finished, successful deployment with a recorded build output, numbered like the workflow numbers it. */
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

  it("promotes staging's last successful deployment: 202, kind promotion, the workflow told which output", async () => {
    await succeeded('staging', 1);
    const latest = await succeeded('staging', 2);
    const { status, body } = await promote({
      application: 'hello-world',
      from: 'staging',
      to: 'prod',
      reason: 'go',
    });
    expect(status).toBe(202);
    expect(body).toMatchObject({
      status: 'QUEUED',
      environment: 'prod',
      kind: 'promotion',
      source: { deploymentId: latest.deploymentId, environment: 'staging', release: 2 },
    });
    expect(body).not.toHaveProperty('ref');
    expect(h.workflow.starts[0]?.input).toMatchObject({
      environment: 'prod',
      promoteFrom: 'staging',
      buildOutputFrom: latest.deploymentId,
      reason: 'go',
    });
    expect(await h.store.getDeployment(body.deploymentId as string)).toMatchObject({
      kind: 'promotion',
      source: { deploymentId: latest.deploymentId },
    });
  });

  it('refuses a promotion path the registry does not list, with a REJECTED record filed under the target', async () => {
    await succeeded('prod', 1);
    const { status, body } = await promote({ application: 'hello-world', from: 'prod', to: 'staging' });
    expect(status).toBe(403);
    expect(body).toMatchObject({ code: 'PROMOTION_NOT_ALLOWED', detail: 'staging accepts no promotions' });
    const record = await expectRejectedRecord(h, body.deploymentId, 'PROMOTION_NOT_ALLOWED');
    expect(record).toMatchObject({ environment: 'staging', kind: 'promotion' });
    expect(h.workflow.starts).toEqual([]);
  });

  it('answers 409 NOTHING_TO_PROMOTE when the source has no successful deployment', async () => {
    const { status, body } = await promote({ application: 'hello-world', from: 'staging', to: 'prod' });
    expect(status).toBe(409);
    expect(body).toMatchObject({
      code: 'NOTHING_TO_PROMOTE',
      detail: 'staging has no successful deployment of hello-world to promote',
    });
    await expectRejectedRecord(h, body.deploymentId, 'NOTHING_TO_PROMOTE');
    expect(h.workflow.starts).toEqual([]);
  });

  it('refuses a promotion from someone the target does not allow', async () => {
    await succeeded('staging', 1);
    const { status, body } = await promote(
      { application: 'hello-world', from: 'staging', to: 'prod' },
      { type: 'local', user: 'alice' },
    );
    expect(status).toBe(403);
    expect(body.code).toBe('FORBIDDEN');
  });

  it('rolls back to release N: 202, kind rollback, rollbackOf N, the workflow told which output', async () => {
    const one = await succeeded('staging', 1);
    await succeeded('staging', 2);
    const alice = { type: 'local', user: 'alice' } as const;
    const { status, body } = await rollback(
      { application: 'hello-world', environment: 'staging', release: 1 },
      alice,
    );
    expect(status).toBe(202);
    expect(body).toMatchObject({
      kind: 'rollback',
      rollbackOf: 1,
      source: { deploymentId: one.deploymentId, environment: 'staging', release: 1 },
    });
    expect(h.workflow.starts[0]?.input).toMatchObject({
      rollbackRelease: 1,
      buildOutputFrom: one.deploymentId,
    });
  });

  it('answers 404 UNKNOWN_RELEASE for a release that does not exist, and 400 for one that is not a number', async () => {
    const alice = { type: 'local', user: 'alice' } as const;
    const unknown = await rollback({ application: 'hello-world', environment: 'staging', release: 4 }, alice);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({
      code: 'UNKNOWN_RELEASE',
      detail: 'hello-world/staging has no release 4',
    });
    const stranger = { type: 'local', user: 'mallory' } as const;
    const forbidden = await rollback(
      { application: 'hello-world', environment: 'staging', release: 2 },
      stranger,
    );
    expect(forbidden.status).toBe(403);
    const refused = await expectRejectedRecord(h, forbidden.body.deploymentId, 'FORBIDDEN');
    expect(refused).toMatchObject({ kind: 'rollback', rollbackOf: 2 });
    const bad = await rollback(
      { application: 'hello-world', environment: 'staging', release: 'latest' },
      alice,
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_FIELD', field: 'release' });
    expect(h.workflow.starts).toEqual([]);
  });

  it('answers a repeated Idempotency-Key on a promotion with the original promotion', async () => {
    await succeeded('staging', 1);
    const keyedPromotion = () => {
      const event = at('/promotions', { application: 'hello-world', from: 'staging', to: 'prod' });
      event.headers = { ...event.headers, 'idempotency-key': 'k-1' };
      return event;
    };
    const keyed = await call(h, 'POST', '/promotions', keyedPromotion(), releaseManager);
    const replay = await call(h, 'POST', '/promotions', keyedPromotion(), releaseManager);
    expect(keyed.headers['idempotent-replayed']).toBeUndefined();
    expect(replay.body.deploymentId).toBe(keyed.body.deploymentId);
    // A replay of a still-QUEUED request repeats the start under the same name; Step Functions dedupes it.
    expect(new Set(h.workflow.starts.map((start) => start.deploymentId))).toEqual(
      new Set([keyed.body.deploymentId]),
    );
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });
});

describe('GET routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });

  it('GET /deployments/{id} returns the record', async () => {
    const created = await deploy(h, { ...staging, reason: 'why' });
    const id = created.body.deploymentId as string;
    const { status, headers, body } = await call(
      h,
      'GET',
      '/deployments/{id}',
      get('/deployments/{id}', { id }),
    );
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('application/json');
    expect(body).toMatchObject({ deploymentId: id, status: 'QUEUED', reason: 'why', requestedAt: START });
  });

  it.each([
    '/deployments/{id}',
    '/deployments/{id}/events',
    '/deployments/{id}/follow',
    '/deployments/{id}/logs',
  ])('%s answers 404 NOT_FOUND for an unknown id', async (template) => {
    const { status, body } = await call(h, 'GET', template, get(template, { id: 'does-not-exist-123' }));
    expect(status).toBe(404);
    expect(body.code).toBe('NOT_FOUND');
  });

  it('answers 404 for an id no deployment can have', async () => {
    const { status } = await call(
      h,
      'GET',
      '/deployments/{id}',
      get('/deployments/{id}', { id: '../../etc' }),
    );
    expect(status).toBe(404);
  });

  it('matches routes by path when API Gateway (or local mode) sends the $default route', async () => {
    const created = await deploy(h, staging);
    const event = get('/deployments/{id}/events', { id: created.body.deploymentId as string });
    event.routeKey = '$default';
    delete event.pathParameters;
    const found = await call(h, 'GET', '/deployments/{id}/events', event);
    expect(found.status).toBe(200);

    const missing = get('/deployments/{id}', { id: 'does-not-exist-123' });
    missing.routeKey = '$default';
    delete missing.pathParameters;
    expect((await call(h, 'GET', '/deployments/{id}', missing)).status).toBe(404);
  });

  it('answers 404 NOT_FOUND for a route that does not exist', async () => {
    const event = get('/nothing-here');
    event.routeKey = '$default';
    const response = await h.api(event, callerOf(event));
    expect(response.statusCode).toBe(404);
    expect(JSON.parse(response.body ?? '{}').code).toBe('NOT_FOUND');
  });

  it('GET /deployments/{id}/events lists the audit events in order', async () => {
    const created = await deploy(h, { ...staging, ref: 'pr/7' });
    const id = created.body.deploymentId as string;
    const { status, body } = await call(
      h,
      'GET',
      '/deployments/{id}/events',
      get('/deployments/{id}/events', { id }),
    );
    expect(status).toBe(200);
    expect((body.items as { type: string }[]).map((e) => e.type)).toEqual(['REQUESTED', 'REJECTED']);
    expect((body.items as { detail: Record<string, unknown> }[])[1]?.detail).toMatchObject({
      code: 'INVALID_REF',
    });
  });

  it('GET /deployments/{id}/follow returns the record and the events since the cursor, in one request', async () => {
    const created = await deploy(h, staging);
    const id = created.body.deploymentId as string;
    const first = await call(h, 'GET', '/deployments/{id}/follow', get('/deployments/{id}/follow', { id }));
    expect(first.status).toBe(200);
    expect(first.body.deployment).toMatchObject({ deploymentId: id, status: 'QUEUED' });
    expect((first.body.items as { type: string }[]).map((e) => e.type)).toEqual(['REQUESTED']);
    const cursor = first.body.nextCursor as string;
    expect(typeof cursor).toBe('string');
    // Ten seconds later a new event: sent, with REQUESTED again (it lies within 5 s of the cursor).
    await h.store.appendEvent({
      deploymentId: id,
      step: 'VALIDATED',
      type: 'VALIDATED',
      at: new Date(Date.parse(START) + 10_000).toISOString(),
      detail: {},
    });
    const next = await call(
      h,
      'GET',
      '/deployments/{id}/follow',
      get('/deployments/{id}/follow', { id, query: { cursor } }),
    );
    expect((next.body.items as { type: string }[]).map((e) => e.type)).toEqual(['REQUESTED', 'VALIDATED']);
    expect(next.body.nextCursor).not.toBe(cursor);
    // Nothing new: REQUESTED (10 s before the cursor) is not sent again, and the cursor stays.
    const idle = await call(
      h,
      'GET',
      '/deployments/{id}/follow',
      get('/deployments/{id}/follow', { id, query: { cursor: next.body.nextCursor as string } }),
    );
    expect((idle.body.items as { type: string }[]).map((e) => e.type)).toEqual(['VALIDATED']);
    expect(idle.body.nextCursor).toBe(next.body.nextCursor);
  });

  it('GET /deployments/{id}/follow sends again an event written late, up to 5 s before the cursor', async () => {
    const created = await deploy(h, staging);
    const id = created.body.deploymentId as string;
    await h.store.appendEvent({
      deploymentId: id,
      step: 'VALIDATED',
      type: 'VALIDATED',
      at: new Date(Date.parse(START) + 10_000).toISOString(),
      detail: {},
    });
    const first = await call(h, 'GET', '/deployments/{id}/follow', get('/deployments/{id}/follow', { id }));
    // A function whose clock runs 2 s behind writes its event after the client read the newer one.
    await h.store.appendEvent({
      deploymentId: id,
      step: 'BUILD_STARTED',
      type: 'BUILD_STARTED',
      at: new Date(Date.parse(START) + 8_000).toISOString(),
      detail: {},
    });
    const next = await call(
      h,
      'GET',
      '/deployments/{id}/follow',
      get('/deployments/{id}/follow', { id, query: { cursor: first.body.nextCursor as string } }),
    );
    expect((next.body.items as { type: string }[]).map((e) => e.type)).toContain('BUILD_STARTED');
  });

  it.each([
    ['not base64url', '%%%'],
    ['base64url of something other than a time', Buffer.from('{"PK":"DEP#x"}').toString('base64url')],
  ])('GET /deployments/{id}/follow refuses a cursor that is %s: 400 BAD_CURSOR', async (_, cursor) => {
    const created = await deploy(h, staging);
    const id = created.body.deploymentId as string;
    const { status, body } = await call(
      h,
      'GET',
      '/deployments/{id}/follow',
      get('/deployments/{id}/follow', { id, query: { cursor } }),
    );
    expect(status).toBe(400);
    expect(body.code).toBe('BAD_CURSOR');
  });

  it('GET /deployments/{id}/logs pages through the log lines', async () => {
    const created = await deploy(h, staging);
    const id = created.body.deploymentId as string;
    h.logs.lines = [1, 2, 3].map((i) => ({ job: 'build', at: START, message: `line ${i}` }));
    const first = await call(
      h,
      'GET',
      '/deployments/{id}/logs',
      get('/deployments/{id}/logs', { id, query: { limit: '2' } }),
    );
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(2);
    const cursor = first.body.nextCursor as string;
    const second = await call(
      h,
      'GET',
      '/deployments/{id}/logs',
      get('/deployments/{id}/logs', { id, query: { limit: '2', cursor } }),
    );
    expect(second.body).toEqual({ items: [{ job: 'build', at: START, message: 'line 3' }] });

    const bad = await call(
      h,
      'GET',
      '/deployments/{id}/logs',
      get('/deployments/{id}/logs', { id, query: { cursor: 'Zm9v' } }),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('BAD_CURSOR');
    const tooMany = await call(
      h,
      'GET',
      '/deployments/{id}/logs',
      get('/deployments/{id}/logs', { id, query: { limit: '1001' } }),
    );
    expect(tooMany.status).toBe(400);
  });

  describe('GET /deployments (history)', () => {
    async function seed(count: number) {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        h.clock.set(`2026-03-01T12:0${i}:00.000Z`);
        ids.push((await deploy(h, staging)).body.deploymentId as string);
      }
      return ids;
    }
    const list = (query: Record<string, string>) =>
      call(h, 'GET', '/deployments', get('/deployments', { query }));

    it('pages newest first with an opaque cursor', async () => {
      const ids = await seed(3);
      const first = await list({ ...staging, limit: '2' });
      expect(first.status).toBe(200);
      expect((first.body.items as Deployment[]).map((d) => d.deploymentId)).toEqual([ids[2], ids[1]]);
      expect(typeof first.body.nextCursor).toBe('string');
      const second = await list({ ...staging, limit: '2', cursor: first.body.nextCursor as string });
      expect((second.body.items as Deployment[]).map((d) => d.deploymentId)).toEqual([ids[0]]);
      expect(second.body.nextCursor).toBeUndefined();
    });

    it('defaults to 20 items', async () => {
      await seed(1);
      const { body } = await list(staging);
      expect(body.items).toHaveLength(1);
      expect(body.nextCursor).toBeUndefined();
    });

    it.each(['0', '101', 'ten', '1.5', '-1'])('400 for limit=%s', async (limit) => {
      const { status, body } = await list({ ...staging, limit });
      expect(status).toBe(400);
      expect(body).toMatchObject({ code: 'INVALID_FIELD', field: 'limit' });
    });

    it('400 without an application', async () => {
      const { status, body } = await list({ environment: 'staging' });
      expect(status).toBe(400);
      expect(body.field).toBe('application');
    });

    it.each([
      ['characters outside base64url', '!!!not-a-cursor'],
      ['base64 that is not JSON', 'Zm9vYmFy'],
      ['a key of the wrong shape', Buffer.from(JSON.stringify({ PK: 'x' })).toString('base64url')],
    ])('400 BAD_CURSOR for %s', async (_what, cursor) => {
      const { status, body } = await list({ ...staging, cursor });
      expect(status).toBe(400);
      expect(body.code).toBe('BAD_CURSOR');
    });

    it("400 BAD_CURSOR for another environment's cursor", async () => {
      await seed(3);
      const first = await list({ ...staging, limit: '1' });
      const { status, body } = await list({
        application: 'hello-world',
        environment: 'frozen',
        cursor: first.body.nextCursor as string,
      });
      expect(status).toBe(400);
      expect(body.code).toBe('BAD_CURSOR');
    });
  });

  it('GET /applications lists names, accounts, regions and modes without role ARNs or ExternalIds', async () => {
    const event = get('/applications');
    const { status, body } = await call(h, 'GET', '/applications', event);
    expect(status).toBe(200);
    expect(body).toEqual({
      items: [
        {
          name: 'hello-world',
          defaultRef: 'main',
          environments: [
            {
              name: 'staging',
              accountId: '111111111111',
              region: 'eu-west-1',
              stackName: 'hello-world-staging',
              mode: 'reject',
            },
            {
              name: 'prod',
              accountId: '222222222222',
              region: 'eu-west-1',
              stackName: 'hello-world-prod',
              mode: 'queued',
            },
            {
              name: 'frozen',
              accountId: '555555555555',
              region: 'eu-west-1',
              stackName: 'hello-world-frozen',
              mode: 'queued',
              // START falls in March's freeze window (the console's grid shows it).
              frozen: { window: 'march-freeze', endsAt: '2026-03-08T00:00:00.000Z' },
            },
          ],
        },
      ],
    });
    const text = JSON.stringify(body);
    expect(text).not.toContain('arn:');
    expect(text).not.toContain('prod-external-id-7f3a');
  });
});

describe('read authorization', () => {
  let h: Harness;
  let warn: ReturnType<typeof vi.spyOn>;
  beforeEach(async () => {
    h = await harness();
    warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
  });

  const session = (account: string, role: string) =>
    iamRequester(`arn:aws:sts::${account}:assumed-role/${role}/someone`);
  const releaseManager = session(ORCHESTRATOR, 'AWSReservedSSO_Release_0a1b');
  const auditor = session(ORCHESTRATOR, 'Auditor');
  /** The fixtures' caller: ci-deployer, who may deploy to staging and frozen, not to prod. */
  const ci = session(ORCHESTRATOR, 'ci-deployer');

  /** Puts a prod deployment on record, as a promotion by the release manager would. */
  async function prodDeployment(): Promise<string> {
    const deployment = newDeployment({
      deploymentId: '01JNPROD000000000000000001',
      application: 'hello-world',
      environment: 'prod',
      requester: releaseManager,
      trigger: 'api',
      requestedAt: START,
    });
    await h.store.createDeployment(deployment);
    return deployment.deploymentId;
  }

  const reads = [
    '/deployments/{id}',
    '/deployments/{id}/events',
    '/deployments/{id}/follow',
    '/deployments/{id}/logs',
  ];

  it.each(reads)(
    '%s refuses a caller the registry does not let read the environment: 403, logged',
    async (template) => {
      const id = await prodDeployment();
      h.logs.lines = [{ job: 'deploy', at: START, message: 'prod secrets in a log line' }];
      const { status, headers, body } = await call(h, 'GET', template, get(template, { id }), ci);
      expect(status).toBe(403);
      expect(headers['content-type']).toBe('application/problem+json');
      expect(body).toMatchObject({ code: 'FORBIDDEN', status: 403 });
      expect(JSON.stringify(body)).not.toContain('prod secrets');
      expect(warn).toHaveBeenCalledWith(
        'read refused',
        expect.objectContaining({
          audit: 'refused',
          code: 'FORBIDDEN',
          requester: 'arn:aws:iam::123456789012:role/ci-deployer',
          application: 'hello-world',
          environment: 'prod',
          deploymentId: id,
        }),
      );
    },
  );

  it.each(reads)('%s answers those the registry lets read', async (template) => {
    const id = await prodDeployment();
    for (const reader of [releaseManager, auditor]) {
      const { status } = await call(h, 'GET', template, get(template, { id }), reader);
      expect(status).toBe(200);
    }
    expect(warn).not.toHaveBeenCalledWith('read refused', expect.anything());
  });

  it('GET /deployments (history) refuses a caller who may not read the environment', async () => {
    await prodDeployment();
    const query = { application: 'hello-world', environment: 'prod' };
    const refused = await call(h, 'GET', '/deployments', get('/deployments', { query }), ci);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('FORBIDDEN');
    expect(refused.body.items).toBeUndefined();
    const allowed = await call(h, 'GET', '/deployments', get('/deployments', { query }), auditor);
    expect(allowed.status).toBe(200);
    expect(allowed.body.items).toHaveLength(1);
  });

  it('GET /deployments (history) refuses an environment the registry does not know', async () => {
    const query = { application: 'hello-world', environment: 'retired' };
    const { status, body } = await call(h, 'GET', '/deployments', get('/deployments', { query }), ci);
    expect(status).toBe(403);
    expect(body.code).toBe('FORBIDDEN');
  });

  it("binds bare role names to the orchestrator's account: the same role name in another account reads nothing", async () => {
    const created = await deploy(h, staging);
    const id = created.body.deploymentId as string;
    expect((await call(h, 'GET', '/deployments/{id}', get('/deployments/{id}', { id }), ci)).status).toBe(
      200,
    );
    const stranger = session('999999999999', 'ci-deployer');
    const { status } = await call(h, 'GET', '/deployments/{id}', get('/deployments/{id}', { id }), stranger);
    expect(status).toBe(403);
  });

  it('a reader who may not deploy is still refused a deploy', async () => {
    const { status, body } = await deploy(
      h,
      { application: 'hello-world', environment: 'prod' },
      undefined,
      auditor,
    );
    expect(status).toBe(403);
    expect(body.code).toBe('FORBIDDEN');
  });

  it('local mode: the local user is held to the local rules', async () => {
    const created = await deploy(h, staging, undefined, { type: 'local', user: 'alice' });
    const id = created.body.deploymentId as string;
    const read = (user: string) =>
      call(h, 'GET', '/deployments/{id}/logs', get('/deployments/{id}/logs', { id }), {
        type: 'local',
        user,
      });
    expect((await read('alice')).status).toBe(200);
    const refused = await read('mallory');
    expect(refused.status).toBe(403);
    expect(warn).toHaveBeenCalledWith(
      'read refused',
      expect.objectContaining({ requester: 'local:mallory' }),
    );
  });
});

describe('handler', () => {
  it('answers 401 UNAUTHENTICATED when the event carries no IAM principal, touching nothing', async () => {
    const { handler } = await import('../../functions/api/handler.ts');
    const event = fixture('get-deployment.json');
    (event.requestContext as { authorizer?: unknown }).authorizer = undefined;
    const context = { functionName: 'api', awsRequestId: 'req-1' } as unknown as Context;
    const response = await handler(event, context);
    const body = expectValidResponse('GET', '/deployments/{id}', response) as Record<string, unknown>;
    expect(response.statusCode).toBe(401);
    expect(body.code).toBe('UNAUTHENTICATED');
  });
});

// AWS adapters behind the ports the API uses ---------------------------------------------------------

describe('SfnWorkflowStarter', () => {
  const sfn = mockClient(SFNClient);
  beforeEach(() => sfn.reset());
  const starter = () =>
    new SfnWorkflowStarter({
      client: new SFNClient({ region: 'eu-west-1' }),
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:crossdeploy-deploy',
    });

  it('starts an execution named after the deployment with the input as JSON', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: 'arn:x', startDate: new Date() });
    await starter().start('01JNDEPLOY', { deploymentId: '01JNDEPLOY', dryRun: false });
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:crossdeploy-deploy',
      name: '01JNDEPLOY',
      input: JSON.stringify({ deploymentId: '01JNDEPLOY', dryRun: false }),
    });
  });

  it('treats ExecutionAlreadyExists as already started', async () => {
    sfn.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    await expect(starter().start('01JNDEPLOY', {})).resolves.toBeUndefined();
  });

  it('throws any other failure', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    await expect(starter().start('01JNDEPLOY', {})).rejects.toThrow('denied');
  });
});

describe('CloudWatchLogReader', () => {
  const cwl = mockClient(CloudWatchLogsClient);
  beforeEach(() => cwl.reset());
  const reader = () =>
    new CloudWatchLogReader({
      client: new CloudWatchLogsClient({ region: 'eu-west-1' }),
      buildLogGroup: '/aws/codebuild/cd-build',
      deployLogGroup: '/aws/codebuild/cd-deploy',
    });
  const deployment = (overrides: Partial<Deployment>): Deployment => ({
    deploymentId: 'D1',
    application: 'hello-world',
    environment: 'staging',
    requester: { type: 'local', user: 'alice' },
    trigger: 'local',
    dryRun: false,
    status: 'RUNNING',
    requestedAt: START,
    updatedAt: START,
    ...overrides,
  });
  const at = Date.parse(START);

  it('reads the build stream (named after the build id) then the deploy stream, and ends when done', async () => {
    cwl
      .on(GetLogEventsCommand, { logGroupName: '/aws/codebuild/cd-build', logStreamName: 'b-uuid' })
      .resolves({ events: [{ timestamp: at, message: 'building\n' }], nextForwardToken: 'f/b1' })
      .on(GetLogEventsCommand, { logGroupName: '/aws/codebuild/cd-build', nextToken: 'f/b1' })
      .resolves({ events: [], nextForwardToken: 'f/b1' })
      .on(GetLogEventsCommand, { logGroupName: '/aws/codebuild/cd-deploy', logStreamName: 'd-uuid' })
      .resolves({ events: [{ timestamp: at + 1000, message: 'deploying' }], nextForwardToken: 'f/d1' })
      .on(GetLogEventsCommand, { logGroupName: '/aws/codebuild/cd-deploy', nextToken: 'f/d1' })
      .resolves({ events: [], nextForwardToken: 'f/d1' });
    const done = deployment({
      status: 'SUCCEEDED',
      jobs: {
        build: { buildId: 'cd-build:b-uuid', startedAt: START, status: 'SUCCEEDED' },
        deploy: { buildId: 'cd-deploy:d-uuid', startedAt: START, status: 'SUCCEEDED' },
      },
    });
    const page = await reader().read(done, { limit: 100 });
    expect(page).toEqual({
      items: [
        { job: 'build', at: START, message: 'building' },
        { job: 'deploy', at: '2026-03-01T12:00:01.000Z', message: 'deploying' },
      ],
    });
    expect(cwl).toHaveReceivedCommandWith(GetLogEventsCommand, {
      logGroupName: '/aws/codebuild/cd-build',
      logStreamName: 'b-uuid',
      startFromHead: true,
    });
  });

  it('returns a cursor to follow a running job from where it stopped', async () => {
    cwl
      .on(GetLogEventsCommand, { nextToken: undefined })
      .resolves({ events: [{ timestamp: at, message: 'one' }], nextForwardToken: 'f/1' })
      .on(GetLogEventsCommand, { nextToken: 'f/1' })
      .resolves({ events: [], nextForwardToken: 'f/1' });
    const running = deployment({
      jobs: { build: { buildId: 'p:b', startedAt: START, status: 'IN_PROGRESS' } },
    });
    const page = await reader().read(running, { limit: 100 });
    expect(page.items).toHaveLength(1);
    expect(page.nextCursor).toBeDefined();
    cwl.reset();
    cwl
      .on(GetLogEventsCommand)
      .resolves({ events: [{ timestamp: at, message: 'two' }], nextForwardToken: 'f/2' });
    const next = await reader().read(running, { limit: 1, cursor: page.nextCursor as string });
    expect(next.items.map((l) => l.message)).toEqual(['two']);
    expect(cwl).toHaveReceivedCommandWith(GetLogEventsCommand, { nextToken: 'f/1' });
  });

  it('treats a stream that does not exist yet as empty', async () => {
    cwl
      .on(GetLogEventsCommand)
      .rejects(Object.assign(new Error('no stream'), { name: 'ResourceNotFoundException' }));
    const page = await reader().read(deployment({ jobs: { build: { buildId: 'p:b', startedAt: START } } }), {
      limit: 10,
    });
    expect(page.items).toEqual([]);
    expect(page.nextCursor).toBeDefined();
  });

  it('refuses a cursor it did not issue', async () => {
    await expect(reader().read(deployment({}), { limit: 10, cursor: 'Zm9v' })).rejects.toMatchObject({
      code: 'BAD_CURSOR',
    });
  });
});
