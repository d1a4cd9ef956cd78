import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BOT_TOKEN_PLACEHOLDER } from '../../functions/slack/poster.ts';
import {
  type CfnResource,
  isRecord,
  loadTemplate,
  refName,
  resourcesOfType,
} from '../../scripts/cfn-yaml.ts';

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const resource = (id: string): CfnResource => {
  const found = template.Resources[id];
  if (!found) throw new Error(`template.yaml has no resource ${id}`);
  return found;
};
const slack = resource('SlackFunction').Properties ?? {};
const events = (slack.Events ?? {}) as Record<string, { Type: string; Properties: Record<string, unknown> }>;
const statements = (slack.Policies as unknown[])
  .filter((p): p is { Statement: Record<string, unknown>[] } => isRecord(p) && 'Statement' in p)
  .flatMap((p) => p.Statement);

describe('template: the Slack route and function', () => {
  it('routes POST /slack/commands to SlackFunction with IAM authorization explicitly off', () => {
    const route = Object.values(events).find((e) => e.Type === 'HttpApi');
    expect(route?.Properties).toEqual({
      ApiId: { Ref: 'HttpApi' },
      Method: 'POST',
      Path: '/slack/commands',
      Auth: { Authorizer: 'NONE' },
    });
  });

  it('has the only routes that opt out of IAM (the slash command and the buttons, both signed by Slack)', () => {
    const optedOut = resourcesOfType(template, 'AWS::Serverless::Function').flatMap(([id, fn]) =>
      Object.values(
        (fn.Properties?.Events ?? {}) as Record<string, { Type: string; Properties: { Auth?: unknown } }>,
      )
        .filter((event) => event.Type === 'HttpApi' && event.Properties.Auth !== undefined)
        .map(() => id),
    );
    expect(optedOut).toEqual(['SlackFunction', 'SlackFunction']);
  });

  it('keeps the signing secret in Secrets Manager, generated until the operator puts the real one', () => {
    const secret = resource('SlackSigningSecret');
    expect(secret.Type).toBe('AWS::SecretsManager::Secret');
    expect(secret.Properties?.GenerateSecretString).toMatchObject({ PasswordLength: 64 });
    expect(secret.Properties).not.toHaveProperty('SecretString');
    expect((slack.Environment as { Variables: Record<string, unknown> }).Variables).toEqual({
      SLACK_SIGNING_SECRET_ARN: { Ref: 'SlackSigningSecret' },
      SLACK_BOT_TOKEN_SECRET_ARN: { Ref: 'SlackBotToken' },
    });
  });

  it('keeps the optional bot token in its own secret, holding a placeholder that is no token until one is put', () => {
    const secret = resource('SlackBotToken');
    expect(secret.Type).toBe('AWS::SecretsManager::Secret');
    expect(secret.Properties?.SecretString).toBe(BOT_TOKEN_PLACEHOLDER);
    expect(String(secret.Properties?.SecretString)).not.toMatch(/^xox/);
  });

  it('may read exactly those two secrets, describe builds of the two projects, and never scan', () => {
    const secretReads = statements.filter((s) => String(s.Action).startsWith('secretsmanager:'));
    expect(secretReads).toEqual([
      expect.objectContaining({
        Action: 'secretsmanager:GetSecretValue',
        Resource: { Ref: 'SlackSigningSecret' },
      }),
      expect.objectContaining({
        Action: 'secretsmanager:GetSecretValue',
        Resource: { Ref: 'SlackBotToken' },
      }),
    ]);
    const table = statements.find((s) => s.Sid === 'DeploymentsTableReadWrite');
    expect(table?.Action).not.toContain('dynamodb:Scan');
    const builds = statements.find((s) => s.Sid === 'ReadJobStatus');
    expect(builds).toMatchObject({ Action: 'codebuild:BatchGetBuilds' });
    expect(
      ((builds?.Resource ?? []) as unknown[]).map((r) => (r as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]),
    ).toEqual(['BuildProject', 'DeployProject']);
  });

  it('hears the workflow start and end, job starts of the two projects, approval requests, and sweeps on a schedule', () => {
    const rules = Object.values(events).filter((e) => e.Type === 'EventBridgeRule');
    expect(rules.map((r) => r.Properties.Pattern)).toEqual([
      { source: ['crossdeploy'], 'detail-type': ['Deployment Awaiting Approval'] },
      {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          stateMachineArn: [{ Ref: 'DeployStateMachine' }],
          status: ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'],
        },
      },
      {
        source: ['aws.codebuild'],
        'detail-type': ['CodeBuild Build State Change'],
        detail: {
          'project-name': [{ Ref: 'BuildProject' }, { Ref: 'DeployProject' }],
          'build-status': ['IN_PROGRESS'],
        },
      },
    ]);
    const schedule = Object.values(events).find((e) => e.Type === 'Schedule');
    expect(schedule?.Properties.Schedule).toBe('rate(10 minutes)');
    expect(refName((slack.LoggingConfig as Record<string, unknown>).LogGroup)).toBe('SlackFunctionLogGroup');
  });
});
