import {
  CloudFormationClient,
  DescribeStackDriftDetectionStatusCommand,
  DescribeStackResourceDriftsCommand,
  DescribeStacksCommand,
  DetectStackDriftCommand,
} from '@aws-sdk/client-cloudformation';
import { IAMClient } from '@aws-sdk/client-iam';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { IamReader } from '#shared/aws/iam.ts';
import type { AssumeRoleProbes } from '#shared/diagnosis/evidence.ts';
import { parseRoleArn } from '#shared/diagnosis/statements.ts';
import type { AssumeRoleParams } from '#shared/ports.ts';
import type { DoctorProbe, DriftStatus, Identity, TargetSession } from './ports.ts';

/**
 * The doctor's probe on AWS. The source credentials are the process's (the deployer role in Lambda, the
 * caller's own chain with --local); assumed credentials stay in the TargetSession's closure and its per-session
 * clients, which are never cached across targets. Each client is built when a check first needs it.
 */

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };
type Assumed = { credentials: Credentials; assumedRoleArn: string };

export interface AwsDoctorProbeOptions {
  /** STS for the source credentials, in the region the deploy job calls STS from. */
  sts: STSClient;
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

export class AwsDoctorProbe implements DoctorProbe {
  private readonly sts: STSClient;
  /** IAM in the orchestrator's own account, with the source credentials: only a denial needs it. */
  private readonly iam: () => IamReader;

  constructor(options: AwsDoctorProbeOptions) {
    this.sts = options.sts;
    // IAM is global; the region only picks the partition's endpoint, so STS's (a resolved provider) serves.
    this.iam = lazy(() => new IamReader({ client: new IAMClient({ region: this.sts.config.region }) }));
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
    return targetSession({ region: params.region, credentials, assumedRoleArn });
  }

  denialProbes(params: AssumeRoleParams): AssumeRoleProbes {
    return {
      callerRoleArn: async (sessionArn: string) => {
        const name = /:assumed-role\/([^/]+)\//.exec(sessionArn)?.[1];
        return name ? (await this.iam().role(`arn:aws:iam::000000000000:role/${name}`))?.arn : undefined;
      },
      simulate: (principal, actions, resource) => this.iam().simulate(principal, actions, resource),
      roleExists: async (roleArn: string) => {
        // GetRole reads only the caller's own account: a role elsewhere cannot be looked up.
        const me = await this.callerIdentity();
        if (parseRoleArn(roleArn)?.account !== me.account) return undefined;
        return (await this.iam().role(roleArn))?.arn === roleArn;
      },
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

function targetSession(options: {
  region: string;
  credentials: Credentials;
  assumedRoleArn: string;
}): TargetSession {
  const { region, credentials } = options;
  const sts = lazy(() => new STSClient({ region, credentials }));
  const cfn = lazy(() => new CloudFormationClient({ region, credentials }));
  const iam = lazy(() => new IamReader({ client: new IAMClient({ region, credentials }) }));
  const s3 = lazy(() => new S3Client({ region, credentials }));
  return {
    assumedRoleArn: options.assumedRoleArn,
    expiration: credentials.expiration.toISOString(),
    async identity() {
      const me = await sts().send(new GetCallerIdentityCommand({}));
      return { arn: me.Arn ?? '', account: me.Account ?? '' };
    },
    role: (roleArn) => iam().role(roleArn),
    async canPassRole(principalArn, roleArn) {
      const decisions = await iam().simulate(principalArn, ['iam:PassRole'], roleArn, {
        'iam:PassedToService': 'cloudformation.amazonaws.com',
      });
      return decisions['iam:PassRole'] ?? 'implicitDeny';
    },
    async stackStatus(stackName) {
      try {
        const { Stacks = [] } = await cfn().send(new DescribeStacksCommand({ StackName: stackName }));
        return Stacks[0]?.StackStatus;
      } catch (error) {
        if ((error as { message?: string }).message?.includes('does not exist')) return undefined;
        throw error;
      }
    },
    async bucketRegion(bucket) {
      try {
        const output = await s3().send(new HeadBucketCommand({ Bucket: bucket }));
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
      const { StackDriftDetectionId } = await cfn().send(
        new DetectStackDriftCommand({ StackName: stackName }),
      );
      if (!StackDriftDetectionId)
        throw Object.assign(new Error('no drift detection id'), { name: 'NoDetectionId' });
      return StackDriftDetectionId;
    },
    async driftStatus(detectionId): Promise<DriftStatus> {
      const status = await cfn().send(
        new DescribeStackDriftDetectionStatusCommand({ StackDriftDetectionId: detectionId }),
      );
      if (status.DetectionStatus === 'DETECTION_IN_PROGRESS') return { state: 'running' };
      if (status.DetectionStatus === 'DETECTION_FAILED') {
        return { state: 'failed', reason: status.DetectionStatusReason ?? 'unknown reason' };
      }
      let drifted: string[] = [];
      if (status.StackDriftStatus === 'DRIFTED' && status.StackId) {
        const { StackResourceDrifts = [] } = await cfn().send(
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
