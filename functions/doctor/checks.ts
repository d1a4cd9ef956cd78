import type { AwsFault } from '#shared/diagnosis/aws-fault.ts';
import {
  type Diagnosis,
  type DiagnosisContext,
  ROLE_CHAINING_LIMIT_SECONDS,
} from '#shared/diagnosis/diagnose.ts';
import type { AssumeRoleParams, Clock } from '#shared/ports.ts';
import type { EnvironmentConfig } from '#shared/registry/registry.ts';
import { roleSessionName, sourceIdentity } from '#shared/registry/requester.ts';
import type { Requester } from '#shared/types.ts';
import type { CheckId, CheckResult, CheckStatus } from './ports.ts';

/**
 * What every doctor check is made of: the target and the run's options, the titles, the result shapes and the
 * deploy job's STS parameters. The checks are in local-checks.ts (no AWS call), access-checks.ts (caller,
 * deploy role, target account, execution role) and stack-checks.ts (stack, bucket, drift); core.ts runs them.
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
  /**
   * The template policy check of a built template (`--template`: the deploy job's rules, no AWS call), run last.
   * Only the CLI has a template; it passes template-check.ts's check, so the Lambda never loads the engine.
   */
  templatePolicy?: (target: DoctorTarget) => CheckResult;
}

export interface DoctorTemplate {
  /** Where it was read from, for the report. */
  path: string;
  text: string;
  /** Local nested templates next to it, as the deploy job reads them from the build output. */
  loadNested?: (location: string) => string | undefined;
}

export const result = (
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

export const skip = (id: CheckId, why: string) => result(id, 'skipped', why);

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

export const registryPath = (target: DoctorTarget) =>
  `applications.${target.application}.environments.${target.environment}`;

export function diagnosisContext(target: DoctorTarget, options: DoctorOptions): DiagnosisContext {
  return {
    attempt: doctorAssumeParams(target, options),
    targetAccountId: target.env.accountId,
    registryPath: registryPath(target),
    ...(options.expectedCallerRoleArn ? { expectedCallerRoleArn: options.expectedCallerRoleArn } : {}),
    ...(options.deployJobRoleArn ? { deployJobRoleArn: options.deployJobRoleArn } : {}),
  };
}

/** A failed check from a diagnosis: the best candidate's fix, and every candidate for the reader. */
export function fromDiagnosis(id: CheckId, diagnosis: Diagnosis): CheckResult {
  const [best] = diagnosis.candidates;
  return result(id, 'failed', diagnosis.headline, {
    ...(best ? { fix: best.fix, account: best.account } : {}),
    ...(best?.statements?.length ? { statements: best.statements } : {}),
    ...(diagnosis.candidates.length > 1 ? { candidates: diagnosis.candidates } : {}),
    ...(diagnosis.unchecked.length > 0 ? { unchecked: diagnosis.unchecked } : {}),
    awsError: { code: diagnosis.fault.code, message: diagnosis.fault.message },
  });
}

export const awsError = (fault: AwsFault) => ({ code: fault.code, message: fault.message });
