import 'aws-sdk-client-mock-vitest/extend';
import { readFileSync } from 'node:fs';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2WithIAMAuthorizer, Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { IamRolePaths } from '#shared/aws/iam.ts';
import { newDeployment } from '#shared/deployments/record.ts';
import { logger } from '#shared/logger.ts';
import { iamRequester } from '#shared/registry/requester.ts';
import { expectValidResponse } from '#test/support/openapi.ts';

/**
 * The deployed API handler, from real API Gateway HTTP API events (payload 2.0, IAM authorizer) to answers:
 * the caller's role path comes from iam:GetRole, bare role names are bound to ORCHESTRATOR_ACCOUNT_ID, and the
 * read routes answer only those the bundled registry (registry/targets.yaml) lets read. DynamoDB and IAM are
 * mocked at the SDK boundary.
 */

type Event = APIGatewayProxyEventV2WithIAMAuthorizer;
const fixture = (name: string): Event =>
  JSON.parse(readFileSync(new URL(`../events/apigw/${name}`, import.meta.url), 'utf8')) as Event;

const ORCHESTRATOR = '123456789012';
const dynamo = mockClient(DynamoDBDocumentClient);
const iam = mockClient(IAMClient);
const context = { functionName: 'api', awsRequestId: 'req-1' } as unknown as Context;

function deployment(environment: string) {
  return newDeployment({
    deploymentId: '01JNEXAMPLE0000000000000000',
    application: 'hello-world',
    environment,
    requester: iamRequester('arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0a1b/rm', '/'),
    trigger: 'api',
    requestedAt: '2026-03-01T12:00:00.000Z',
  });
}

/** The role ci-deployer as GetRole describes it, on `path`. */
const ciDeployer = (path: string) => ({
  Role: {
    RoleName: 'ci-deployer',
    Path: path,
    Arn: `arn:aws:iam::${ORCHESTRATOR}:role${path}ci-deployer`,
    RoleId: 'AROAEXAMPLEEXAMPLE123',
    CreateDate: new Date('2026-01-01T00:00:00Z'),
  },
});

let handler: (event: Event, context: Context) => Promise<{ statusCode?: number; body?: string }>;
beforeAll(async () => {
  vi.stubEnv('TABLE_NAME', 'crossdeploy-deployments');
  vi.stubEnv('STATE_MACHINE_ARN', `arn:aws:states:eu-west-1:${ORCHESTRATOR}:stateMachine:crossdeploy-deploy`);
  vi.stubEnv('BUILD_LOG_GROUP', '/aws/codebuild/crossdeploy-build');
  vi.stubEnv('DEPLOY_LOG_GROUP', '/aws/codebuild/crossdeploy-deploy');
  vi.stubEnv('ORCHESTRATOR_ACCOUNT_ID', ORCHESTRATOR);
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  ({ handler } = await import('../../functions/api/handler.ts'));
});

let warn: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  dynamo.reset();
  iam.reset();
  warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
});

async function get(event: Event, template: string) {
  const response = await handler(event, context);
  const body = expectValidResponse('GET', template, response) as Record<string, unknown>;
  return { status: response.statusCode, body };
}

describe('API handler: who may read', () => {
  it("reads a staging deployment as ci-deployer on the root path (rule arn:…:role/ci-*), after looking the role's path up", async () => {
    dynamo.on(GetCommand).resolves({ Item: deployment('staging') });
    iam.on(GetRoleCommand, { RoleName: 'ci-deployer' }).resolves(ciDeployer('/'));
    const { status, body } = await get(fixture('get-deployment.json'), '/deployments/{id}');
    expect(status).toBe(200);
    expect(body).toMatchObject({ environment: 'staging' });
    expect(iam).toHaveReceivedCommandWith(GetRoleCommand, { RoleName: 'ci-deployer' });
  });

  it('refuses the same role name on another path: the rule role/ci-* does not cover /interns/ci-deployer', async () => {
    dynamo.on(GetCommand).resolves({ Item: deployment('staging') });
    iam.on(GetRoleCommand).resolves(ciDeployer('/interns/'));
    const { status, body } = await get(fixture('get-deployment.json'), '/deployments/{id}');
    expect(status).toBe(403);
    expect(body.code).toBe('FORBIDDEN');
    expect(warn).toHaveBeenCalledWith(
      'read refused',
      expect.objectContaining({ requester: 'arn:aws:iam::123456789012:role/interns/ci-deployer' }),
    );
  });

  it('refuses when the role path cannot be looked up: a path-dependent rule never matches an unknown path', async () => {
    dynamo.on(GetCommand).resolves({ Item: deployment('staging') });
    iam.on(GetRoleCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    const { status } = await get(fixture('get-deployment.json'), '/deployments/{id}');
    expect(status).toBe(403);
    expect(warn).toHaveBeenCalledWith(
      'role path not resolved; path-dependent rules will not match this caller',
      {
        roleName: 'ci-deployer',
        error: 'AccessDenied',
      },
    );
  });

  it("refuses ci-deployer a prod deployment, which only prod's requesters may read", async () => {
    dynamo.on(GetCommand).resolves({ Item: deployment('prod') });
    iam.on(GetRoleCommand).resolves(ciDeployer('/'));
    for (const route of ['/deployments/{id}', '/deployments/{id}/events', '/deployments/{id}/logs']) {
      const event = fixture('get-deployment.json');
      event.routeKey = `GET ${route}`;
      event.rawPath = route.replace('{id}', '01JNEXAMPLE0000000000000000');
      const { status, body } = await get(event, route);
      expect(status).toBe(403);
      expect(body.code).toBe('FORBIDDEN');
    }
  });

  it('answers history to an SSO developer (bare name AWSReservedSSO_Developer_*) and refuses prod before reading it', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [] });
    iam.on(GetRoleCommand).resolves({
      Role: {
        RoleName: 'AWSReservedSSO_Developer_0a1b2c3d4e5f6789',
        Path: '/aws-reserved/sso.amazonaws.com/',
        Arn: `arn:aws:iam::${ORCHESTRATOR}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Developer_0a1b2c3d4e5f6789`,
        RoleId: 'AROAEXAMPLEEXAMPLE456',
        CreateDate: new Date('2026-01-01T00:00:00Z'),
      },
    });
    const staging = await get(fixture('get-deployments-history.json'), '/deployments');
    expect(staging).toEqual({ status: 200, body: { items: [] } });

    dynamo.reset();
    const prod = fixture('get-deployments-history.json');
    prod.queryStringParameters = { application: 'hello-world', environment: 'prod' };
    prod.rawQueryString = 'application=hello-world&environment=prod';
    const { status } = await get(prod, '/deployments');
    expect(status).toBe(403);
    expect(dynamo).not.toHaveReceivedCommand(QueryCommand);
  });
});

describe('IamRolePaths', () => {
  const paths = () => new IamRolePaths({ client: new IAMClient({}), account: ORCHESTRATOR });

  it('returns the path GetRole reports for a role of its own account', async () => {
    iam.on(GetRoleCommand).resolves(ciDeployer('/release-managers/'));
    expect(await paths().rolePath(ORCHESTRATOR, 'ci-deployer')).toBe('/release-managers/');
  });

  it('does not ask about roles of other accounts, which it cannot read', async () => {
    expect(await paths().rolePath('999999999999', 'ci-deployer')).toBeUndefined();
    expect(iam).not.toHaveReceivedCommand(GetRoleCommand);
  });

  it('trusts no answer about another role or another account', async () => {
    iam.on(GetRoleCommand).resolves({ Role: { ...ciDeployer('/').Role, RoleName: 'other' } });
    expect(await paths().rolePath(ORCHESTRATOR, 'ci-deployer')).toBeUndefined();
    iam.on(GetRoleCommand).resolves({
      Role: { ...ciDeployer('/x/').Role, Arn: 'arn:aws:iam::999999999999:role/x/ci-deployer' },
    });
    expect(await paths().rolePath(ORCHESTRATOR, 'ci-deployer')).toBeUndefined();
  });

  it('leaves the path unknown when the role is gone', async () => {
    iam.on(GetRoleCommand).rejects(Object.assign(new Error('gone'), { name: 'NoSuchEntityException' }));
    expect(await paths().rolePath(ORCHESTRATOR, 'ci-deployer')).toBeUndefined();
  });
});
