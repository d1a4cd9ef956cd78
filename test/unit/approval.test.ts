import { readFileSync } from 'node:fs';
import {
  CloudFormationClient,
  DescribeChangeSetCommand,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  GetTemplateCommand,
} from '@aws-sdk/client-cloudformation';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { StsTargetAccess } from '#shared/aws/sts.ts';
import { approvalNeeded, samePerson, summariseChangeSet } from '#shared/deployments/approval.ts';
import { newDeployment } from '#shared/deployments/record.ts';
import { ChangeSetError, ChangeSetStaleError, TransientError } from '#shared/errors.ts';
import { parseRegistryText } from '#shared/registry/file.ts';
import type { ResourceChangeSummary } from '#shared/types.ts';
import { createTestStore } from '#test/support/store.ts';
import { review } from '../../functions/approval/core.ts';

const ARN =
  'arn:aws:cloudformation:eu-west-1:222222222222:changeSet/samcli-deploy1/0b8e2c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c';
const summarise = (changes: ResourceChangeSummary[], protectedResources: string[] = []) =>
  summariseChangeSet({ changeSetArn: ARN, changeSetId: 'samcli-deploy1', changes }, protectedResources);

describe('change set summary', () => {
  it('sorts changes into added, modified and removed, and lists access changes', () => {
    const summary = summarise([
      { action: 'Add', logicalId: 'Role', resourceType: 'AWS::IAM::Role' },
      { action: 'Modify', logicalId: 'Fn', resourceType: 'AWS::Lambda::Function', replacement: 'False' },
      { action: 'Modify', logicalId: 'Perm', resourceType: 'AWS::Lambda::Permission', replacement: 'False' },
      { action: 'Remove', logicalId: 'Old', resourceType: 'AWS::SQS::Queue' },
    ]);
    expect(summary.added.map((c) => c.logicalId)).toEqual(['Role']);
    expect(summary.modified.map((c) => c.logicalId)).toEqual(['Fn', 'Perm']);
    expect(summary.removed.map((c) => c.logicalId)).toEqual(['Old']);
    expect(summary.iam.map((c) => c.logicalId)).toEqual(['Role', 'Perm']);
    expect(summary.broadening).toEqual([
      'adds access: Role (AWS::IAM::Role)',
      'modifies access: Perm (AWS::Lambda::Permission)',
      'removes Old (AWS::SQS::Queue)',
    ]);
  });

  it('counts a conditional replacement and an unpredictable (Dynamic) change as broadening', () => {
    const summary = summarise([
      { action: 'Modify', logicalId: 'Db', resourceType: 'AWS::RDS::DBInstance', replacement: 'Conditional' },
      { action: 'Dynamic', logicalId: 'Nested', resourceType: 'AWS::CloudFormation::Stack' },
    ]);
    expect(summary.broadening).toEqual([
      'may replace Db (AWS::RDS::DBInstance)',
      'changes Nested (AWS::CloudFormation::Stack) in a way CloudFormation cannot predict',
    ]);
  });

  it('finds nothing broadening in a code-only change, unless the resource is protected', () => {
    const code = [
      { action: 'Modify', logicalId: 'Fn', resourceType: 'AWS::Lambda::Function', replacement: 'False' },
    ] as const;
    expect(summarise([...code]).broadening).toEqual([]);
    expect(summarise([...code], ['Fn']).broadening).toEqual(['touches protected resource Fn']);
  });

  it('asks always for required, only with reasons for on-broadening, never for none', () => {
    const quiet = summarise([]);
    const loud = summarise([{ action: 'Remove', logicalId: 'X', resourceType: 'AWS::S3::Bucket' }]);
    const env = (approval: 'none' | 'required' | 'on-broadening') => ({ approval }) as never;
    expect([approvalNeeded(env('required'), quiet), approvalNeeded(env('required'), loud)]).toEqual([
      true,
      true,
    ]);
    expect([approvalNeeded(env('on-broadening'), quiet), approvalNeeded(env('on-broadening'), loud)]).toEqual(
      [false, true],
    );
    expect(approvalNeeded(env('none'), loud)).toBe(false);
  });

  it('tells the same person across the extras a channel adds', () => {
    expect(
      samePerson(
        { type: 'slack', teamId: 'T1', userId: 'U1', userName: 'a' },
        { type: 'slack', teamId: 'T1', userId: 'U1' },
      ),
    ).toBe(true);
    expect(
      samePerson(
        { type: 'iam', arn: 'arn:aws:sts::1:assumed-role/R/s1', principal: 'arn:aws:iam::1:role/R' },
        { type: 'iam', arn: 'arn:aws:sts::1:assumed-role/R/s2', principal: 'arn:aws:iam::1:role/R' },
      ),
    ).toBe(true);
    expect(samePerson({ type: 'local', user: 'a' }, { type: 'slack', teamId: 'T1', userId: 'a' })).toBe(
      false,
    );
  });
});

describe('CloudFormation change set adapter (StsTargetAccess)', () => {
  const sts = mockClient(STSClient);
  const cfn = mockClient(CloudFormationClient);
  const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
  const params = {
    roleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
    sourceIdentity: 'local-alice-00000000',
    sessionName: 'crossdeploy-dep-1',
    durationSeconds: 900,
    region: 'eu-west-1',
    changeSetArn: ARN,
  };

  beforeEach(() => {
    sts.reset();
    cfn.reset();
    sts.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLE',
        SecretAccessKey: 'secret',
        SessionToken: 'token',
        Expiration: new Date(Date.now() + 900_000),
      },
    });
  });

  it('executes by ARN under a fresh session, and names a stale change set as such without the raw message', async () => {
    cfn.on(ExecuteChangeSetCommand).rejects(
      Object.assign(new Error(`ChangeSet [${ARN}] cannot be executed in its current status of [OBSOLETE]`), {
        name: 'InvalidChangeSetStatusException',
      }),
    );
    const error = await access.executeChangeSet(params).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChangeSetStaleError);
    expect((error as Error).message).not.toContain(ARN);
    expect(sts).toReceiveCommandTimes(AssumeRoleCommand, 1);
    expect(cfn).toReceiveCommandWith(ExecuteChangeSetCommand, { ChangeSetName: ARN });
  });

  it('retries throttling and reports any other failure by name only', async () => {
    cfn
      .on(ExecuteChangeSetCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    expect(await access.executeChangeSet(params).catch((e: unknown) => e)).toBeInstanceOf(TransientError);
    cfn.on(ExecuteChangeSetCommand).rejects(
      Object.assign(new Error(`User arn:aws:sts::222222222222:assumed-role/x is not authorized`), {
        name: 'AccessDenied',
      }),
    );
    const error = (await access.executeChangeSet(params).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ChangeSetError);
    expect(error.message).toBe('CloudFormation change set call failed (AccessDenied)');
  });

  it('reads every page of a change set', async () => {
    cfn
      .on(DescribeChangeSetCommand)
      .resolvesOnce({
        ChangeSetId: ARN,
        ChangeSetName: 'samcli-deploy1',
        Status: 'CREATE_COMPLETE',
        ExecutionStatus: 'AVAILABLE',
        Changes: [
          { ResourceChange: { Action: 'Add', LogicalResourceId: 'A', ResourceType: 'AWS::SQS::Queue' } },
        ],
        NextToken: 'page-2',
      })
      .resolvesOnce({
        ChangeSetId: ARN,
        Changes: [
          {
            ResourceChange: {
              Action: 'Modify',
              LogicalResourceId: 'B',
              ResourceType: 'AWS::S3::Bucket',
              Replacement: 'True',
            },
          },
        ],
      });
    const info = await access.describeChangeSet(params);
    expect(info).toMatchObject({ status: 'CREATE_COMPLETE', executionStatus: 'AVAILABLE' });
    expect(info.changes).toEqual([
      { action: 'Add', logicalId: 'A', resourceType: 'AWS::SQS::Queue' },
      { action: 'Modify', logicalId: 'B', resourceType: 'AWS::S3::Bucket', replacement: 'True' },
    ]);
    expect(cfn).toReceiveCommandWith(DescribeChangeSetCommand, { ChangeSetName: ARN, NextToken: 'page-2' });
  });

  it("reads the change set's template and the stack's as CloudFormation will apply them (GetTemplate, Processed), with the stack's parameters", async () => {
    cfn.on(GetTemplateCommand).callsFake(async (input: { ChangeSetName?: string }) => ({
      TemplateBody: input.ChangeSetName ? '{"Resources":{}}' : 'Resources: {}',
      StagesAvailable: ['Original', 'Processed'],
    }));
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'shop-prod',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
          Parameters: [
            { ParameterKey: 'Partner', ParameterValue: '111111111111' },
            { ParameterKey: 'Secret', ParameterValue: '****' },
          ],
        },
      ],
    });
    expect(await access.reviewTemplates({ ...params, stackName: 'shop-prod' })).toEqual({
      proposed: '{"Resources":{}}',
      current: { template: 'Resources: {}', parameters: { Partner: '111111111111', Secret: '****' } },
    });
    expect(cfn).toReceiveCommandWith(GetTemplateCommand, { ChangeSetName: ARN, TemplateStage: 'Processed' });
    expect(cfn).toReceiveCommandWith(GetTemplateCommand, {
      StackName: 'shop-prod',
      TemplateStage: 'Processed',
    });
    expect(cfn).toReceiveCommandWith(DescribeStacksCommand, { StackName: 'shop-prod' });
    expect(sts).toReceiveCommandTimes(AssumeRoleCommand, 1);
  });

  it('reads no current stack when the stack does not exist yet', async () => {
    cfn.on(GetTemplateCommand).callsFake(async (input: { StackName?: string }) => {
      if (input.StackName) {
        throw Object.assign(new Error('Stack with id shop-prod does not exist'), { name: 'ValidationError' });
      }
      return { TemplateBody: '{"Resources":{}}' };
    });
    expect(await access.reviewTemplates({ ...params, stackName: 'shop-prod' })).toEqual({
      proposed: '{"Resources":{}}',
    });
    expect(cfn).not.toReceiveCommand(DescribeStacksCommand);
  });

  it('refuses a change set template it cannot get, without the raw message', async () => {
    const review = { ...params, stackName: 'shop-prod' };
    cfn.on(GetTemplateCommand).rejects(
      Object.assign(new Error('User: arn:aws:sts::2:assumed-role/x is not authorized'), {
        name: 'AccessDenied',
      }),
    );
    const error = (await access.reviewTemplates(review).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ChangeSetError);
    expect(error.message).not.toMatch(/assumed-role/);
    cfn.on(GetTemplateCommand).resolves({});
    expect(await access.reviewTemplates(review).catch((e: unknown) => e)).toBeInstanceOf(ChangeSetError);
  });

  it('reads the parameter values of the change set, and none for a stack gone between its template and DescribeStacks', async () => {
    cfn.on(DescribeChangeSetCommand).resolves({
      ChangeSetId: ARN,
      Status: 'CREATE_COMPLETE',
      ExecutionStatus: 'AVAILABLE',
      Parameters: [
        { ParameterKey: 'Partner', ParameterValue: '999999999999' },
        { ParameterKey: 'Secret', ParameterValue: '****' },
      ],
    });
    expect((await access.describeChangeSet(params)).parameters).toEqual({
      Partner: '999999999999',
      Secret: '****',
    });
    cfn.on(GetTemplateCommand).resolves({ TemplateBody: 'Resources: {}' });
    cfn
      .on(DescribeStacksCommand)
      .rejects(
        Object.assign(new Error('Stack with id shop-prod does not exist'), { name: 'ValidationError' }),
      );
    expect((await access.reviewTemplates({ ...params, stackName: 'shop-prod' })).current).toEqual({
      template: 'Resources: {}',
      parameters: {},
    });
  });

  it("refuses the stack's parameters it cannot read, by name only", async () => {
    cfn.on(GetTemplateCommand).resolves({ TemplateBody: 'Resources: {}' });
    cfn.on(DescribeStacksCommand).rejects(
      Object.assign(new Error('User: arn:aws:sts::2:assumed-role/x is not authorized'), {
        name: 'AccessDenied',
      }),
    );
    const error = (await access
      .reviewTemplates({ ...params, stackName: 'shop-prod' })
      .catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ChangeSetError);
    expect(error.message).toBe('CloudFormation DescribeStacks failed (AccessDenied)');
  });

  describe('one review of a change set', () => {
    const registry = parseRegistryText(
      readFileSync(new URL('../fixtures/registry-approvals.yaml', import.meta.url), 'utf8'),
      'test/fixtures/registry-approvals.yaml',
    );
    const ROLE_TEMPLATE = JSON.stringify({
      Resources: {
        Role: {
          Type: 'AWS::IAM::Role',
          Properties: {
            AssumeRolePolicyDocument: {
              Statement: [
                { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
              ],
            },
          },
        },
      },
    });

    /** shop/prod (approval: required) with the deploy job's change set, reviewed by the real core. */
    async function reviewOnce({ stackExists = true } = {}) {
      const { store } = await createTestStore();
      const id = '01JNREVIEW0000000000000001';
      await store.createDeployment(
        newDeployment({
          deploymentId: id,
          application: 'shop',
          environment: 'prod',
          requester: { type: 'local', user: 'carol' },
          trigger: 'api',
          requestedAt: '2026-12-04T09:00:00.000Z',
        }),
      );
      await store.updateDeployment(id, { status: 'RUNNING', changeSetArn: ARN });
      cfn.on(DescribeChangeSetCommand).resolves({
        ChangeSetId: ARN,
        ChangeSetName: 'samcli-deploy1',
        Status: 'CREATE_COMPLETE',
        ExecutionStatus: 'AVAILABLE',
        Changes: [
          { ResourceChange: { Action: 'Add', LogicalResourceId: 'Role', ResourceType: 'AWS::IAM::Role' } },
        ],
      });
      cfn.on(GetTemplateCommand).callsFake(async (input: { StackName?: string }) => {
        if (input.StackName && !stackExists) {
          throw Object.assign(new Error('Stack with id shop-prod does not exist'), {
            name: 'ValidationError',
          });
        }
        return { TemplateBody: ROLE_TEMPLATE };
      });
      const clock = { now: () => new Date('2026-12-04T09:05:00.000Z') };
      const next = await review(id, { store, registry, changeSets: access, stacks: access, clock });
      return { next, reviewed: await store.getDeployment(id) };
    }

    it('assumes the deploy role once to describe the change set and once to read both templates and the parameters', async () => {
      cfn.on(DescribeStacksCommand).resolves({
        Stacks: [
          {
            StackName: 'shop-prod',
            StackStatus: 'UPDATE_COMPLETE',
            CreationTime: new Date(),
            Parameters: [{ ParameterKey: 'Stage', ParameterValue: 'prod' }],
          },
        ],
      });
      const { next, reviewed } = await reviewOnce();
      expect(next).toEqual({ next: 'WAIT', timeoutSeconds: 1800 });
      // The IAM review did read both templates and the stack's parameters...
      expect(reviewed?.changeSetSummary?.iamInventory).toBeDefined();
      expect(cfn).toReceiveCommandWith(GetTemplateCommand, {
        ChangeSetName: ARN,
        TemplateStage: 'Processed',
      });
      expect(cfn).toReceiveCommandWith(GetTemplateCommand, {
        StackName: 'shop-prod',
        TemplateStage: 'Processed',
      });
      expect(cfn).toReceiveCommandTimes(DescribeStacksCommand, 1);
      // ...under one session for all three reads, besides the one DescribeChangeSet used.
      expect(sts).toReceiveCommandTimes(AssumeRoleCommand, 2);
    });

    it('assumes the deploy role twice in all when the stack does not exist yet', async () => {
      const { reviewed } = await reviewOnce({ stackExists: false });
      // The proposed template alone is the inventory: everything in it is new.
      expect(reviewed?.changeSetSummary?.iamInventory).toBeDefined();
      expect(cfn).not.toReceiveCommand(DescribeStacksCommand);
      expect(sts).toReceiveCommandTimes(AssumeRoleCommand, 2);
    });
  });
});
