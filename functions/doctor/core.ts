import { type AwsFault, classifyAwsError } from '#shared/diagnosis/aws-fault.ts';
import {
  type Diagnosis,
  type DiagnosisContext,
  diagnoseAssumeRole,
  ROLE_CHAINING_LIMIT_SECONDS,
  roleAccountMismatch,
} from '#shared/diagnosis/diagnose.ts';
import { gatherAssumeRoleEvidence } from '#shared/diagnosis/evidence.ts';
import {
  executionTrustStatement,
  parseRoleArn,
  passRoleStatement,
  roleOfSession,
  trustNamesPrincipal,
  trustPolicyStatement,
} from '#shared/diagnosis/statements.ts';
import type { AssumeRoleParams, Clock } from '#shared/ports.ts';
import type { EnvironmentConfig } from '#shared/registry/registry.ts';
import { roleSessionName, sourceIdentity } from '#shared/registry/requester.ts';
import { checkTemplateText } from '#shared/template-policy/engine.ts';
import { applicationScope } from '#shared/template-policy/rules.ts';
import type { Requester } from '#shared/types.ts';
import type {
  CheckId,
  CheckResult,
  CheckStatus,
  DoctorProbe,
  DoctorReport,
  RunStatus,
  TargetSession,
} from './ports.ts';

/**
 * `crossdeploy doctor`: the checks, in order, each passed, failed, warning or skipped, with the fix and the
 * account that holds it. The same core runs behind the API (the orchestrator's deployer role is the caller)
 * and in `crossdeploy doctor --local` (the caller's own credentials). No AWS SDK here: ./ports.ts.
 */

/** The deploy job's credential helper asks for one hour: the role-chaining cap. The doctor asks the same. */
export const DEPLOY_SESSION_SECONDS = ROLE_CHAINING_LIMIT_SECONDS;

export const CHECK_TITLES: Record<CheckId, string> = {
  registry: 'Registry entry is consistent',
  caller: 'Caller identity',
  'assume-role': 'AssumeRole as the deploy job does it',
  'target-identity': "Session is in the environment's account (regional STS endpoint)",
  'execution-role': 'CloudFormation execution role exists and can be passed',
  'stack-status': "Stack's status allows an update",
  'artifacts-bucket': "Artifacts bucket is reachable and in the environment's region",
  drift: 'Stack drift (resources changed by hand)',
  'template-policy': "Template passes the deploy job's template policy",
};

export interface DoctorTarget {
  application: string;
  environment: string;
  env: EnvironmentConfig;
}

export interface DoctorOptions {
  runId: string;
  requester: Requester;
  mode: 'api' | 'local';
  clock: Clock;
  /** As the deploy job: one hour. Settable so a longer request can be tested (and diagnosed). */
  durationSeconds?: number;
  /** Start drift detection (it needs read access to the stack's resources; see target-account/template.yaml). */
  drift?: boolean;
  /** The role the deploy role is meant to trust, when known (the API: the deployer role). */
  expectedCallerRoleArn?: string;
  /**
   * The deploy job's role (the API knows it). The doctor cannot be that role (only CodeBuild can), so it reads the
   * deploy role's trust policy, as the deploy role, and checks that it names it.
   */
  deployJobRoleArn?: string;
  /** `runner: simulate` in local mode: nothing is sent to AWS. */
  simulated?: boolean;
  /** A built template to hold to the template policy (`--template`): the deploy job's rules, no AWS call. */
  template?: DoctorTemplate;
}

export interface DoctorTemplate {
  /** Where it was read from, for the report. */
  path: string;
  text: string;
  /** Local nested templates next to it, as the deploy job reads them from the build output. */
  loadNested?: (location: string) => string | undefined;
}

const result = (
  id: CheckId,
  status: CheckStatus,
  detail: string,
  extra: Partial<CheckResult> = {},
): CheckResult => ({
  id,
  title: CHECK_TITLES[id],
  status,
  detail,
  ...extra,
});

const skip = (id: CheckId, why: string) => result(id, 'skipped', why);

/** The STS parameters of the deploy job, for a doctor run: same ExternalId, SourceIdentity, session name shape. */
export function doctorAssumeParams(target: DoctorTarget, options: DoctorOptions): AssumeRoleParams {
  return {
    roleArn: target.env.deployRoleArn,
    ...(target.env.externalId ? { externalId: target.env.externalId } : {}),
    sourceIdentity: sourceIdentity(options.requester),
    sessionName: roleSessionName(options.runId),
    durationSeconds: options.durationSeconds ?? DEPLOY_SESSION_SECONDS,
    region: target.env.region,
  };
}

const registryPath = (target: DoctorTarget) =>
  `applications.${target.application}.environments.${target.environment}`;

function diagnosisContext(target: DoctorTarget, options: DoctorOptions): DiagnosisContext {
  return {
    attempt: doctorAssumeParams(target, options),
    targetAccountId: target.env.accountId,
    registryPath: registryPath(target),
    ...(options.expectedCallerRoleArn ? { expectedCallerRoleArn: options.expectedCallerRoleArn } : {}),
    ...(options.deployJobRoleArn ? { deployJobRoleArn: options.deployJobRoleArn } : {}),
  };
}

/** A failed check from a diagnosis: the best candidate's fix, and every candidate for the reader. */
function fromDiagnosis(id: CheckId, diagnosis: Diagnosis): CheckResult {
  const [best] = diagnosis.candidates;
  return result(id, 'failed', diagnosis.headline, {
    ...(best ? { fix: best.fix, account: best.account } : {}),
    ...(best?.statements?.length ? { statements: best.statements } : {}),
    ...(diagnosis.candidates.length > 1 ? { candidates: diagnosis.candidates } : {}),
    ...(diagnosis.unchecked.length > 0 ? { unchecked: diagnosis.unchecked } : {}),
    awsError: { code: diagnosis.fault.code, message: diagnosis.fault.message },
  });
}

const awsError = (fault: AwsFault) => ({ code: fault.code, message: fault.message });

// 1. Registry ------------------------------------------------------------------------------------------------

const PARTITION_OF_REGION = (region: string) =>
  region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';

/** Caught before any AWS call: the seed article's role_arn named the wrong account. */
export function checkRegistry(target: DoctorTarget): CheckResult {
  const { env } = target;
  const at = registryPath(target);
  const failures: string[] = [];
  const warnings: string[] = [];
  for (const field of ['deployRoleArn', 'executionRoleArn'] as const) {
    const mismatch = roleAccountMismatch(env[field], env.accountId);
    if (mismatch) failures.push(`${field}: ${mismatch}`);
    const partition = parseRoleArn(env[field])?.partition;
    if (partition && partition !== PARTITION_OF_REGION(env.region)) {
      failures.push(`${field}: partition ${partition} does not match region ${env.region}`);
    }
  }
  if (env.deployRoleArn === env.executionRoleArn) {
    failures.push(
      'deployRoleArn and executionRoleArn are the same role: CloudFormation must act through its own role',
    );
  }
  // Bucket names from target-account/template.yaml carry the account and region: a copied line shows here.
  for (const account of env.artifactsBucket.match(/\d{12}/g) ?? []) {
    if (account !== env.accountId)
      warnings.push(`artifactsBucket names account ${account}, not ${env.accountId}`);
  }
  const bucketRegion = /(?:^|-)((?:[a-z]{2}(?:-gov)?)-[a-z]+-\d)(?:-|$)/.exec(env.artifactsBucket)?.[1];
  if (bucketRegion && bucketRegion !== env.region) {
    warnings.push(`artifactsBucket names region ${bucketRegion}, not ${env.region}`);
  }
  if (failures.length > 0) {
    return result('registry', 'failed', `${failures.join('; ')}. Nothing was sent to AWS.`, {
      fix:
        `Fix ${at} in the registry: use the DeployRoleArn and ExecutionRoleArn outputs of the target account's ` +
        'stack (target-account/template.yaml), which are always in that account.',
      account: { kind: 'registry' },
    });
  }
  if (warnings.length > 0) {
    return result('registry', 'warning', warnings.join('; '), {
      fix: `Check artifactsBucket in ${at}: use the ArtifactsBucketName output of the target stack in ${env.region}.`,
      account: { kind: 'registry' },
    });
  }
  return result(
    'registry',
    'passed',
    `both roles are in account ${env.accountId}; region ${env.region}; stack ${env.stackName}${env.externalId ? '; ExternalId set' : ''}`,
  );
}

// Template policy (README "Guard rails") -------------------------------------------------------------------

/**
 * The deploy job's template policy (functions/shared/template-policy) on a given built template, with this
 * environment's account, region, stack name, parameters and registry exceptions, as the job would run it.
 */
export function checkTemplatePolicy(target: DoctorTarget, template: DoctorTemplate): CheckResult {
  const { env } = target;
  const report = checkTemplateText(template.text, {
    accountId: env.accountId,
    region: env.region,
    stackName: env.stackName,
    ...applicationScope(env.deployRoleArn, env.accountId, env.region, env.stackName),
    parameterOverrides: env.parameterOverrides,
    allowedTrustPrincipals: env.allowedTrustPrincipals ?? [],
    allowedManagedPolicies: env.allowedManagedPolicies ?? [],
    ...(template.loadNested ? { loadNested: template.loadNested } : {}),
  });
  const used = report.exceptionsUsed.map(
    (use) => `${use.resource} uses the registry exception ${use.kind}: ${use.value}`,
  );
  if (report.findings.length === 0) {
    return result('template-policy', 'passed', [`${template.path}: no findings`, ...used].join('\n'));
  }
  const lines = report.findings.map((f) => `${f.resource}: ${f.message} [${f.rule}]`);
  return result(
    'template-policy',
    'failed',
    [`${template.path}: the deploy job would refuse it (TEMPLATE_POLICY_VIOLATION)`, ...lines, ...used].join(
      '\n',
    ),
    {
      fix: `Change the template, or name an exact exception in ${registryPath(target)}.allowedTrustPrincipals / allowedManagedPolicies (README "Guard rails").`,
      account: { kind: 'registry' },
    },
  );
}

// 2-8. The AWS checks ----------------------------------------------------------------------------------------

export function overallStatus(checks: readonly CheckResult[]): RunStatus {
  if (checks.some((c) => c.status === 'failed')) return 'failed';
  if (checks.some((c) => c.status === 'running')) return 'running';
  if (checks.some((c) => c.status === 'warning')) return 'warning';
  return 'passed';
}

/** Runs every check in order. `onCheck` sees each result as it is known (the CLI prints them as they come). */
export async function runDoctor(
  target: DoctorTarget,
  probe: DoctorProbe,
  options: DoctorOptions,
  onCheck: (check: CheckResult) => void = () => {},
): Promise<DoctorReport> {
  const startedAt = options.clock.now().toISOString();
  const checks: CheckResult[] = [];
  let pending: DoctorReport['pending'];
  const add = (check: CheckResult) => {
    checks.push(check);
    onCheck(check);
  };
  const skipRest = (why: string) => {
    for (const id of [
      'caller',
      'assume-role',
      'target-identity',
      'execution-role',
      'stack-status',
      'artifacts-bucket',
      'drift',
    ] as const) {
      if (!checks.some((c) => c.id === id)) add(skip(id, why));
    }
  };

  const registry = checkRegistry(target);
  add(registry);
  if (registry.status === 'failed') skipRest('skipped: fix the registry first');
  else if (options.simulated)
    skipRest('skipped: this environment has `runner: simulate`, so nothing is sent to AWS');
  else {
    const session = await checkCallerAndAssume(target, probe, options, add);
    if (!session) skipRest('skipped: needs the deploy role session');
    else {
      const inTarget = await checkTargetIdentity(target, session, add);
      if (!inTarget) skipRest("skipped: the session is not in the environment's account");
      else {
        add(await checkExecutionRole(target, session));
        const stack = await checkStackStatus(target, session);
        add(stack.check);
        add(await checkBucket(target, session));
        if (!options.drift) add(skip('drift', 'skipped: not asked for (--drift)'));
        else if (!stack.exists) add(skip('drift', 'skipped: the stack does not exist yet'));
        else {
          const drift = await startDrift(target, session);
          add(drift.check);
          if (drift.detectionId) pending = { driftDetectionId: drift.detectionId };
        }
      }
    }
  }
  if (options.template) add(checkTemplatePolicy(target, options.template));
  const now = options.clock.now().toISOString();
  const status = overallStatus(checks);
  return {
    runId: options.runId,
    application: target.application,
    environment: target.environment,
    mode: options.mode,
    status,
    startedAt,
    updatedAt: now,
    ...(status !== 'running' ? { finishedAt: now } : {}),
    checks,
    ...(pending ? { pending } : {}),
  };
}

async function checkCallerAndAssume(
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
async function checkDeployJobTrust(
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

async function checkTargetIdentity(
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

async function checkExecutionRole(target: DoctorTarget, session: TargetSession): Promise<CheckResult> {
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

/** `*_IN_PROGRESS` blocks an update (REVIEW_IN_PROGRESS is a stack that only has a change set). */
function stackVerdict(target: DoctorTarget, status: string): CheckResult {
  const { stackName, region, executionRoleArn } = target.env;
  const id = 'stack-status';
  switch (status) {
    case 'UPDATE_ROLLBACK_FAILED':
      return result(
        id,
        'failed',
        `${stackName} is UPDATE_ROLLBACK_FAILED: it can be neither updated nor rolled back as it is`,
        {
          fix:
            'Continue the rollback (skip the resources that cannot roll back if needed): ' +
            `aws cloudformation continue-update-rollback --stack-name ${stackName} --region ${region} --role-arn ${executionRoleArn}`,
          account: { kind: 'target', accountId: target.env.accountId },
        },
      );
    case 'ROLLBACK_COMPLETE':
    case 'ROLLBACK_FAILED':
    case 'DELETE_FAILED':
      return result(id, 'failed', `${stackName} is ${status}: its creation failed and it cannot be updated`, {
        fix: `Delete the stack first, then deploy again: aws cloudformation delete-stack --stack-name ${stackName} --region ${region} --role-arn ${executionRoleArn}`,
        account: { kind: 'target', accountId: target.env.accountId },
      });
    default:
      if (status.endsWith('_IN_PROGRESS') && status !== 'REVIEW_IN_PROGRESS') {
        return result(id, 'failed', `${stackName} is ${status}: an operation is running`, {
          fix: 'Wait until it finishes (crossdeploy settles running stacks before it deploys or releases its lock).',
          account: { kind: 'target', accountId: target.env.accountId },
        });
      }
      return result(id, 'passed', `${stackName} is ${status}`);
  }
}

async function checkStackStatus(target: DoctorTarget, session: TargetSession) {
  try {
    const status = await session.stackStatus(target.env.stackName);
    if (status === undefined) {
      return {
        exists: false,
        check: result(
          'stack-status',
          'passed',
          `${target.env.stackName} does not exist yet: the first deploy creates it`,
        ),
      };
    }
    return { exists: status !== 'DELETE_COMPLETE', check: stackVerdict(target, status) };
  } catch (error) {
    const fault = classifyAwsError(error);
    return {
      exists: false,
      check: result('stack-status', 'failed', `cannot read ${target.env.stackName} (${fault.code})`, {
        fix: `The deploy role needs cloudformation:DescribeStacks on ${target.env.stackName} (target-account/template.yaml grants it for stacks with its allowed prefix).`,
        account: { kind: 'target', accountId: target.env.accountId },
        awsError: awsError(fault),
      }),
    };
  }
}

async function checkBucket(target: DoctorTarget, session: TargetSession): Promise<CheckResult> {
  const { artifactsBucket: bucket, region, accountId } = target.env;
  const here = { kind: 'target' as const, accountId };
  try {
    const actual = await session.bucketRegion(bucket);
    if (actual && actual !== region) {
      return result(
        'artifacts-bucket',
        'failed',
        `${bucket} is in ${actual}, not ${region}: Lambda reads code only from a bucket in the function's own region`,
        {
          fix: `Deploy target-account/template.yaml in ${region} too (one stack per account and region) and use that ArtifactsBucketName.`,
          account: { kind: 'registry' },
        },
      );
    }
    return result('artifacts-bucket', 'passed', `${bucket} is reachable${actual ? ` in ${actual}` : ''}`);
  } catch (error) {
    const fault = classifyAwsError(error);
    const regionFromError = (error as { region?: string }).region;
    if (regionFromError && regionFromError !== region) {
      return result('artifacts-bucket', 'failed', `${bucket} is in ${regionFromError}, not ${region}`, {
        fix: `Use a bucket in ${region}: deploy target-account/template.yaml there.`,
        account: { kind: 'registry' },
      });
    }
    if (fault.kind === 'not-found' || /^(NotFound|404)$/.test(fault.code)) {
      return result('artifacts-bucket', 'failed', `there is no bucket ${bucket}`, {
        fix: `Set artifactsBucket in ${registryPath(target)} to the target stack's ArtifactsBucketName output.`,
        account: { kind: 'registry' },
      });
    }
    return result('artifacts-bucket', 'failed', `the deploy role cannot reach ${bucket} (${fault.code})`, {
      fix: "The deploy role needs s3:ListBucket on the bucket and object access under the stack's prefix (target-account/template.yaml grants both).",
      account: here,
      awsError: awsError(fault),
    });
  }
}

async function startDrift(target: DoctorTarget, session: TargetSession) {
  try {
    const detectionId = await session.startDriftDetection(target.env.stackName);
    return {
      detectionId,
      check: result('drift', 'running', 'drift detection started; it takes a minute or more'),
    };
  } catch (error) {
    const fault = classifyAwsError(error);
    return { check: driftDenied(target, fault) };
  }
}

const driftDenied = (target: DoctorTarget, fault: AwsFault) =>
  result('drift', 'warning', `drift detection could not run (${fault.code})`, {
    fix: 'Drift detection reads every resource of the stack: deploy the target stack with EnableDriftDetection=true.',
    account: { kind: 'target', accountId: target.env.accountId },
    awsError: awsError(fault),
  });

/** Drift is a warning, never a failure: it says someone changed resources by hand (the seed's third pitfall). */
export function driftVerdict(
  status: Awaited<ReturnType<TargetSession['driftStatus']>>,
  target: DoctorTarget,
): CheckResult {
  if (status.state === 'running') return result('drift', 'running', 'drift detection is still running');
  if (status.state === 'failed') {
    return result('drift', 'warning', `drift detection failed: ${status.reason}`, {
      fix: 'Drift detection reads every resource of the stack: deploy the target stack with EnableDriftDetection=true.',
      account: { kind: 'target', accountId: target.env.accountId },
    });
  }
  if (status.stackDriftStatus === 'DRIFTED') {
    return result(
      'drift',
      'warning',
      `resources changed outside the template: ${status.drifted.join(', ') || '(see the console)'}`,
      {
        fix: "Put the change into the application's SAM template (or revert it by hand); the next deploy may otherwise fail or undo it.",
        account: { kind: 'target', accountId: target.env.accountId },
      },
    );
  }
  return result('drift', 'passed', `the stack is ${status.stackDriftStatus}`);
}

/** A poll of a running report: continues drift detection with a fresh session (credentials are never stored). */
export async function continueDoctor(
  report: DoctorReport,
  target: DoctorTarget,
  probe: DoctorProbe,
  options: DoctorOptions,
): Promise<DoctorReport> {
  if (report.status !== 'running' || !report.pending) return report;
  let drift: CheckResult;
  let pending: DoctorReport['pending'] = report.pending;
  try {
    const session = await probe.assume(doctorAssumeParams(target, options));
    drift = driftVerdict(await session.driftStatus(report.pending.driftDetectionId), target);
    if (drift.status !== 'running') pending = undefined;
  } catch (error) {
    drift = driftDenied(target, classifyAwsError(error));
    pending = undefined;
  }
  const checks = report.checks.map((check) => (check.id === 'drift' ? drift : check));
  const now = options.clock.now().toISOString();
  const status = overallStatus(checks);
  const { pending: _old, finishedAt: _f, ...rest } = report;
  return {
    ...rest,
    status,
    updatedAt: now,
    ...(status !== 'running' ? { finishedAt: now } : {}),
    checks,
    ...(pending ? { pending } : {}),
  };
}
