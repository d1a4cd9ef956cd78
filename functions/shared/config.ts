import { ConfigError } from './errors.ts';
import { bucketOfSpecLocation, jobOfSpecLocation } from './jobs/job-specs.ts';
import type { JobKind } from './types.ts';

/**
 * Reads and checks environment variables once, failing fast with the variable's name. No silent defaults
 * for ARNs or table names. The checks are a few lines each rather than a schema library: every function
 * reads its configuration, and most of them need nothing else that a schema library would pay for.
 */

/** Checks one variable: its value, or why it is not acceptable. */
export type EnvCheck<T> = (value: string | undefined) => { value: T } | { problem: string };

type Checked<S> = { [K in keyof S]: S[K] extends EnvCheck<infer T> ? T : never };

export function readEnv<S extends Record<string, EnvCheck<unknown>>>(
  spec: S,
  env: NodeJS.ProcessEnv = process.env,
): Checked<S> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, check] of Object.entries(spec)) {
    const result = check(env[name]);
    if ('problem' in result) problems.push(`${name}: ${result.problem}`);
    else values[name] = result.value;
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return values as Checked<S>;
}

/** A required string of at least `min` characters. */
export const text =
  (min = 1): EnvCheck<string> =>
  (value) =>
    value === undefined
      ? { problem: 'is required' }
      : value.length < min
        ? { problem: `must be at least ${min} characters` }
        : { value };

/** A required ARN. */
export const arn = (): EnvCheck<string> => (value) =>
  value === undefined
    ? { problem: 'is required' }
    : value.startsWith('arn:')
      ? { value }
      : { problem: 'must be an ARN (arn:...)' };

/** A required 12-digit AWS account id. */
export const accountId = (): EnvCheck<string> => (value) =>
  value === undefined
    ? { problem: 'is required' }
    : /^\d{12}$/.test(value)
      ? { value }
      : { problem: 'must be a 12-digit AWS account id' };

/** A required whole number above zero. */
export const positiveInteger = (): EnvCheck<number> => (value) => {
  const number = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
  return Number.isInteger(number) && number > 0
    ? { value: number }
    : { problem: value === undefined ? 'is required' : 'must be a whole number above 0' };
};

/** An optional string, trimmed; empty counts as unset. */
export const optionalText = (): EnvCheck<string | undefined> => (value) => {
  const trimmed = value?.trim();
  return { value: trimmed === '' ? undefined : trimmed };
};

/** The S3 ARN of a buildspec published for `job` (functions/shared/jobs/job-specs.ts). */
export const jobSpecLocation =
  (job: JobKind): EnvCheck<string> =>
  (value) =>
    value === undefined
      ? { problem: 'is required' }
      : jobOfSpecLocation(value) === job
        ? { value }
        : { problem: `must be the S3 ARN of a published ${job} buildspec (job-specs/${job}-<sha256>.yml)` };

export const envShapes = {
  table: { TABLE_NAME: text(3) },
  jobs: {
    BUILD_PROJECT: text(2),
    DEPLOY_PROJECT: text(2),
    ARTIFACTS_BUCKET: text(3),
  },
  /** The buildspecs the stack published (JobSpecs custom resource), by S3 ARN. */
  jobSpecs: {
    JOB_SPECS_BUCKET: text(3),
    BUILD_BUILDSPEC_LOCATION: jobSpecLocation('build'),
    DEPLOY_BUILDSPEC_LOCATION: jobSpecLocation('deploy'),
  },
  timeouts: {
    QUEUED_TIMEOUT_MINUTES: positiveInteger(),
    DEPLOY_TIMEOUT_MINUTES: positiveInteger(),
  },
  stateMachine: { STATE_MACHINE_ARN: arn() },
  logs: { BUILD_LOG_GROUP: text(), DEPLOY_LOG_GROUP: text() },
  /** Bare role-name rules in the registry name roles of this account. */
  orchestrator: { ORCHESTRATOR_ACCOUNT_ID: accountId() },
};

/** The published buildspec of each job, which must be objects of the stack's own JobSpecs bucket. */
export function publishedBuildspecs(env: {
  JOB_SPECS_BUCKET: string;
  BUILD_BUILDSPEC_LOCATION: string;
  DEPLOY_BUILDSPEC_LOCATION: string;
}): Record<JobKind, string> {
  const locations = { build: env.BUILD_BUILDSPEC_LOCATION, deploy: env.DEPLOY_BUILDSPEC_LOCATION };
  for (const [job, location] of Object.entries(locations)) {
    if (bucketOfSpecLocation(location) !== env.JOB_SPECS_BUCKET) {
      throw new ConfigError(
        `invalid configuration: the ${job} buildspec ${location} is not in the JobSpecs bucket ${env.JOB_SPECS_BUCKET}`,
      );
    }
  }
  return locations;
}

/** The lock lease outlives the longest deploy job (queued + build timeout) with a margin. */
export function leaseSeconds(queuedMinutes: number, deployMinutes: number): number {
  return (queuedMinutes + deployMinutes) * 60 + 15 * 60;
}
