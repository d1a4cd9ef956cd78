import {
  CloudFormationClient,
  DeleteChangeSetCommand,
  DescribeChangeSetCommand,
  type DescribeChangeSetCommandOutput,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  GetTemplateCommand,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { classifyAwsError, type FaultKind } from '../diagnosis/aws-fault.ts';
import { diagnoseAssumeRole, formatDiagnosis } from '../diagnosis/diagnose.ts';
import { gatherAssumeRoleEvidence } from '../diagnosis/evidence.ts';
import { parseRoleArn } from '../diagnosis/statements.ts';
import { ChangeSetError, ChangeSetStaleError, RoleAssumptionError, TransientError } from '../errors.ts';
import type {
  AssumedIdentity,
  AssumeRoleParams,
  ChangeSetInfo,
  ChangeSets,
  ReviewTemplates,
  RoleAssumer,
  StackInspector,
} from '../ports.ts';
import type { ResourceChangeSummary } from '../types.ts';

const contextOf = (params: AssumeRoleParams) => ({
  attempt: params,
  // The registry refuses a deploy role outside the environment's account, so the ARN's account is the target's.
  targetAccountId: parseRoleArn(params.roleArn)?.account ?? '',
});

/** Failures the shared diagnosis explains; anything else keeps a generic message (raw texts may quote parameters). */
const DIAGNOSED = new Set<FaultKind>([
  'access-denied',
  'source-identity-denied',
  'region-disabled',
  'chaining-duration',
  'expired-credentials',
  'invalid-credentials',
  'no-credentials',
]);

/**
 * A failed GetCallerIdentity of a session STS has just issued, at the target region's endpoint. Fresh
 * credentials are valid, so an opt-in region the target account has not enabled shows up as
 * InvalidClientTokenId here (and a disabled STS endpoint as RegionDisabledException): both are the region.
 */
function regionalFailure(error: unknown, params: AssumeRoleParams): Error {
  const fault = classifyAwsError(error);
  if (fault.kind === 'throttled') return new TransientError('STS throttled GetCallerIdentity');
  if (fault.kind === 'region-disabled' || fault.kind === 'invalid-credentials') {
    const context = contextOf(params);
    const diagnosis = diagnoseAssumeRole(
      { ...fault, kind: 'region-disabled', account: fault.account ?? context.targetAccountId },
      context,
    );
    return new RoleAssumptionError(formatDiagnosis(diagnosis), {
      details: { roleArn: params.roleArn, region: params.region, cause: diagnosis.candidates[0]?.cause },
    });
  }
  return new RoleAssumptionError(
    `STS GetCallerIdentity in ${params.region} failed for the assumed session (${fault.code})`,
  );
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date };

/**
 * STS behind the RoleAssumer and StackInspector ports. Assumed credentials live only in local variables of
 * these methods: nothing returned, logged or thrown carries them.
 */
export class StsTargetAccess implements RoleAssumer, StackInspector, ChangeSets {
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
      const fault = classifyAwsError(error);
      if (DIAGNOSED.has(fault.kind)) {
        // The caller's own identity needs no permission and tells which principal to name in the fix.
        const evidence = await gatherAssumeRoleEvidence(fault, contextOf(params), {
          callerIdentity: async () => {
            const me = await this.sts.send(new GetCallerIdentityCommand({}));
            return { arn: me.Arn ?? '', account: me.Account ?? '' };
          },
        });
        const diagnosis = diagnoseAssumeRole(fault, contextOf(params), evidence);
        throw new RoleAssumptionError(formatDiagnosis(diagnosis), {
          details: { roleArn: params.roleArn, cause: diagnosis.candidates[0]?.cause },
        });
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
    let identity: { Arn?: string | undefined; Account?: string | undefined };
    try {
      // The target region's own endpoint: a region the target account has not enabled refuses here.
      identity = await sts.send(new GetCallerIdentityCommand({}));
    } catch (error) {
      throw regionalFailure(error, params);
    }
    return {
      assumedRoleArn: identity.Arn ?? '',
      account: identity.Account ?? '',
      expiration: credentials.expiration.toISOString(),
    };
  }

  async stackStatus(params: AssumeRoleParams & { stackName: string }): Promise<string | undefined> {
    const { cfn } = this.clientFor(params.region, await this.assume(params));
    return (await describeStack(cfn, params.stackName))?.StackStatus;
  }

  async describeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<ChangeSetInfo> {
    const { cfn } = this.clientFor(params.region, await this.assume(params));
    const changes: ResourceChangeSummary[] = [];
    let first: DescribeChangeSetCommandOutput | undefined;
    let next: string | undefined;
    // A change set lists its changes in pages; every page counts for the review.
    for (let page = 0; page < 100; page++) {
      const out = await sendChangeSetCall(() =>
        cfn.send(
          new DescribeChangeSetCommand({
            ChangeSetName: params.changeSetArn,
            ...(next ? { NextToken: next } : {}),
          }),
        ),
      );
      first ??= out;
      for (const change of out.Changes ?? []) {
        const rc = change.ResourceChange;
        if (!rc?.Action || !rc.LogicalResourceId) continue;
        changes.push({
          action: rc.Action as ResourceChangeSummary['action'],
          logicalId: rc.LogicalResourceId,
          resourceType: rc.ResourceType ?? 'unknown',
          ...(rc.Replacement ? { replacement: rc.Replacement as 'True' | 'False' | 'Conditional' } : {}),
        });
      }
      next = out.NextToken;
      if (!next) break;
    }
    return {
      changeSetArn: first?.ChangeSetId ?? params.changeSetArn,
      changeSetId: first?.ChangeSetName ?? '',
      status: first?.Status ?? 'UNKNOWN',
      executionStatus: first?.ExecutionStatus ?? 'UNAVAILABLE',
      ...(first?.StatusReason ? { statusReason: first.StatusReason.slice(0, 500) } : {}),
      changes,
      parameters: parameterValues(first?.Parameters),
    };
  }

  async executeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void> {
    const { cfn } = this.clientFor(params.region, await this.assume(params));
    await sendChangeSetCall(() =>
      cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: params.changeSetArn })),
    );
  }

  async deleteChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void> {
    const { cfn } = this.clientFor(params.region, await this.assume(params));
    try {
      await sendChangeSetCall(() =>
        cfn.send(new DeleteChangeSetCommand({ ChangeSetName: params.changeSetArn })),
      );
    } catch (error) {
      // Already gone (a retried delete, or CloudFormation removed it): what deleting it was for.
      if (!(error instanceof ChangeSetError && error.message.includes('no longer exists'))) throw error;
    }
  }

  async reviewTemplates(
    params: AssumeRoleParams & { changeSetArn: string; stackName: string },
  ): Promise<ReviewTemplates> {
    // One session for all three reads: every AssumeRole is an STS call (throttled per account, one CloudTrail
    // event each), and a review needs nothing that one session of the deploy role cannot read.
    const { cfn } = this.clientFor(params.region, await this.assume(params));
    const proposed = await processedTemplate(cfn, { ChangeSetName: params.changeSetArn });
    if (proposed === undefined)
      throw new ChangeSetError('CloudFormation returned no processed template for the change set');
    let template: string | undefined;
    try {
      template = await processedTemplate(cfn, { StackName: params.stackName });
    } catch (error) {
      // CloudFormation answers ValidationError "Stack with id X does not exist" for a stack not created yet.
      if (error instanceof ChangeSetError && error.message.includes('(ValidationError)')) return { proposed };
      throw error;
    }
    if (template === undefined) return { proposed };
    let stack: Stack | undefined;
    try {
      stack = await describeStack(cfn, params.stackName);
    } catch (error) {
      throw new ChangeSetError(
        `CloudFormation DescribeStacks failed (${(error as { name?: string }).name ?? 'unknown error'})`,
      );
    }
    return { proposed, current: { template, parameters: parameterValues(stack?.Parameters) } };
  }
}

/**
 * The template as CloudFormation applies it: Processed, after the SAM transform, so the roles SAM generates are
 * in it as AWS::IAM::Role resources.
 */
async function processedTemplate(
  cfn: CloudFormationClient,
  of: { ChangeSetName: string } | { StackName: string },
): Promise<string | undefined> {
  const input = { ...of, TemplateStage: 'Processed' as const };
  return (await sendChangeSetCall(() => cfn.send(new GetTemplateCommand(input)))).TemplateBody;
}

/** The stack as DescribeStacks lists it; undefined when it does not exist (CloudFormation says so in the message). */
async function describeStack(cfn: CloudFormationClient, stackName: string): Promise<Stack | undefined> {
  try {
    const { Stacks = [] } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return Stacks[0];
  } catch (error) {
    if ((error as { message?: string }).message?.includes('does not exist')) return undefined;
    throw error;
  }
}

/** Parameter values by key, as CloudFormation lists them (a NoEcho value reads `****`). */
function parameterValues(
  list: readonly { ParameterKey?: string | undefined; ParameterValue?: string | undefined }[] | undefined,
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const { ParameterKey, ParameterValue } of list ?? []) {
    if (ParameterKey !== undefined && ParameterValue !== undefined) values[ParameterKey] = ParameterValue;
  }
  return values;
}

/**
 * CloudFormation's change set errors by name: a change set the stack moved past (InvalidChangeSetStatus:
 * OBSOLETE, or already executed) is stale; throttling is retried; anything else is a plain failure whose
 * raw message is not passed on.
 */
async function sendChangeSetCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const name = (error as { name?: string }).name ?? '';
    if (name === 'InvalidChangeSetStatusException' || name === 'InvalidChangeSetStatus') {
      throw new ChangeSetStaleError(
        'CloudFormation refused the approved change set: the stack changed after it was created, so it no longer applies as reviewed. Deploy again to review a fresh change set.',
      );
    }
    if (name === 'Throttling' || name === 'ThrottlingException') {
      throw new TransientError('CloudFormation throttled a change set call');
    }
    if (name === 'ChangeSetNotFoundException' || name === 'ChangeSetNotFound') {
      throw new ChangeSetError('the change set no longer exists in the target account');
    }
    throw new ChangeSetError(`CloudFormation change set call failed (${name || 'unknown error'})`);
  }
}
