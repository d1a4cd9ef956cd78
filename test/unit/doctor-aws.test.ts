import {
  CloudFormationClient,
  DescribeStackDriftDetectionStatusCommand,
  DescribeStackResourceDriftsCommand,
  DescribeStacksCommand,
  DetectStackDriftCommand,
} from '@aws-sdk/client-cloudformation';
import { GetRoleCommand, IAMClient, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { HeadBucketCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { IamReader } from '#shared/aws/iam.ts';
import { AwsDoctorProbe } from '../../functions/doctor/aws-probe.ts';

/** The doctor's AWS adapter, at the SDK boundary: STS, CloudFormation, IAM and S3 through aws-sdk-client-mock. */

const SECRET = 'very/secret/key/EXAMPLEKEY0000000000000';
const params = {
  roleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
  externalId: 'ext-1',
  sourceIdentity: 'local-alice-0123abcd',
  sessionName: 'crossdeploy-01J0DOCTOR',
  durationSeconds: 7200,
  region: 'eu-west-1',
};
const DEPLOYER = 'arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deployer';
const DEPLOYER_SESSION = 'arn:aws:sts::111111111111:assumed-role/crossdeploy-deployer/1718000000000';

const sts = mockClient(STSClient);
const cfn = mockClient(CloudFormationClient);
const iam = mockClient(IAMClient);
const s3 = mockClient(S3Client);

const newProbe = () => new AwsDoctorProbe({ sts: new STSClient({ region: 'us-east-1' }) });

/** The client that sent a call. */
function clientOf(call: { thisValue: unknown } | undefined): IAMClient | S3Client {
  if (!call) throw new Error('the command was not sent');
  return call.thisValue as IAMClient | S3Client;
}

/** Its region and credentials (a client resolves both to providers). */
async function configOf(call: { thisValue: unknown } | undefined) {
  const { config } = clientOf(call);
  return { region: await config.region(), credentials: await config.credentials() };
}

beforeEach(() => {
  sts.reset();
  cfn.reset();
  iam.reset();
  s3.reset();
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
    const session = await newProbe().assume(params);
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
    expect(JSON.stringify(session)).not.toContain(SECRET);
    expect(await session.identity()).toEqual({
      account: '222222222222',
      arn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR',
    });
  });

  it('retries without SourceIdentity for the diagnosis, and reports a denial as false', async () => {
    const probes = newProbe().denialProbes(params);
    expect(await probes.assumeWithoutSourceIdentity?.()).toBe(true);
    const input = sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input;
    expect(input).not.toHaveProperty('SourceIdentity');
    sts.on(AssumeRoleCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    expect(await probes.assumeWithoutSourceIdentity?.()).toBe(false);
  });

  it("reads the stack's status, and undefined for a stack that does not exist", async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolvesOnce({
        Stacks: [{ StackName: 's', StackStatus: 'UPDATE_ROLLBACK_FAILED', CreationTime: new Date() }],
      })
      .rejects(Object.assign(new Error('Stack with id s does not exist'), { name: 'ValidationError' }));
    const session = await newProbe().assume(params);
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
    const session = await newProbe().assume(params);
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

  it('narrows a denial down with IAM in the orchestrator account, using its own credentials', async () => {
    iam.on(GetRoleCommand, { RoleName: 'crossdeploy-deployer' }).resolves({
      Role: {
        Arn: DEPLOYER,
        RoleName: 'crossdeploy-deployer',
        RoleId: 'AROA1',
        Path: '/crossdeploy/',
        CreateDate: new Date(),
      },
    });
    iam.on(SimulatePrincipalPolicyCommand).resolves({
      EvaluationResults: [
        { EvalActionName: 'sts:AssumeRole', EvalResourceName: params.roleArn, EvalDecision: 'allowed' },
        {
          EvalActionName: 'sts:SetSourceIdentity',
          EvalResourceName: params.roleArn,
          EvalDecision: 'implicitDeny',
        },
      ],
    });
    const probes = newProbe().denialProbes(params);
    expect(await probes.callerRoleArn?.(DEPLOYER_SESSION)).toBe(DEPLOYER);
    expect(
      await probes.simulate?.(DEPLOYER, ['sts:AssumeRole', 'sts:SetSourceIdentity'], params.roleArn),
    ).toEqual({ 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'implicitDeny' });
    expect(iam).toReceiveCommandWith(SimulatePrincipalPolicyCommand, {
      PolicySourceArn: DEPLOYER,
      ActionNames: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      ResourceArns: [params.roleArn],
    });
    expect(iam.commandCalls(SimulatePrincipalPolicyCommand)[0]?.args[0].input).not.toHaveProperty(
      'ContextEntries',
    );
    // With the source credentials (no session was assumed), IAM's endpoint in the partition of STS's region.
    expect(sts).not.toReceiveCommand(AssumeRoleCommand);
    const [call] = iam.commandCalls(SimulatePrincipalPolicyCommand);
    expect(await clientOf(call).config.region()).toBe('us-east-1');
  });

  it("looks a role up only in the caller's own account", async () => {
    sts.on(GetCallerIdentityCommand).resolves({ Account: '111111111111', Arn: DEPLOYER_SESSION });
    iam.on(GetRoleCommand).rejects(
      Object.assign(new Error('The role with name crossdeploy-deploy cannot be found.'), {
        name: 'NoSuchEntityException',
      }),
    );
    const probes = newProbe().denialProbes(params);
    expect(await probes.roleExists?.(params.roleArn)).toBeUndefined();
    expect(iam).not.toReceiveCommand(GetRoleCommand);
    expect(await probes.roleExists?.('arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deploy')).toBe(
      false,
    );
    expect(iam).toReceiveCommandWith(GetRoleCommand, { RoleName: 'crossdeploy-deploy' });
  });

  it('checks PassRole with the iam:PassedToService context, and the bucket region with the session', async () => {
    iam.on(SimulatePrincipalPolicyCommand).resolves({
      EvaluationResults: [{ EvalActionName: 'iam:PassRole', EvalDecision: 'implicitDeny' }],
    });
    s3.on(HeadBucketCommand, { Bucket: 'b' }).resolves({ BucketRegion: 'eu-west-1' });
    const session = await newProbe().assume(params);
    expect(await session.canPassRole(params.roleArn, 'arn:aws:iam::222222222222:role/exec')).toBe(
      'implicitDeny',
    );
    expect(await session.bucketRegion('b')).toBe('eu-west-1');
    expect(iam).toReceiveCommandWith(SimulatePrincipalPolicyCommand, {
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
    });
    expect(s3).toReceiveCommandWith(HeadBucketCommand, { Bucket: 'b' });
    // Clients built from the assumed credentials, in the target region.
    for (const call of [
      iam.commandCalls(SimulatePrincipalPolicyCommand)[0],
      s3.commandCalls(HeadBucketCommand)[0],
    ]) {
      expect(await configOf(call)).toMatchObject({
        region: 'eu-west-1',
        credentials: { accessKeyId: 'ASIA1', sessionToken: 'tok' },
      });
    }
  });

  it("never shares a session's clients with another target", async () => {
    s3.on(HeadBucketCommand).resolves({ BucketRegion: 'eu-west-1' });
    const probe = newProbe();
    await (await probe.assume(params)).bucketRegion('b');
    await (await probe.assume({ ...params, region: 'eu-central-1' })).bucketRegion('b');
    const [first, second] = s3.commandCalls(HeadBucketCommand);
    expect(clientOf(first)).not.toBe(clientOf(second));
    expect((await configOf(second)).region).toBe('eu-central-1');
  });

  it.each([
    [301, 'Unknown', 'Unknown'],
    [403, 'Unknown', 'AccessDenied'],
    [404, 'NotFound', 'NotFound'],
  ])('reports the region S3 names when HeadBucket answers %i', async (status, sdkName, name) => {
    // The shape the SDK gives a HEAD error, which has no body: the status and headers only.
    const refusal = new S3ServiceException({
      name: sdkName,
      $fault: 'client',
      $metadata: { httpStatusCode: status },
      message: 'UnknownError',
    });
    Object.defineProperty(refusal, '$response', {
      value: { statusCode: status, headers: { 'x-amz-bucket-region': 'us-east-1' } },
    });
    s3.on(HeadBucketCommand).rejects(refusal);
    const session = await newProbe().assume(params);
    await expect(session.bucketRegion('b')).rejects.toMatchObject({ name, region: 'us-east-1' });
  });
});

describe('IamReader', () => {
  const reader = () => new IamReader({ client: new IAMClient({ region: 'us-east-1' }) });

  it('maps simulation decisions, counting anything unknown as not allowed', async () => {
    iam.on(SimulatePrincipalPolicyCommand).resolves({
      EvaluationResults: [
        { EvalActionName: 'sts:AssumeRole', EvalDecision: 'allowed' },
        { EvalActionName: 'sts:SetSourceIdentity', EvalDecision: 'somethingNew' as never },
        { EvalActionName: 'iam:PassRole', EvalDecision: 'explicitDeny' },
      ],
    });
    expect(
      await reader().simulate(
        'arn:aws:iam::1:role/r',
        ['sts:AssumeRole', 'sts:SetSourceIdentity', 'iam:PassRole'],
        'arn:x',
      ),
    ).toEqual({
      'sts:AssumeRole': 'allowed',
      'sts:SetSourceIdentity': 'implicitDeny',
      'iam:PassRole': 'explicitDeny',
    });
  });

  it('reads a role by name with its decoded trust policy, and undefined for NoSuchEntity', async () => {
    const trust = { Statement: [{ Principal: { Service: 'cloudformation.amazonaws.com' } }] };
    iam
      .on(GetRoleCommand, { RoleName: 'exec' })
      .resolves({
        Role: {
          Arn: 'arn:aws:iam::1:role/p/exec',
          RoleName: 'exec',
          RoleId: 'AROA2',
          Path: '/p/',
          CreateDate: new Date(),
          AssumeRolePolicyDocument: encodeURIComponent(JSON.stringify(trust)),
        },
      })
      .on(GetRoleCommand, { RoleName: 'x' })
      .rejects(
        Object.assign(new Error('The role with name x cannot be found.'), { name: 'NoSuchEntityException' }),
      );
    expect(await reader().role('arn:aws:iam::1:role/p/exec')).toEqual({
      arn: 'arn:aws:iam::1:role/p/exec',
      trustPolicy: trust,
    });
    expect(iam).toReceiveCommandWith(GetRoleCommand, { RoleName: 'exec' });
    expect(await reader().role('arn:aws:iam::1:role/x')).toBeUndefined();
  });

  it('passes on any other IAM error', async () => {
    iam
      .on(GetRoleCommand)
      .rejects(
        Object.assign(new Error('User is not authorized to perform: iam:GetRole'), { name: 'AccessDenied' }),
      );
    await expect(reader().role('arn:aws:iam::1:role/p/exec')).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('sends nothing for something that is not a role ARN', async () => {
    expect(await reader().role('arn:aws:iam::1:user/alice')).toBeUndefined();
    expect(iam).not.toReceiveCommand(GetRoleCommand);
  });
});
