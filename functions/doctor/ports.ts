import type { Candidate, Decision, FixLocation } from '#shared/diagnosis/diagnose.ts';
import type { AssumeRoleProbes } from '#shared/diagnosis/evidence.ts';
import type { PolicyFix } from '#shared/diagnosis/statements.ts';
import type { AssumeRoleParams } from '#shared/ports.ts';
import type { Requester } from '#shared/types.ts';

/**
 * What the doctor's core needs from AWS, and what it produces. The AWS adapter is ./aws-probe.ts; tests pass
 * fakes that answer with the errors AWS documents. Credentials never cross these interfaces: a TargetSession
 * keeps the assumed credentials inside the adapter.
 */

export interface Identity {
  arn: string;
  account: string;
}

export interface DoctorProbe {
  /** GetCallerIdentity of the source credentials. */
  callerIdentity(): Promise<Identity>;
  /** AssumeRole exactly as given: nothing is clamped or defaulted, so the doctor tests what the job sends. */
  assume(params: AssumeRoleParams): Promise<TargetSession>;
  /** What can narrow an AccessDenied down: the caller's policy, its role's path, the role, a retry. */
  denialProbes(params: AssumeRoleParams): AssumeRoleProbes;
}

export type DriftStatus =
  | { state: 'running' }
  | { state: 'done'; stackDriftStatus: string; drifted: string[] }
  | { state: 'failed'; reason: string };

/** The deploy role's session in the target account and region. */
export interface TargetSession {
  assumedRoleArn: string;
  expiration: string;
  /** GetCallerIdentity with the session, against the target region's STS endpoint. */
  identity(): Promise<Identity>;
  /** iam:GetRole of a role in the target account; undefined when there is none. */
  role(roleArn: string): Promise<{ arn: string; trustPolicy?: unknown } | undefined>;
  /** iam:SimulatePrincipalPolicy: may `principalArn` pass `roleArn` to CloudFormation? */
  canPassRole(principalArn: string, roleArn: string): Promise<Decision>;
  /** undefined when the stack does not exist. */
  stackStatus(stackName: string): Promise<string | undefined>;
  /** s3:HeadBucket; the region S3 reports for the bucket (it does so even when refusing). */
  bucketRegion(bucket: string): Promise<string | undefined>;
  startDriftDetection(stackName: string): Promise<string>;
  driftStatus(detectionId: string): Promise<DriftStatus>;
}

export const CHECK_IDS = [
  'registry',
  'caller',
  'assume-role',
  'target-identity',
  'execution-role',
  'stack-status',
  'artifacts-bucket',
  'drift',
  'template-policy',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export type CheckStatus = 'passed' | 'failed' | 'warning' | 'skipped' | 'running';

export interface CheckResult {
  id: CheckId;
  title: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
  /** Which account's configuration holds the fix. */
  account?: FixLocation;
  statements?: PolicyFix[];
  /** For a denied AssumeRole: every candidate cause, best first. */
  candidates?: Candidate[];
  /** What could not be checked while narrowing a denial down. */
  unchecked?: string[];
  /** AWS's own error, as evidence. */
  awsError?: { code: string; message: string };
}

export type RunStatus = 'running' | 'passed' | 'warning' | 'failed';

export interface DoctorReport {
  runId: string;
  application: string;
  environment: string;
  /** `api`: the orchestrator's deployer role was tested; `local`: the caller's own credentials. */
  mode: 'api' | 'local';
  status: RunStatus;
  startedAt: string;
  updatedAt: string;
  finishedAt?: string;
  checks: CheckResult[];
  /** Work that continues when the run is polled (drift detection takes minutes). */
  pending?: { driftDetectionId: string };
}

/** A stored run: the report and who asked for it (a poll must come from someone allowed to see it). */
export interface DoctorRun {
  report: DoctorReport;
  requester: Requester;
}

export interface DoctorRunStore {
  put(run: DoctorRun): Promise<void>;
  get(runId: string): Promise<DoctorRun | undefined>;
}
