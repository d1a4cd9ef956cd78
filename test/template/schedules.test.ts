import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { parseRegistry, type Registry } from '#shared/registry/registry.ts';
import { type CfnResource, loadTemplate, parseCfnYaml, resourcesOfType } from '../../scripts/cfn-yaml.ts';
import {
  DeriveError,
  REGISTRY_FILE,
  SCHEDULED_TIME,
  scheduleLines,
  scheduleResources,
} from '../../scripts/registry-derive.ts';

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const registry = loadRegistryFile(join(root, REGISTRY_FILE));

const registrySchedules = Object.entries(registry.applications).flatMap(([application, app]) =>
  app.schedules.map((schedule) => ({ application, schedule })),
);
const scheduleResourcesInTemplate = resourcesOfType(template, 'AWS::Scheduler::Schedule');
const props = (resource: CfnResource | undefined) => resource?.Properties ?? {};

/** What the workflow's first step expects from a schedule (functions/validate-request/core.ts). */
const expectedInput = (application: string, name: string, from: string, to: string) => ({
  application,
  environment: to,
  promoteFrom: from,
  schedule: { name, scheduledTime: '<aws.scheduler.scheduled-time>' },
  requester: { type: 'schedule', scheduleName: name },
  trigger: 'schedule',
  reason: `scheduled promotion ${name}`,
});

describe('scheduled promotions in template.yaml', () => {
  it('come from a registry that declares at least one schedule (sanity check of this test)', () => {
    expect(registrySchedules.length).toBeGreaterThan(0);
  });

  it('has one schedule resource per registry schedule, and no other', () => {
    const names = scheduleResourcesInTemplate.map(([, resource]) => props(resource).Name).sort();
    expect(names).toEqual(
      registrySchedules.map(({ application, schedule }) => `${application}.${schedule.name}`).sort(),
    );
  });

  describe.each(registrySchedules)('$application $schedule.name', ({ application, schedule }) => {
    const found = scheduleResourcesInTemplate.find(
      ([, resource]) => props(resource).Name === `${application}.${schedule.name}`,
    );
    const p = props(found?.[1]);
    const target = (p.Target ?? {}) as Record<string, unknown>;

    it('fires on the registry expression, in the registry time zone, at the exact minute', () => {
      expect(p.ScheduleExpression).toBe(schedule.schedule);
      expect(p.ScheduleExpressionTimezone).toBe(schedule.timezone);
      expect(p.FlexibleTimeWindow).toEqual({ Mode: 'OFF' });
      expect(p.State).toBe(schedule.enabled ? 'ENABLED' : 'DISABLED');
    });

    it("starts the deploy state machine with the workflow's schedule input and the tick's time", () => {
      expect(target.Arn).toEqual({ Ref: 'DeployStateMachine' });
      expect(target.RoleArn).toEqual({ 'Fn::GetAtt': ['SchedulerRole', 'Arn'] });
      expect(typeof target.Input).toBe('string');
      expect(JSON.parse(String(target.Input))).toEqual(
        expectedInput(application, schedule.name, schedule.from, schedule.to),
      );
    });

    it('retries a failed start for at most an hour', () => {
      expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 });
    });

    it("is named within the stack's own schedule group, so the name includes the stack name", () => {
      expect(p.GroupName).toEqual({ Ref: 'ScheduleGroup' });
      expect(String(p.Name)).toMatch(/^[0-9a-zA-Z._-]{1,64}$/);
    });
  });

  it('keeps every schedule in a group named after the stack', () => {
    const groups = resourcesOfType(template, 'AWS::Scheduler::ScheduleGroup');
    expect(groups.map(([id]) => id)).toEqual(['ScheduleGroup']);
    expect(props(groups[0]?.[1]).Name).toEqual({ Ref: 'AWS::StackName' });
  });
});

describe('the scheduler role', () => {
  const role = props(template.Resources.SchedulerRole);

  it('can be assumed only by EventBridge Scheduler for schedules of this stack, in this account', () => {
    expect(template.Resources.SchedulerRole?.Type).toBe('AWS::IAM::Role');
    expect(role.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'StackSchedules',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: {
            StringEquals: {
              'aws:SourceAccount': { Ref: 'AWS::AccountId' },
              'aws:SourceArn': { 'Fn::GetAtt': ['ScheduleGroup', 'Arn'] },
            },
          },
        },
      ],
    });
  });

  it('may only start executions of the deploy state machine', () => {
    expect(role).not.toHaveProperty('ManagedPolicyArns');
    expect(role).not.toHaveProperty('PermissionsBoundary');
    const policies = (role.Policies ?? []) as { PolicyDocument: { Statement: unknown[] } }[];
    expect(policies.flatMap((policy) => policy.PolicyDocument.Statement)).toEqual([
      {
        Sid: 'StartDeployWorkflow',
        Effect: 'Allow',
        Action: 'states:StartExecution',
        Resource: { Ref: 'DeployStateMachine' },
      },
    ]);
    const attached = Object.values(template.Resources).filter(
      (resource) =>
        ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].includes(resource.Type) &&
        JSON.stringify(resource.Properties).includes('SchedulerRole'),
    );
    expect(attached).toEqual([]);
  });

  it('is used by the schedules and by nothing else', () => {
    const users = Object.entries(template.Resources)
      .filter(
        ([id, resource]) => id !== 'SchedulerRole' && JSON.stringify(resource).includes('"SchedulerRole"'),
      )
      .map(([, resource]) => resource.Type);
    expect(new Set(users)).toEqual(new Set(['AWS::Scheduler::Schedule']));
  });
});

// ------------------------------------------------------------------------------------------------
// The derive step
// ------------------------------------------------------------------------------------------------

const environment = (account: string, overrides: Record<string, unknown> = {}) => ({
  accountId: account,
  region: 'eu-west-1',
  deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-deploy`,
  executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-cfn-exec`,
  stackName: `app-${account}`,
  artifactsBucket: `crossdeploy-artifacts-${account}-eu-west-1`,
  allowedRequesters: { schedule: ['*'] },
  ...overrides,
});

function registryWith(applications: Record<string, unknown[]>): Registry {
  return parseRegistry({
    applications: Object.fromEntries(
      Object.entries(applications).map(([name, schedules]) => [
        name,
        {
          source: { type: 'GITHUB', location: `https://github.com/example/${name}.git` },
          environments: {
            staging: environment('111111111111', { stackName: `${name}-staging` }),
            prod: environment('222222222222', { stackName: `${name}-prod`, promoteFrom: ['staging'] }),
          },
          schedules,
        },
      ]),
    ),
  });
}

const promotion = (name: string, overrides: Record<string, unknown> = {}) => ({
  name,
  from: 'staging',
  to: 'prod',
  schedule: 'cron(0 10 ? * MON-FRI *)',
  timezone: 'Europe/Berlin',
  ...overrides,
});

const render = (registry: Registry) =>
  parseCfnYaml(scheduleLines(registry).join('\n')) as Record<string, { Properties: Record<string, unknown> }>;

describe('scheduleLines', () => {
  it('renders a schedule resource whose input carries the scheduled-time placeholder', () => {
    const resources = render(
      registryWith({ shop: [promotion('nightly', { schedule: 'rate(1 day)', timezone: 'UTC' })] }),
    );
    expect(Object.keys(resources)).toEqual(['ScheduleShopNightly']);
    const properties = resources.ScheduleShopNightly?.Properties ?? {};
    expect(properties).toMatchObject({
      Name: 'shop.nightly',
      State: 'ENABLED',
      ScheduleExpression: 'rate(1 day)',
      ScheduleExpressionTimezone: 'UTC',
    });
    expect(SCHEDULED_TIME).toBe('<aws.scheduler.scheduled-time>');
    expect(JSON.parse(String((properties.Target as Record<string, unknown>).Input))).toEqual(
      expectedInput('shop', 'nightly', 'staging', 'prod'),
    );
  });

  it('keeps a disabled schedule as State DISABLED, so pausing it keeps its name', () => {
    const resources = render(registryWith({ shop: [promotion('paused', { enabled: false })] }));
    expect(resources.ScheduleShopPaused?.Properties.State).toBe('DISABLED');
  });

  it('writes a comment when the registry declares no schedules', () => {
    expect(scheduleLines(registryWith({ shop: [] }))).toEqual(['# (the registry declares no schedules)']);
  });

  it('refuses a name EventBridge Scheduler would refuse (more than 64 characters), naming the schedule', () => {
    const app = 'a-rather-long-application-name-for-a-shop';
    const registry = registryWith({ [app]: [promotion('promote-staging-to-prod')] });
    expect(() => scheduleLines(registry)).toThrow(DeriveError);
    expect(() => scheduleLines(registry)).toThrow(
      `applications.${app}.schedules.0: the EventBridge Scheduler name "${app}.promote-staging-to-prod" (<application>.<schedule name>) is 65 characters, more than 64: shorten the schedule name`,
    );
  });

  it('refuses two schedules whose logical ids collide', () => {
    const registry = registryWith({ 'shop-eu': [promotion('nightly')], shop: [promotion('eu-nightly')] });
    expect(() => scheduleResources(registry)).toThrow(/logical id ScheduleShopEuNightly is also that of/);
  });

  it('keeps names apart that only the separator tells apart', () => {
    const registry = registryWith({ 'shop-eu': [promotion('a')], shop: [promotion('eu-b')] });
    expect(scheduleResources(registry).map((r) => r.name)).toEqual(['shop-eu.a', 'shop.eu-b']);
  });
});
