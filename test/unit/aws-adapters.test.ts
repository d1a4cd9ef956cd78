import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  DescribeExecutionCommand,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { StsTargetAccess } from '#shared/aws/sts.ts';
import { SfnTaskTokens } from '#shared/aws/task-tokens.ts';
import { SfnExecutionStatuses } from '#shared/aws/workflow.ts';

const SECRET = 'very/secret/key/EXAMPLEKEY0000000000000';
const params = {
  roleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
  externalId: 'ext-1',
  sourceIdentity: 'local-alice-0123abcd',
  sessionName: 'crossdeploy-d1',
  durationSeconds: 900,
  region: 'eu-west-1',
};

const sts = mockClient(STSClient);
const cfn = mockClient(CloudFormationClient);
const sfn = mockClient(SFNClient);

beforeEach(() => {
  sts.reset();
  cfn.reset();
  sfn.reset();
  sts.on(AssumeRoleCommand).resolves({
    Credentials: {
      AccessKeyId: 'ASIA1',
      SecretAccessKey: SECRET,
      SessionToken: 'tok',
      Expiration: new Date('2030-01-01T00:00:00Z'),
    },
  });
  sts.on(GetCallerIdentityCommand).resolves({
    Account: '222222222222',
    Arn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-d1',
  });
});

describe('StsTargetAccess', () => {
  it('assumes the role with ExternalId, SourceIdentity and session name, then asks who it is', async () => {
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    const identity = await access.preflight(params);
    expect(identity).toEqual({
      assumedRoleArn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-d1',
      account: '222222222222',
      expiration: '2030-01-01T00:00:00.000Z',
    });
    expect(sts).toReceiveCommandWith(AssumeRoleCommand, {
      RoleArn: params.roleArn,
      RoleSessionName: 'crossdeploy-d1',
      SourceIdentity: 'local-alice-0123abcd',
      ExternalId: 'ext-1',
      DurationSeconds: 900,
    });
    expect(sts).toReceiveCommandTimes(GetCallerIdentityCommand, 1);
    expect(JSON.stringify(identity)).not.toContain(SECRET);
  });

  it('never asks for more than the one-hour role-chaining limit', async () => {
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    await access.preflight({ ...params, durationSeconds: 7200 });
    expect(sts).toReceiveCommandWith(AssumeRoleCommand, { DurationSeconds: 3600 });
  });

  it('omits ExternalId when the registry sets none', async () => {
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    const { externalId: _unused, ...withoutExternalId } = params;
    await access.preflight(withoutExternalId);
    const input = sts.commandCalls(AssumeRoleCommand)[0]!.args[0].input;
    expect(input).not.toHaveProperty('ExternalId');
  });

  it('turns AccessDenied into a typed error that lists every candidate cause', async () => {
    sts.on(AssumeRoleCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    const error = (await access.preflight(params).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.name).toBe('RoleAssumptionError');
    expect(error.code).toBe('ROLE_ASSUMPTION_DENIED');
    for (const cause of [/sts:AssumeRole/, /trust policy/, /ExternalId/, /role exists/])
      expect(error.message).toMatch(cause);
  });

  it('hides the raw text of other STS errors', async () => {
    sts
      .on(AssumeRoleCommand)
      .rejects(Object.assign(new Error('RoleArn=... detail'), { name: 'MalformedPolicyDocument' }));
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    await expect(access.preflight(params)).rejects.toThrow('STS AssumeRole failed (MalformedPolicyDocument)');
  });

  it('names the caller credentials when AssumeRole itself gets InvalidClientTokenId', async () => {
    // STS API reference, common errors: InvalidClientTokenId, "The security token included in the request is invalid."
    sts.on(AssumeRoleCommand).rejects(
      Object.assign(new Error('The security token included in the request is invalid.'), {
        name: 'InvalidClientTokenId',
      }),
    );
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    const error = (await access.preflight(params).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.name).toBe('RoleAssumptionError');
    expect(error.message).toMatch(/no usable AWS credentials \(InvalidClientTokenId\)/);
  });

  describe('when the target region refuses the fresh session', () => {
    const regions: string[] = [];
    const access = new StsTargetAccess({
      sts: new STSClient({ region: 'us-east-1' }),
      clientFor: (region, credentials) => {
        regions.push(region);
        return {
          sts: new STSClient({ region, credentials }),
          cfn: new CloudFormationClient({ region, credentials }),
        };
      },
    });
    const target = { ...params, region: 'ap-east-1' };
    beforeEach(() => {
      regions.length = 0;
    });

    it.each([
      // An opt-in region the account has not enabled: its endpoint does not know the session's token.
      ['InvalidClientTokenId', 'The security token included in the request is invalid.'],
      // STS API reference, RegionDisabledException.
      [
        'RegionDisabledException',
        'STS is not activated in this region for account:222222222222. Your account administrator can ' +
          'activate STS in this region using the IAM Console.',
      ],
    ])('diagnoses %s as the region not enabled in the target account', async (name, message) => {
      sts.on(GetCallerIdentityCommand).rejects(Object.assign(new Error(message), { name }));
      const error = (await access.preflight(target).catch((e: unknown) => e)) as Error & {
        code: string;
        details: Record<string, unknown>;
      };
      expect(regions).toEqual(['ap-east-1']);
      expect(error.name).toBe('RoleAssumptionError');
      expect(error.message).toMatch(/STS is not activated in ap-east-1 for account 222222222222/);
      expect(error.message).toMatch(/\[confirmed, target 222222222222\]/);
      expect(error.details).toMatchObject({ region: 'ap-east-1', cause: 'region-disabled' });
      expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(SECRET);
    });

    it('retries a throttled regional call and hides the raw text of anything else', async () => {
      sts
        .on(GetCallerIdentityCommand)
        .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }))
        .rejectsOnce(Object.assign(new Error(`token ${SECRET}`), { name: 'InternalFailure' }));
      await expect(access.preflight(target)).rejects.toMatchObject({ name: 'TransientError' });
      const error = (await access.preflight(target).catch((e: unknown) => e)) as Error;
      expect(error.message).toBe(
        'STS GetCallerIdentity in ap-east-1 failed for the assumed session (InternalFailure)',
      );
    });
  });

  it('reads the target stack status through the assumed role, and undefined for a missing stack', async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolvesOnce({
        Stacks: [{ StackName: 's', StackStatus: 'UPDATE_IN_PROGRESS', CreationTime: new Date() }],
      })
      .rejects(Object.assign(new Error('Stack with id s does not exist'), { name: 'ValidationError' }));
    const access = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
    expect(await access.stackStatus({ ...params, stackName: 's' })).toBe('UPDATE_IN_PROGRESS');
    expect(await access.stackStatus({ ...params, stackName: 's' })).toBeUndefined();
    expect(cfn).toReceiveCommandWith(DescribeStacksCommand, { StackName: 's' });
  });
});

describe('SfnTaskTokens', () => {
  it('sends the output as JSON', async () => {
    sfn.on(SendTaskSuccessCommand).resolves({});
    expect(await new SfnTaskTokens(new SFNClient({ region: 'eu-west-1' })).succeed('t', { a: 1 })).toBe(
      'delivered',
    );
    expect(sfn).toReceiveCommandWith(SendTaskSuccessCommand, { taskToken: 't', output: '{"a":1}' });
  });

  it.each(['TaskDoesNotExist', 'TaskTimedOut'])('treats %s as a task that already moved on', async (name) => {
    sfn.on(SendTaskFailureCommand).rejects(Object.assign(new Error(name), { name }));
    expect(await new SfnTaskTokens(new SFNClient({ region: 'eu-west-1' })).fail('t', 'E', 'c')).toBe('gone');
  });

  it('passes other errors on', async () => {
    sfn.on(SendTaskSuccessCommand).rejects(Object.assign(new Error('x'), { name: 'InvalidToken' }));
    await expect(new SfnTaskTokens(new SFNClient({ region: 'eu-west-1' })).succeed('t', {})).rejects.toThrow(
      'x',
    );
  });
});

describe('SfnExecutionStatuses', () => {
  const statuses = () =>
    new SfnExecutionStatuses({
      client: new SFNClient({ region: 'eu-west-1' }),
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:crossdeploy-deploy',
    });

  it('describes the execution named after the deployment in the deploy state machine', async () => {
    sfn.on(DescribeExecutionCommand).resolves({ status: 'ABORTED' } as never);
    expect(await statuses().status('01JNDEAD000000000000000001')).toBe('ABORTED');
    expect(sfn.commandCalls(DescribeExecutionCommand).map((call) => call.args[0].input)).toEqual([
      {
        executionArn:
          'arn:aws:states:eu-west-1:123456789012:execution:crossdeploy-deploy:01JNDEAD000000000000000001',
      },
    ]);
  });

  it('answers undefined for an execution that does not exist, and passes other errors on', async () => {
    sfn
      .on(DescribeExecutionCommand)
      .rejectsOnce(Object.assign(new Error('gone'), { name: 'ExecutionDoesNotExist' }))
      .rejectsOnce(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    expect(await statuses().status('d1')).toBeUndefined();
    await expect(statuses().status('d1')).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });
});
