import { classifyAwsError } from '#shared/diagnosis/aws-fault.ts';
import { diagnoseAssumeRole, ROLE_CHAINING_LIMIT_SECONDS } from '#shared/diagnosis/diagnose.ts';
import { gatherAssumeRoleEvidence } from '#shared/diagnosis/evidence.ts';
import {
  executionTrustStatement,
  parseRoleArn,
  passRoleStatement,
  roleOfSession,
  trustNamesPrincipal,
  trustPolicyStatement,
} from '#shared/diagnosis/statements.ts';
import {
  awsError,
  type DoctorOptions,
  type DoctorTarget,
  diagnosisContext,
  fromDiagnosis,
  registryPath,
  result,
} from './checks.ts';
import type { CheckResult, DoctorProbe, TargetSession } from './ports.ts';

// Checks 2-5: the caller, AssumeRole as the deploy job does it, the session's account, the execution role

export async function checkCallerAndAssume(
  target: DoctorTarget,
  probe: DoctorProbe,
  options: DoctorOptions,
  add: (check: CheckResult) => void,
): Promise<TargetSession | undefined> {
  const context = diagnosisContext(target, options);
  let callerArn: string;
  try {
    const caller = await probe.callerIdentity();
    callerArn = caller.arn;
    const role = roleOfSession(caller.arn);
    const chained =
      role !== undefined && context.attempt.durationSeconds > ROLE_CHAINING_LIMIT_SECONDS
        ? ` It is a role session, so it may not ask for more than ${ROLE_CHAINING_LIMIT_SECONDS} seconds.`
        : '';
    const whose =
      options.mode === 'api'
        ? "the orchestrator's deployer role, the principal every deploy role trusts"
        : "your own credentials (--local): the deploy role trusts the orchestrator's deployer role, so a denial below may only mean it does not trust you; run without --local to test the deployer";
    add(result('caller', 'passed', `${caller.arn} in account ${caller.account}: ${whose}.${chained}`));
  } catch (error) {
    add(fromDiagnosis('caller', diagnoseAssumeRole(classifyAwsError(error), context)));
    return undefined;
  }

  const params = context.attempt;
  const sent =
    `SourceIdentity ${params.sourceIdentity}, session name ${params.sessionName}, DurationSeconds ` +
    `${params.durationSeconds}, ExternalId ${params.externalId ? 'from the registry' : 'none'}`;
  try {
    const session = await probe.assume(params);
    const assumed = `assumed ${session.assumedRoleArn} until ${session.expiration} (${sent})`;
    add(
      options.deployJobRoleArn
        ? await checkDeployJobTrust(target, session, {
            deployJobRoleArn: options.deployJobRoleArn,
            // aws:PrincipalArn compares the role ARN with its path, which a session ARN lacks.
            callerRoleArn: options.expectedCallerRoleArn ?? roleOfSession(callerArn) ?? callerArn,
            assumed,
          })
        : result('assume-role', 'passed', assumed),
    );
    // The session works either way: the checks after this one test the target, not the trust policy.
    return session;
  } catch (error) {
    const fault = classifyAwsError(error);
    const evidence = await gatherAssumeRoleEvidence(fault, context, {
      ...probe.denialProbes(params),
      // Known already: no second call.
      callerIdentity: async () => ({ arn: callerArn, account: /::(\d{12}):/.exec(callerArn)?.[1] ?? '' }),
    });
    const check = fromDiagnosis('assume-role', diagnoseAssumeRole(fault, context, evidence));
    add({ ...check, detail: `${check.detail} (sent: ${sent})` });
    return undefined;
  }
}

/**
 * The deploy job assumes the deploy role as its own principal, which the doctor cannot be: it reads the deploy
 * role's trust policy (the deploy role may read itself) and checks that it names the deploy job role.
 */
export async function checkDeployJobTrust(
  target: DoctorTarget,
  session: TargetSession,
  {
    deployJobRoleArn,
    callerRoleArn,
    assumed,
  }: { deployJobRoleArn: string; callerRoleArn: string; assumed: string },
): Promise<CheckResult> {
  const { env } = target;
  const inTarget = { kind: 'target' as const, accountId: env.accountId };
  let role: { arn: string; trustPolicy?: unknown } | undefined;
  try {
    role = await session.role(env.deployRoleArn);
  } catch (error) {
    const fault = classifyAwsError(error);
    return result(
      'assume-role',
      'warning',
      `${assumed}; whether the deploy role also trusts the deploy job role ${deployJobRoleArn} is unknown: it may not read its own trust policy (${fault.code})`,
      {
        fix: "Grant the deploy role iam:GetRole on itself (target-account/template.yaml's DoctorReadOnly statement).",
        account: inTarget,
        awsError: awsError(fault),
      },
    );
  }
  if (role?.trustPolicy === undefined) {
    return result(
      'assume-role',
      'warning',
      `${assumed}; whether the deploy role also trusts the deploy job role ${deployJobRoleArn} is unknown: IAM returned no readable trust policy`,
      { account: inTarget },
    );
  }
  if (trustNamesPrincipal(role.trustPolicy, deployJobRoleArn)) {
    return result(
      'assume-role',
      'passed',
      `${assumed}; its trust policy names the deploy job role ${deployJobRoleArn} too`,
    );
  }
  return result(
    'assume-role',
    'failed',
    `${assumed}, but its trust policy does not name the deploy job role ${deployJobRoleArn}: every deploy job would be refused`,
    {
      fix:
        `In account ${env.accountId}: update the target stack (target-account/template.yaml) with the orchestrator ` +
        "stack's DeployJobRoleArn output as its DeployJobRoleArn parameter, or put this statement in the deploy role's trust policy.",
      account: inTarget,
      statements: [
        trustPolicyStatement({
          deployRoleArn: env.deployRoleArn,
          callerRoleArn,
          deployJobRoleArn,
          externalId: Boolean(env.externalId),
        }),
      ],
    },
  );
}

export async function checkTargetIdentity(
  target: DoctorTarget,
  session: TargetSession,
  add: (check: CheckResult) => void,
): Promise<boolean> {
  const { env } = target;
  try {
    const identity = await session.identity();
    if (identity.account !== env.accountId) {
      add(
        result(
          'target-identity',
          'failed',
          `the session is in account ${identity.account}, but the environment's account is ${env.accountId}; the workflow refuses to deploy there`,
          {
            fix: `Point deployRoleArn in ${registryPath(target)} at the deploy role in account ${env.accountId}.`,
            account: { kind: 'registry' },
          },
        ),
      );
      return false;
    }
    const expected = parseRoleArn(env.deployRoleArn)?.name;
    const actual = /:assumed-role\/([^/]+)\//.exec(identity.arn)?.[1];
    if (expected && actual && expected !== actual) {
      add(
        result(
          'target-identity',
          'failed',
          `the session is for role ${actual}, not the registry's ${expected}`,
          {
            account: { kind: 'registry' },
          },
        ),
      );
      return false;
    }
    add(result('target-identity', 'passed', `${identity.arn}, through the ${env.region} STS endpoint`));
    return true;
  } catch (error) {
    const fault = classifyAwsError(error);
    if (fault.kind === 'region-disabled' || fault.kind === 'invalid-credentials') {
      const diagnosis = diagnoseAssumeRole(
        fault.kind === 'invalid-credentials'
          ? { ...fault, kind: 'region-disabled', account: env.accountId }
          : fault,
        {
          attempt: {
            roleArn: env.deployRoleArn,
            sourceIdentity: '',
            sessionName: '',
            durationSeconds: 0,
            region: env.region,
          },
          targetAccountId: env.accountId,
        },
      );
      add(fromDiagnosis('target-identity', diagnosis));
    } else {
      add(
        result('target-identity', 'failed', `GetCallerIdentity in ${env.region} failed (${fault.code})`, {
          awsError: awsError(fault),
        }),
      );
    }
    return false;
  }
}

export async function checkExecutionRole(target: DoctorTarget, session: TargetSession): Promise<CheckResult> {
  const { env } = target;
  const inTarget = { kind: 'target' as const, accountId: env.accountId };
  let role: { arn: string; trustPolicy?: unknown } | undefined;
  try {
    role = await session.role(env.executionRoleArn);
  } catch (error) {
    const fault = classifyAwsError(error);
    return result(
      'execution-role',
      'warning',
      `the deploy role may not read ${env.executionRoleArn} (${fault.code})`,
      {
        fix: "Grant the deploy role iam:GetRole on the execution role and iam:SimulatePrincipalPolicy on itself (target-account/template.yaml's DoctorReadOnly statement).",
        account: inTarget,
        awsError: awsError(fault),
      },
    );
  }
  if (!role) {
    return result(
      'execution-role',
      'failed',
      `there is no role ${env.executionRoleArn} in account ${env.accountId}`,
      {
        fix: `Deploy target-account/template.yaml in account ${env.accountId}, or set executionRoleArn in ${registryPath(target)} to its ExecutionRoleArn output.`,
        account: inTarget,
      },
    );
  }
  if (
    role.trustPolicy !== undefined &&
    !JSON.stringify(role.trustPolicy).includes('cloudformation.amazonaws.com')
  ) {
    return result(
      'execution-role',
      'failed',
      `${env.executionRoleArn} does not trust cloudformation.amazonaws.com, so CloudFormation cannot act through it`,
      {
        fix: "Add the statement to the execution role's trust policy.",
        account: inTarget,
        statements: [executionTrustStatement(env.executionRoleArn)],
      },
    );
  }
  let decision: string;
  try {
    decision = await session.canPassRole(env.deployRoleArn, env.executionRoleArn);
  } catch (error) {
    const fault = classifyAwsError(error);
    return result(
      'execution-role',
      'warning',
      `the role exists; whether it can be passed is unknown (${fault.code})`,
      {
        fix: 'Grant the deploy role iam:SimulatePrincipalPolicy on itself so the doctor can check (target-account/template.yaml does).',
        account: inTarget,
        awsError: awsError(fault),
      },
    );
  }
  if (decision !== 'allowed') {
    return result(
      'execution-role',
      'failed',
      `the deploy role's policy ${decision === 'explicitDeny' ? 'explicitly denies' : 'does not allow'} iam:PassRole of ${env.executionRoleArn} to CloudFormation: sam deploy --role-arn would fail`,
      {
        fix: `In account ${env.accountId}: add the statement to the deploy role.`,
        account: inTarget,
        statements: [passRoleStatement(env.deployRoleArn, env.executionRoleArn)],
      },
    );
  }
  return result(
    'execution-role',
    'passed',
    `${role.arn} trusts CloudFormation and the deploy role may pass it`,
  );
}
