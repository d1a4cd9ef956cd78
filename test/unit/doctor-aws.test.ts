import {
  CloudFormationClient,
  DescribeStackDriftDetectionStatusCommand,
  DescribeStackResourceDriftsCommand,
  DescribeStacksCommand,
  DetectStackDriftCommand,
} from '@aws-sdk/client-cloudformation';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { IamReader, type IamSdk } from '#shared/aws/iam.ts';
import { AwsDoctorProbe } from '../../functions/doctor/aws-probe.ts';

/**
 * The doctor's AWS adapter. STS and CloudFormation through aws-sdk-client-mock; IAM and S3 are not
 * dependencies yet (functions/shared/aws/iam.ts), so their SDK is a recording stand-in with the same shape.
 */

const SECRET = 'very/secret/key/EXAMPLEKEY0000000000000';
const params = {
  roleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
  externalId: 'ext-1',
  sourceIdentity: 'local-alice-0123abcd',
  sessionName: 'crossdeploy-01J0DOCTOR',
  durationSeconds: 7200,
  region: 'eu-west-1',
};

const sts = mockClient(STSClient);
const cfn = mockClient(CloudFormationClient);

/** A stand-in SDK module: each command records its input; `answers` replies per command name. */
function fakeSdk(answers: Record<string, (input: Record<string, unknown>) => unknown>) {
  const sent: { command: string; input: Record<string, unknown>; config: unknown }[] = [];
  const command = (name: string) =>
    class {
      readonly name = name;
      readonly input: Record<string, unknown>;
      constructor(input: Record<string, unknown>) {
        this.input = input;
      }
    };
  const client = class {
    readonly config: unknown;
    constructor(config: unknown) {
      this.config = config;
    }
    async send(cmd: { name: string; input: Record<string, unknown> }) {
      sent.push({ command: cmd.name, input: cmd.input, config: this.config });
      const answer = answers[cmd.name];
      if (!answer) throw new Error(`no answer for ${cmd.name}`);
      return answer(cmd.input);
    }
  };
  return {
    sent,
    iam: {
      IAMClient: client,
      GetRoleCommand: command('GetRole'),
      SimulatePrincipalPolicyCommand: command('SimulatePrincipalPolicy'),
    } as unknown as IamSdk,
    s3: { S3Client: client, HeadBucketCommand: command('HeadBucket') } as never,
  };
}

beforeEach(() => {
  sts.reset();
  cfn.reset();
  sts.on(AssumeRoleCommand).resolves({
    Credentials: {
      AccessKeyId: 'ASIA1',
      SecretAccessKey: SECRET,
      SessionToken: 'tok',
      Expiration: new Date('2030-01-01T00:00:00Z'),
    },
    AssumedRoleUser: {
      Arn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR',
      AssumedRoleId: 'AROA:x',
    },
  });
  sts.on(GetCallerIdentityCommand).resolves({
    Account: '222222222222',
    Arn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR',
  });
});

describe('AwsDoctorProbe', () => {
  it('sends AssumeRole exactly as asked: no clamped duration, ExternalId and SourceIdentity included', async () => {
    const probe = new AwsDoctorProbe({
      sts: new STSClient({ region: 'eu-west-1' }),
      iamSdk: undefined,
      s3Sdk: undefined,
    });
    const session = await probe.assume(params);
    expect(sts).toReceiveCommandWith(AssumeRoleCommand, {
      RoleArn: params.roleArn,
      RoleSessionName: 'crossdeploy-01J0DOCTOR',
      SourceIdentity: 'local-alice-0123abcd',
      ExternalId: 'ext-1',
      DurationSeconds: 7200,
    });
    expect(session.assumedRoleArn).toBe(
      'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR',
    );
    expect(session.unavailable).toEqual({
      iam: expect.stringMatching(/@aws-sdk\/client-iam/),
      s3: expect.stringMatching(/@aws-sdk\/client-s3/),
    });
    expect(JSON.stringify(session)).not.toContain(SECRET);
    expect(await session.identity()).toEqual({
      account: '222222222222',
      arn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR',
    });
  });

  it('retries without SourceIdentity for the diagnosis, and reports a denial as false', async () => {
    const probe = new AwsDoctorProbe({
      sts: new STSClient({ region: 'eu-west-1' }),
      iamSdk: undefined,
      s3Sdk: undefined,
    });
    const probes = probe.denialProbes(params);
    expect(await probes.assumeWithoutSourceIdentity?.()).toBe(true);
    const input = sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input;
    expect(input).not.toHaveProperty('SourceIdentity');
    sts.on(AssumeRoleCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    expect(await probes.assumeWithoutSourceIdentity?.()).toBe(false);
    expect(probes.simulate).toBeUndefined();
  });

  it("reads the stack's status, and undefined for a stack that does not exist", async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolvesOnce({
        Stacks: [{ StackName: 's', StackStatus: 'UPDATE_ROLLBACK_FAILED', CreationTime: new Date() }],
      })
      .rejects(Object.assign(new Error('Stack with id s does not exist'), { name: 'ValidationError' }));
    const probe = new AwsDoctorProbe({
      sts: new STSClient({ region: 'eu-west-1' }),
      iamSdk: undefined,
      s3Sdk: undefined,
    });
    const session = await probe.assume(params);
    expect(await session.stackStatus('s')).toBe('UPDATE_ROLLBACK_FAILED');
    expect(await session.stackStatus('s')).toBeUndefined();
  });

  it('starts drift detection and lists the drifted resources when it is done', async () => {
    cfn.on(DetectStackDriftCommand).resolves({ StackDriftDetectionId: 'd-1' });
    cfn
      .on(DescribeStackDriftDetectionStatusCommand)
      .resolvesOnce({
        StackId: 'arn:s',
        StackDriftDetectionId: 'd-1',
        DetectionStatus: 'DETECTION_IN_PROGRESS',
        Timestamp: new Date(),
      })
      .resolves({
        StackId: 'arn:s',
        StackDriftDetectionId: 'd-1',
        DetectionStatus: 'DETECTION_COMPLETE',
        StackDriftStatus: 'DRIFTED',
        Timestamp: new Date(),
      });
    cfn.on(DescribeStackResourceDriftsCommand).resolves({
      StackResourceDrifts: [
        {
          StackId: 'arn:s',
          LogicalResourceId: 'HelloFunction',
          ResourceType: 'AWS::Lambda::Function',
          StackResourceDriftStatus: 'MODIFIED',
          Timestamp: new Date(),
        },
      ],
    });
    const session = await new AwsDoctorProbe({
      sts: new STSClient({ region: 'eu-west-1' }),
      iamSdk: undefined,
      s3Sdk: undefined,
    }).assume(params);
    expect(await session.startDriftDetection('s')).toBe('d-1');
    expect(await session.driftStatus('d-1')).toEqual({ state: 'running' });
    expect(await session.driftStatus('d-1')).toEqual({
      state: 'done',
      stackDriftStatus: 'DRIFTED',
      drifted: ['HelloFunction (MODIFIED)'],
    });
    expect(cfn).toReceiveCommandWith(DescribeStackResourceDriftsCommand, {
      StackName: 'arn:s',
      StackResourceDriftStatusFilters: ['MODIFIED', 'DELETED'],
    });
  });

  it('checks PassRole with the iam:PassedToService context, and the bucket region with the session', async () => {
    const sdk = fakeSdk({
      SimulatePrincipalPolicy: () => ({
        EvaluationResults: [{ EvalActionName: 'iam:PassRole', EvalDecision: 'implicitDeny' }],
      }),
      HeadBucket: () => ({ BucketRegion: 'eu-west-1' }),
    });
    const session = await new AwsDoctorProbe({
      sts: new STSClient({ region: 'eu-west-1' }),
      iamSdk: sdk.iam,
      s3Sdk: sdk.s3,
    }).assume(params);
    expect(await session.canPassRole(params.roleArn, 'arn:aws:iam::222222222222:role/exec')).toBe(
      'implicitDeny',
    );
    expect(await session.bucketRegion('b')).toBe('eu-west-1');
    expect(sdk.sent[0]).toMatchObject({
      command: 'SimulatePrincipalPolicy',
      input: {
        PolicySourceArn: params.roleArn,
        ActionNames: ['iam:PassRole'],
        ResourceArns: ['arn:aws:iam::222222222222:role/exec'],
        ContextEntries: [
          {
            ContextKeyName: 'iam:PassedToService',
            ContextKeyType: 'string',
            ContextKeyValues: ['cloudformation.amazonaws.com'],
          },
        ],
      },
      // Clients built from the assumed credentials, in the target region.
      config: { region: 'eu-west-1', credentials: { accessKeyId: 'ASIA1' } },
    });
    expect(sdk.sent[1]).toMatchObject({ command: 'HeadBucket', input: { Bucket: 'b' } });
  });

  it('reports the region S3 names when HeadBucket refuses', async () => {
    const sdk = fakeSdk({
      HeadBucket: () => {
        throw Object.assign(new Error('UnknownError'), {
          name: 'Unknown',
          $metadata: { httpStatusCode: 301 },
          $response: { headers: { 'x-amz-bucket-region': 'us-east-1' } },
        });
      },
    });
    const session = await new AwsDoctorProbe({
      sts: new STSClient({ region: 'eu-west-1' }),
      iamSdk: undefined,
      s3Sdk: sdk.s3,
    }).assume(params);
    await expect(session.bucketRegion('b')).rejects.toMatchObject({ region: 'us-east-1' });
  });
});

describe('IamReader', () => {
  it('maps simulation decisions, counting anything unknown as not allowed', async () => {
    const sdk = fakeSdk({
      SimulatePrincipalPolicy: () => ({
        EvaluationResults: [
          { EvalActionName: 'sts:AssumeRole', EvalDecision: 'allowed' },
          { EvalActionName: 'sts:SetSourceIdentity', EvalDecision: 'somethingNew' },
        ],
      }),
    });
    const reader = new IamReader({ client: new sdk.iam.IAMClient({}), sdk: sdk.iam });
    expect(
      await reader.simulate('arn:aws:iam::1:role/r', ['sts:AssumeRole', 'sts:SetSourceIdentity'], 'arn:x'),
    ).toEqual({
      'sts:AssumeRole': 'allowed',
      'sts:SetSourceIdentity': 'implicitDeny',
    });
  });

  it('reads a role by name with its decoded trust policy, and undefined for NoSuchEntity', async () => {
    const trust = { Statement: [{ Principal: { Service: 'cloudformation.amazonaws.com' } }] };
    let first = true;
    const sdk = fakeSdk({
      GetRole: () => {
        if (!first)
          throw Object.assign(new Error('The role with name x cannot be found.'), {
            name: 'NoSuchEntityException',
          });
        first = false;
        return {
          Role: {
            Arn: 'arn:aws:iam::1:role/p/exec',
            AssumeRolePolicyDocument: encodeURIComponent(JSON.stringify(trust)),
          },
        };
      },
    });
    const reader = new IamReader({ client: new sdk.iam.IAMClient({}), sdk: sdk.iam });
    expect(await reader.role('arn:aws:iam::1:role/p/exec')).toEqual({
      arn: 'arn:aws:iam::1:role/p/exec',
      trustPolicy: trust,
    });
    expect(sdk.sent[0]?.input).toEqual({ RoleName: 'exec' });
    expect(await reader.role('arn:aws:iam::1:role/x')).toBeUndefined();
  });
});
