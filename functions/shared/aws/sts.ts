import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { RoleAssumptionError, TransientError } from '../errors.ts';
import type { AssumedIdentity, AssumeRoleParams, RoleAssumer, StackInspector } from '../ports.ts';

/** Why STS says AccessDenied: its message is the same for all of these, so we name every candidate. */
export function explainAccessDenied(params: AssumeRoleParams): string {
  return [
    `STS refused to let the orchestrator's deployer role assume ${params.roleArn}. STS gives the same answer for several causes; check, in order:`,
    `1. the orchestrator account: the deployer role's policy allows sts:AssumeRole and sts:SetSourceIdentity on exactly ${params.roleArn};`,
    `2. the target account: that role's trust policy names the orchestrator account with an aws:PrincipalArn condition on the deployer role, and allows sts:SetSourceIdentity;`,
    params.externalId
      ? '3. the ExternalId in the registry equals the one the trust policy requires;'
      : '3. the trust policy does not require an ExternalId (the registry sets none);',
    `4. the role exists: the ARN's account and role name are the deploy role's, not another account's or the caller's own role name.`,
  ].join('\n');
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };

/**
 * STS behind the RoleAssumer and StackInspector ports. Assumed credentials live only in local variables of
 * these methods: nothing returned, logged or thrown carries them.
 */
export class StsTargetAccess implements RoleAssumer, StackInspector {
  private readonly sts: STSClient;
  private readonly clientFor: (
    region: string,
    credentials: Credentials,
  ) => { sts: STSClient; cfn: CloudFormationClient };

  constructor(options: {
    sts: STSClient;
    clientFor?: (region: string, credentials: Credentials) => { sts: STSClient; cfn: CloudFormationClient };
  }) {
    this.sts = options.sts;
    // Clients built from assumed credentials are per request and never cached across targets.
    this.clientFor =
      options.clientFor ??
      ((region, credentials) => ({
        sts: new STSClient({ region, credentials }),
        cfn: new CloudFormationClient({ region, credentials }),
      }));
  }

  private async assume(params: AssumeRoleParams): Promise<Credentials> {
    try {
      const { Credentials: c } = await this.sts.send(
        new AssumeRoleCommand({
          RoleArn: params.roleArn,
          RoleSessionName: params.sessionName,
          SourceIdentity: params.sourceIdentity,
          DurationSeconds: Math.min(params.durationSeconds, 3600),
          ...(params.externalId ? { ExternalId: params.externalId } : {}),
        }),
      );
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
        throw new RoleAssumptionError('STS returned no credentials');
      }
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      };
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (name === 'AccessDenied' || name === 'AccessDeniedException') {
        throw new RoleAssumptionError(explainAccessDenied(params), { details: { roleArn: params.roleArn } });
      }
      if (name === 'RegionDisabledException') {
        throw new RoleAssumptionError(
          `STS is not activated in ${params.region} for the orchestrator account`,
        );
      }
      if (name === 'Throttling' || name === 'ThrottlingException') {
        throw new TransientError('STS throttled AssumeRole');
      }
      if (error instanceof RoleAssumptionError) throw error;
      // Never pass on a raw SDK error: its message could quote request parameters.
      throw new RoleAssumptionError(`STS AssumeRole failed (${name || 'unknown error'})`);
    }
  }

  async preflight(params: AssumeRoleParams): Promise<AssumedIdentity> {
    const credentials = await this.assume(params);
    const { sts } = this.clientFor(params.region, credentials);
    const identity = await sts.send(new GetCallerIdentityCommand({}));
    return {
      assumedRoleArn: identity.Arn ?? '',
      account: identity.Account ?? '',
      expiration: credentials.expiration.toISOString(),
    };
  }

  async stackStatus(params: AssumeRoleParams & { stackName: string }): Promise<string | undefined> {
    const credentials = await this.assume(params);
    const { cfn } = this.clientFor(params.region, credentials);
    try {
      const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: params.stackName }));
      return Stacks[0]?.StackStatus;
    } catch (error) {
      if ((error as { name?: string; message?: string }).message?.includes('does not exist'))
        return undefined;
      throw error;
    }
  }
}
