import {
  CloudFormationClient,
  DescribeStackDriftDetectionStatusCommand,
  DescribeStackResourceDriftsCommand,
  DescribeStacksCommand,
  DetectStackDriftCommand,
} from '@aws-sdk/client-cloudformation';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { IAM_SDK_PACKAGE, IamReader, type IamSdk, loadIamSdk, loadOptionalModule } from '#shared/aws/iam.ts';
import type { AssumeRoleProbes } from '#shared/diagnose.ts';
import { parseRoleArn } from '#shared/diagnose-statements.ts';
import type { AssumeRoleParams } from '#shared/ports.ts';
import type { DoctorProbe, DriftStatus, Identity, TargetSession, Unavailable } from './ports.ts';

/**
 * The doctor's probe on AWS. The source credentials are the process's (the deployer role in Lambda, the
 * caller's own chain with --local); assumed credentials stay in the TargetSession's closure and its per-session
 * clients, which are never cached across targets.
 */

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };
type Assumed = { credentials: Credentials; assumedRoleArn: string };

/** The part of @aws-sdk/client-s3 the bucket check uses (loaded when first needed, like IAM: see iam.ts). */
interface S3Sdk {
  S3Client: new (config: {
    region: string;
    credentials: Credentials;
  }) => {
    send(command: unknown): Promise<unknown>;
  };
  HeadBucketCommand: new (input: { Bucket: string }) => unknown;
}
const S3_SDK_PACKAGE = '@aws-sdk/client-s3';

const missing = (name: string) => `needs ${name}, which is not installed (npm install ${name})`;

export interface AwsDoctorProbeOptions {
  /** STS for the source credentials, in the region the deploy job calls STS from. */
  sts: STSClient;
  iamSdk?: IamSdk | undefined;
  s3Sdk?: S3Sdk | undefined;
}

export class AwsDoctorProbe implements DoctorProbe {
  private readonly sts: STSClient;
  private readonly iamSdk: IamSdk | undefined;
  private readonly s3Sdk: S3Sdk | undefined;
  private callerIam: IamReader | undefined;

  constructor(options: AwsDoctorProbeOptions) {
    this.sts = options.sts;
    this.iamSdk = 'iamSdk' in options ? options.iamSdk : loadIamSdk();
    this.s3Sdk = 's3Sdk' in options ? options.s3Sdk : loadOptionalModule<S3Sdk>(S3_SDK_PACKAGE);
  }

  async callerIdentity(): Promise<Identity> {
    const me = await this.sts.send(new GetCallerIdentityCommand({}));
    return { arn: me.Arn ?? '', account: me.Account ?? '' };
  }

  private async credentials(params: AssumeRoleParams, withSourceIdentity = true): Promise<Assumed> {
    const { Credentials: c, AssumedRoleUser } = await this.sts.send(
      new AssumeRoleCommand({
        RoleArn: params.roleArn,
        RoleSessionName: params.sessionName,
        ...(withSourceIdentity ? { SourceIdentity: params.sourceIdentity } : {}),
        DurationSeconds: params.durationSeconds,
        ...(params.externalId ? { ExternalId: params.externalId } : {}),
      }),
    );
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      throw Object.assign(new Error('STS returned no credentials'), { name: 'NoCredentials' });
    }
    return {
      credentials: {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      },
      assumedRoleArn: AssumedRoleUser?.Arn ?? params.roleArn,
    };
  }

  async assume(params: AssumeRoleParams): Promise<TargetSession> {
    const { credentials, assumedRoleArn } = await this.credentials(params);
    return targetSession({
      region: params.region,
      credentials,
      assumedRoleArn,
      iamSdk: this.iamSdk,
      s3Sdk: this.s3Sdk,
    });
  }

  private iam(): IamReader | undefined {
    if (!this.iamSdk) return undefined;
    this.callerIam ??= new IamReader({
      client: new this.iamSdk.IAMClient({ region: regionOf(this.sts) }),
      sdk: this.iamSdk,
    });
    return this.callerIam;
  }

  denialProbes(params: AssumeRoleParams): AssumeRoleProbes {
    const iam = this.iam();
    return {
      ...(iam
        ? {
            callerRoleArn: async (sessionArn: string) => {
              const name = /:assumed-role\/([^/]+)\//.exec(sessionArn)?.[1];
              return name ? (await iam.role(`arn:aws:iam::000000000000:role/${name}`))?.arn : undefined;
            },
            simulate: (principal, actions, resource) => iam.simulate(principal, actions, resource),
            roleExists: async (roleArn: string) => {
              // GetRole reads only the caller's own account: a role elsewhere cannot be looked up.
              const me = await this.callerIdentity();
              if (parseRoleArn(roleArn)?.account !== me.account) return undefined;
              return (await iam.role(roleArn))?.arn === roleArn;
            },
          }
        : {}),
      assumeWithoutSourceIdentity: async () => {
        try {
          // The session is dropped at once; only whether STS agreed matters.
          await this.credentials(params, false);
          return true;
        } catch (error) {
          if (/^AccessDenied/.test((error as { name?: string }).name ?? '')) return false;
          throw error;
        }
      },
    };
  }
}

function regionOf(client: STSClient): string | undefined {
  const region = client.config.region;
  return typeof region === 'string' ? region : undefined;
}

function targetSession(options: {
  region: string;
  credentials: Credentials;
  assumedRoleArn: string;
  iamSdk: IamSdk | undefined;
  s3Sdk: S3Sdk | undefined;
}): TargetSession {
  const { region, credentials, iamSdk, s3Sdk } = options;
  const sts = new STSClient({ region, credentials });
  const cfn = new CloudFormationClient({ region, credentials });
  const iam = iamSdk
    ? new IamReader({ client: new iamSdk.IAMClient({ region, credentials }), sdk: iamSdk })
    : undefined;
  const unavailable: Unavailable = {
    ...(iamSdk ? {} : { iam: missing(IAM_SDK_PACKAGE) }),
    ...(s3Sdk ? {} : { s3: missing(S3_SDK_PACKAGE) }),
  };
  const needIam = () => {
    if (!iam) throw Object.assign(new Error(unavailable.iam), { name: 'SdkMissing' });
    return iam;
  };
  return {
    assumedRoleArn: options.assumedRoleArn,
    expiration: credentials.expiration.toISOString(),
    unavailable,
    async identity() {
      const me = await sts.send(new GetCallerIdentityCommand({}));
      return { arn: me.Arn ?? '', account: me.Account ?? '' };
    },
    role: (roleArn) => needIam().role(roleArn),
    async canPassRole(principalArn, roleArn) {
      const decisions = await needIam().simulate(principalArn, ['iam:PassRole'], roleArn, {
        'iam:PassedToService': 'cloudformation.amazonaws.com',
      });
      return decisions['iam:PassRole'] ?? 'implicitDeny';
    },
    async stackStatus(stackName) {
      try {
        const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
        return Stacks[0]?.StackStatus;
      } catch (error) {
        if ((error as { message?: string }).message?.includes('does not exist')) return undefined;
        throw error;
      }
    },
    async bucketRegion(bucket) {
      if (!s3Sdk) throw Object.assign(new Error(unavailable.s3), { name: 'SdkMissing' });
      const s3 = new s3Sdk.S3Client({ region, credentials });
      try {
        const output = (await s3.send(new s3Sdk.HeadBucketCommand({ Bucket: bucket }))) as {
          BucketRegion?: string;
        };
        return output.BucketRegion;
      } catch (error) {
        // S3 names the bucket's region in a header even when it refuses or redirects.
        const headers =
          (error as { $response?: { headers?: Record<string, string> } }).$response?.headers ?? {};
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        const name = status === 404 ? 'NotFound' : status === 403 ? 'AccessDenied' : (error as Error).name;
        throw Object.assign(new Error(`HeadBucket ${bucket}: ${name}`), {
          name,
          ...(headers['x-amz-bucket-region'] ? { region: headers['x-amz-bucket-region'] } : {}),
        });
      }
    },
    async startDriftDetection(stackName) {
      const { StackDriftDetectionId } = await cfn.send(new DetectStackDriftCommand({ StackName: stackName }));
      if (!StackDriftDetectionId)
        throw Object.assign(new Error('no drift detection id'), { name: 'NoDetectionId' });
      return StackDriftDetectionId;
    },
    async driftStatus(detectionId): Promise<DriftStatus> {
      const status = await cfn.send(
        new DescribeStackDriftDetectionStatusCommand({ StackDriftDetectionId: detectionId }),
      );
      if (status.DetectionStatus === 'DETECTION_IN_PROGRESS') return { state: 'running' };
      if (status.DetectionStatus === 'DETECTION_FAILED') {
        return { state: 'failed', reason: status.DetectionStatusReason ?? 'unknown reason' };
      }
      let drifted: string[] = [];
      if (status.StackDriftStatus === 'DRIFTED' && status.StackId) {
        const { StackResourceDrifts = [] } = await cfn.send(
          new DescribeStackResourceDriftsCommand({
            StackName: status.StackId,
            StackResourceDriftStatusFilters: ['MODIFIED', 'DELETED'],
          }),
        );
        drifted = StackResourceDrifts.map((d) => `${d.LogicalResourceId} (${d.StackResourceDriftStatus})`);
      }
      return { state: 'done', stackDriftStatus: status.StackDriftStatus ?? 'UNKNOWN', drifted };
    },
  };
}
