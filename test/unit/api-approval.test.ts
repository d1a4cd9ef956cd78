import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2WithIAMAuthorizer } from 'aws-lambda';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import { logger } from '#shared/logger.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import type { Requester } from '#shared/types.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import { createApi } from '../../functions/api/routes.ts';
import { LocalTaskTokens } from '../../local/workflow-engine.ts';

/** POST /deployments/{id}/approval through the real API core (IAM requesters), the store on dynalite. */

type Event = APIGatewayProxyEventV2WithIAMAuthorizer;
const ACCOUNT = '123456789012';
const ROLE = (name: string) => `arn:aws:iam::222222222222:role/crossdeploy/${name}`;
const iam = (role: string): Requester => ({
  type: 'iam',
  arn: `arn:aws:sts::${ACCOUNT}:assumed-role/${role}/session`,
  principal: `arn:aws:iam::${ACCOUNT}:role/${role}`,
  rolePath: '/',
});

const registry = parseRegistry({
  applications: {
    shop: {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/shop.git' },
      environments: {
        prod: {
          accountId: '222222222222',
          region: 'eu-west-1',
          deployRoleArn: ROLE('deploy'),
          executionRoleArn: ROLE('cfn-exec'),
          stackName: 'shop-prod',
          artifactsBucket: 'artifacts-222222222222-eu-west-1',
          allowedRequesters: { iam: ['ci-*'] },
          approvers: { iam: ['ReleaseManager'] },
          approval: 'required',
        },
      },
    },
  },
});

const post = (id: string, body: unknown, headers: Record<string, string> = {}): Event => {
  const event = JSON.parse(
    readFileSync(new URL('../events/apigw/post-deployments.json', import.meta.url), 'utf8'),
  ) as Event;
  const path = `/deployments/${id}/approval`;
  event.routeKey = 'POST /deployments/{id}/approval';
  event.requestContext.routeKey = event.routeKey;
  event.rawPath = path;
  event.requestContext.http.path = path;
  event.pathParameters = { id };
  event.body = typeof body === 'string' ? body : JSON.stringify(body);
  event.headers = { ...event.headers, ...headers };
  return event;
};

let store: DeploymentStore;
let tokens: LocalTaskTokens;
let decision: Promise<unknown>;
const ID = '01JNAPPROVAL00000000000001';

async function waiting() {
  const fresh = newDeployment({
    deploymentId: ID,
    application: 'shop',
    environment: 'prod',
    requester: iam('ci-deployer'),
    trigger: 'api',
    requestedAt: '2026-12-04T09:00:00.000Z',
  });
  await store.createDeployment(fresh);
  await store.updateDeployment(ID, {
    status: 'RUNNING',
    phase: 'AWAITING_APPROVAL',
    approval: { mode: 'required', state: 'PENDING' },
    updatedAt: '2026-12-04T09:01:00.000Z',
  });
  const issued = tokens.issue();
  decision = issued.result.then(
    (value) => ({ ok: value }),
    (error: Error) => ({ failed: error.name, cause: JSON.parse(error.message) as unknown }),
  );
  await store.putTaskToken(ID, 'approval', issued.token);
}

const api = (withTokens = true) =>
  createApi({
    store,
    workflow: { start: async () => {} },
    logs: { read: async () => ({ items: [] }) },
    registry,
    clock: { now: () => new Date('2026-12-04T09:05:00.000Z') },
    newId: () => 'unused',
    orchestratorAccount: ACCOUNT,
    ...(withTokens ? { tokens } : {}),
  });

const refusals = async () =>
  (await store.listEvents(ID)).filter((e) => e.type === 'APPROVAL_REFUSED').map((e) => e.detail.code);

beforeEach(async () => {
  ({ store } = await createTestStore());
  tokens = new LocalTaskTokens();
  await waiting();
  vi.spyOn(logger, 'warn').mockImplementation(() => {});
  vi.spyOn(logger, 'info').mockImplementation(() => {});
  vi.spyOn(logger, 'error').mockImplementation(() => {});
});

describe('POST /deployments/{id}/approval', () => {
  it('hands an approver’s decision, with who, when and why, to the waiting workflow (202)', async () => {
    const result = await api()(
      post(ID, { decision: 'approve', reason: 'diff reviewed' }),
      iam('ReleaseManager'),
    );
    expect(result.statusCode).toBe(202);
    expectValidResponse('POST', '/deployments/{id}/approval', result);
    expect(JSON.parse(String(result.body))).toMatchObject({ deploymentId: ID, decision: 'APPROVED' });
    expect(await decision).toEqual({
      ok: {
        decision: 'APPROVED',
        decidedBy: iam('ReleaseManager'),
        decidedAt: '2026-12-04T09:05:00.000Z',
        reason: 'diff reviewed',
      },
    });
  });

  it('hands a rejection on as ApprovalRejectedError with its code', async () => {
    const result = await api()(post(ID, { decision: 'reject' }), iam('ReleaseManager'));
    expect(result.statusCode).toBe(202);
    expect(await decision).toMatchObject({
      failed: 'ApprovalRejectedError',
      cause: { code: 'APPROVAL_REJECTED' },
    });
  });

  it.each([
    ['a non-approver', iam('ci-deployer-2'), 403, 'NOT_AN_APPROVER'],
    ['the requester, who is not an approver', iam('ci-deployer'), 403, 'NOT_AN_APPROVER'],
  ])('refuses %s with problem+json and an audit event', async (_what, who, status, code) => {
    const result = await api()(post(ID, { decision: 'approve' }), who);
    expect(result.statusCode).toBe(status);
    expect(result.headers?.['content-type']).toBe('application/problem+json');
    expectValidResponse('POST', '/deployments/{id}/approval', result);
    expect(JSON.parse(String(result.body))).toMatchObject({ code, status });
    expect(await refusals()).toEqual([code]);
  });

  it('refuses a second decision once the first was handed on (409 NOT_AWAITING_APPROVAL), audited', async () => {
    expect((await api()(post(ID, { decision: 'approve' }), iam('ReleaseManager'))).statusCode).toBe(202);
    const second = await api()(post(ID, { decision: 'reject' }), iam('ReleaseManager'));
    expect(second.statusCode).toBe(409);
    expect(JSON.parse(String(second.body))).toMatchObject({ code: 'NOT_AWAITING_APPROVAL' });
    expect(await refusals()).toEqual(['NOT_AWAITING_APPROVAL']);
  });

  it.each([
    ['a decision other than approve or reject', { decision: 'yes' }, 400, 'INVALID_FIELD'],
    ['no decision', {}, 400, 'INVALID_FIELD'],
    ['a reason that is not a string', { decision: 'approve', reason: 42 }, 400, 'INVALID_FIELD'],
    [
      'a reason with control characters',
      { decision: 'approve', reason: 'ok\u001b[2J' },
      400,
      'INVALID_REASON',
    ],
    ['a reason over 500 characters', { decision: 'approve', reason: 'x'.repeat(501) }, 400, 'INVALID_REASON'],
    ['a body that is not JSON', 'decision=approve', 400, 'MALFORMED_REQUEST'],
  ])('refuses %s as problem+json, deciding nothing', async (_what, body, status, code) => {
    const result = await api()(post(ID, body), iam('ReleaseManager'));
    expect(result.statusCode).toBe(status);
    expect(result.headers?.['content-type']).toBe('application/problem+json');
    expect(JSON.parse(String(result.body))).toMatchObject({ code });
    expect((await store.getDeployment(ID))?.approval?.state).toBe('PENDING');
    expect(await tokens.succeed((await store.getTaskToken(ID, 'approval'))!, {})).toBe('delivered');
  });

  it('refuses a body that is not application/json (415)', async () => {
    const result = await api()(
      post(ID, { decision: 'approve' }, { 'content-type': 'text/plain' }),
      iam('ReleaseManager'),
    );
    expect(result.statusCode).toBe(415);
  });

  it('answers 404 for a deployment that does not exist', async () => {
    const result = await api()(
      post('01JNNOSUCHDEPLOYMENT000000', { decision: 'approve' }),
      iam('ReleaseManager'),
    );
    expect(result.statusCode).toBe(404);
    expect(JSON.parse(String(result.body))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('answers a generic 500 when built without task tokens, deciding nothing', async () => {
    const result = await api(false)(post(ID, { decision: 'approve' }), iam('ReleaseManager'));
    expect(result.statusCode).toBe(500);
    expect(String(result.body)).not.toContain('task tokens');
  });
});
