/**
 * jobs/: the build and deploy jobs: their buildspecs (buildspecs.ts, generated), their environment (this
 * file) and the STS session parameters the preflight, settle step and the job's credential helper share.
 * May import: the cross-cutting modules and registry/. Never aws/.
 *
 * The job contract (docs/design.md, "Job contract"): the environment variables the build and deploy jobs
 * get, and how the build job's exported variables become a BuildOutput. Pure functions: the StartBuild
 * adapter and the local runner both hand these maps to buildspecs/build.yml and buildspecs/deploy.yml.
 * No value here is a secret: the deploy job gets role ARNs and an ExternalId, never credentials.
 */
import { createHash } from 'node:crypto';
import { JobFailedError, JobStartError } from '../errors.ts';
import type { Target } from '../registry/registry.ts';
import { roleSessionName, sourceIdentity } from '../registry/requester.ts';
import type { BuildOutput, Deployment, JobKind } from '../types.ts';

export interface JobSettings {
  /** The orchestrator's versioned artifacts bucket (local mode: a name for the artifacts directory). */
  outputBucket: string;
}

// The id becomes part of an S3 key and, in local mode, a file name.
const DEPLOYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const COMMIT = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
// S3 version ids are opaque; the local runner's are SHA-256 digests. Printable, bounded, one line.
const VERSION_ID = /^[\x21-\x7e]{1,1024}$/;

export function buildOutputKey(application: string, deploymentId: string): string {
  return `builds/${application}/${deploymentId}.zip`;
}

function common(deployment: Deployment, target: Target, job: JobKind): Record<string, string> {
  if (!DEPLOYMENT_ID.test(deployment.deploymentId)) {
    throw new JobStartError(
      `deployment id ${JSON.stringify(deployment.deploymentId)} cannot name a build output`,
    );
  }
  if (deployment.application !== target.application || deployment.environment !== target.environment) {
    throw new JobStartError(
      `deployment ${deployment.deploymentId} is for ${deployment.application}/${deployment.environment}, ` +
        `not ${target.application}/${target.environment}`,
    );
  }
  return {
    DEPLOYMENT_ID: deployment.deploymentId,
    CROSSDEPLOY_JOB: job,
    APPLICATION: deployment.application,
    ENVIRONMENT: deployment.environment,
  };
}

export function buildJobEnvironment(
  deployment: Deployment,
  target: Target,
  settings: JobSettings,
): Record<string, string> {
  return {
    ...common(deployment, target, 'build'),
    SOURCE_REF: deployment.ref ?? target.app.defaultRef,
    TEMPLATE_PATH: target.app.templatePath,
    OUTPUT_BUCKET: settings.outputBucket,
    OUTPUT_KEY: buildOutputKey(deployment.application, deployment.deploymentId),
  };
}

/** The registry parameters a deployment recorded (registry.ts `deployParameters`), as read back from its record. */
export interface RecordedParameters {
  stackName: string;
  region: string;
  capabilities: string[];
  parameterOverrides: Record<string, string>;
  executionRoleArn: string;
}

const isString = (value: unknown): value is string => typeof value === 'string';

/** The recorded parameters in their exact shape, or undefined when the record holds something else. */
export function readRecordedParameters(value: unknown): RecordedParameters | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { stackName, region, capabilities, parameterOverrides, executionRoleArn } = value as Record<
    string,
    unknown
  >;
  if (!isString(stackName) || !isString(region) || !isString(executionRoleArn)) return undefined;
  if (!Array.isArray(capabilities) || !capabilities.every(isString)) return undefined;
  if (!parameterOverrides || typeof parameterOverrides !== 'object' || Array.isArray(parameterOverrides)) {
    return undefined;
  }
  if (!Object.values(parameterOverrides).every(isString)) return undefined;
  return {
    stackName,
    region,
    capabilities: [...capabilities],
    parameterOverrides: { ...(parameterOverrides as Record<string, string>) },
    executionRoleArn,
  };
}

/**
 * What the deploy job passes to `sam deploy` besides the build output. A rollback redeploys release N's
 * registry parameters as recorded on this deployment (Validate Request copied them from release N), not the
 * registry's current ones; every other deployment uses the registry's settings for the target.
 */
function deploySettings(
  deployment: Deployment,
  target: Target,
): Pick<RecordedParameters, 'capabilities' | 'parameterOverrides' | 'executionRoleArn'> {
  if (deployment.kind !== 'rollback') return target.env;
  const recorded = readRecordedParameters(deployment.parameters);
  if (!recorded) {
    throw new JobStartError(
      `rollback ${deployment.deploymentId} has no recorded registry parameters of the release it redeploys`,
    );
  }
  if (recorded.stackName !== target.env.stackName || recorded.region !== target.env.region) {
    throw new JobStartError(
      `rollback ${deployment.deploymentId} recorded stack ${recorded.stackName} in ${recorded.region}, ` +
        `but the registry now says ${target.env.stackName} in ${target.env.region}`,
    );
  }
  return recorded;
}

/**
 * The deploy job deploys exactly the recorded build output (which a promotion may have taken from another
 * deployment) with the registry's settings for the target (a rollback: release N's recorded parameters).
 * When the deployment already recorded where it goes, a registry that now says otherwise stops the job
 * rather than deploying somewhere else.
 */
export function deployJobEnvironment(deployment: Deployment, target: Target): Record<string, string> {
  const output = deployment.buildOutput;
  if (!output) throw new JobStartError(`deployment ${deployment.deploymentId} has no build output to deploy`);
  if (!SHA256.test(output.sha256) || !VERSION_ID.test(output.versionId)) {
    throw new JobStartError(`deployment ${deployment.deploymentId} has a malformed build output record`);
  }
  const env = target.env;
  const recorded: [string, string | undefined, string][] = [
    ['target account', deployment.targetAccount, env.accountId],
    ['target region', deployment.targetRegion, env.region],
    ['stack name', deployment.stackName, env.stackName],
  ];
  for (const [what, was, now] of recorded) {
    if (was !== undefined && was !== now) {
      throw new JobStartError(`the registry's ${what} is now ${now}, but deployment recorded ${was}`);
    }
  }
  const settings = deploySettings(deployment, target);
  const overrides = Object.fromEntries(
    Object.entries(settings.parameterOverrides).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return {
    ...common(deployment, target, 'deploy'),
    OUTPUT_BUCKET: output.bucket,
    OUTPUT_KEY: output.key,
    OUTPUT_VERSION_ID: output.versionId,
    OUTPUT_SHA256: output.sha256,
    TARGET_ACCOUNT_ID: env.accountId,
    TARGET_REGION: env.region,
    DEPLOY_ROLE_ARN: env.deployRoleArn,
    EXTERNAL_ID: env.externalId ?? '',
    SOURCE_IDENTITY: sourceIdentity(deployment.requester),
    ROLE_SESSION_NAME: roleSessionName(deployment.deploymentId),
    STACK_NAME: env.stackName,
    ARTIFACTS_BUCKET: env.artifactsBucket,
    EXECUTION_ROLE_ARN: settings.executionRoleArn,
    CAPABILITIES: settings.capabilities.join(' '),
    PARAMETER_OVERRIDES_JSON: JSON.stringify(overrides),
    DRY_RUN: deployment.dryRun ? 'true' : 'false',
    // Reviewed environments: the job creates the change set and stops; the workflow executes it once approved.
    CHANGE_SET_ONLY: env.approval !== 'none' && !deployment.dryRun ? 'true' : 'false',
    // The template policy's registry exceptions for this environment (the current registry's, rollbacks too).
    TEMPLATE_POLICY_EXCEPTIONS_JSON: JSON.stringify({
      allowedTrustPrincipals: env.allowedTrustPrincipals ?? [],
      allowedManagedPolicies: env.allowedManagedPolicies ?? [],
    }),
  };
}

/** StartBuild's idempotencyToken: the same for every attempt of one job, so a retried task starts no second build. */
export function jobIdempotencyToken(deploymentId: string, job: JobKind): string {
  return createHash('sha256').update(`crossdeploy/${deploymentId}/${job}`).digest('hex');
}

/** The build job's exported variables (buildspecs/build.yml) as the BuildOutput the deploy job will fetch. */
export function readBuildOutput(
  exportedVariables: Record<string, string>,
  bucket: string,
  key: string,
): BuildOutput {
  const read = (name: string, pattern: RegExp): string => {
    const value = exportedVariables[name];
    if (value === undefined || value === '') {
      throw new JobFailedError('build', `the build job did not export ${name}`, {
        details: { variable: name },
      });
    }
    if (!pattern.test(value)) {
      throw new JobFailedError('build', `the build job exported a malformed ${name}`, {
        details: { variable: name },
      });
    }
    return value;
  };
  return {
    bucket,
    key,
    versionId: read('BUILD_OUTPUT_VERSION_ID', VERSION_ID),
    sha256: read('BUILD_OUTPUT_SHA256', SHA256),
    resolvedCommit: read('RESOLVED_COMMIT', COMMIT),
  };
}
