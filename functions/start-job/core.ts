import { recordEvent } from '#shared/deployments/record.ts';
import { CrossdeployError, JobStartError } from '#shared/errors.ts';
import { buildJobEnvironment, deployJobEnvironment, jobIdempotencyToken } from '#shared/jobs/job-env.ts';
import type { Clock, DeploymentStore, JobRunner, JobStart } from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { isTerminal, type JobKind } from '#shared/types.ts';

export interface StartJobInput {
  deploymentId: string;
  job: JobKind;
  taskToken: string;
}

export interface StartJobDeps {
  store: DeploymentStore;
  registry: Registry;
  runner: JobRunner;
  clock: Clock;
  settings: { outputBucket: string };
}

/**
 * Starts the build or deploy job. The task token is stored before the job starts, so the job's state
 * change always finds it; the idempotency token means a retried invocation never starts a second job.
 */
export async function startJob(input: StartJobInput, deps: StartJobDeps): Promise<{ buildId: string }> {
  const { store, registry, runner, clock } = deps;
  const deployment = await store.getDeployment(input.deploymentId);
  if (!deployment) throw new JobStartError(`deployment ${input.deploymentId} does not exist`);
  if (isTerminal(deployment.status)) {
    throw new JobStartError(`deployment ${input.deploymentId} is already ${deployment.status}`);
  }
  const target = findTarget(registry, deployment.application, deployment.environment);
  if (!target)
    throw new JobStartError(`${deployment.application}/${deployment.environment} left the registry`);

  await store.putTaskToken(deployment.deploymentId, input.job, input.taskToken);
  const isBuild = input.job === 'build';
  const environmentVariables = isBuild
    ? buildJobEnvironment(deployment, target, deps.settings)
    : deployJobEnvironment(deployment, target);
  const { buildId, logUrl } = await startOrExplain(runner, input.job, {
    deploymentId: deployment.deploymentId,
    job: input.job,
    idempotencyToken: jobIdempotencyToken(deployment.deploymentId, input.job),
    environmentVariables,
    ...(isBuild
      ? {
          source: {
            type: target.app.source.type,
            location: target.app.source.location,
            version: deployment.ref ?? target.app.defaultRef,
            ...(target.app.source.connectionArn ? { connectionArn: target.app.source.connectionArn } : {}),
            ...(target.app.source.localPath ? { localPath: target.app.source.localPath } : {}),
          },
        }
      : {}),
  });
  const startedAt = clock.now().toISOString();
  // A very fast job may already have reported its end: never overwrite that record.
  const current = await store.getDeployment(deployment.deploymentId);
  if (!current?.jobs?.[input.job]?.status) {
    await store.updateDeployment(deployment.deploymentId, {
      phase: isBuild ? 'BUILDING' : 'DEPLOYING',
      jobs: { [input.job]: { buildId, startedAt, ...(logUrl ? { logUrl } : {}) } },
      updatedAt: startedAt,
    });
  }
  await recordEvent(store, clock, deployment.deploymentId, isBuild ? 'BUILD_STARTED' : 'DEPLOY_STARTED', {
    buildId,
    ...(logUrl ? { logUrl } : {}),
  });
  return { buildId };
}

/**
 * A start the runner refuses for good (a missing project, a denied StartBuild) ends the deployment as
 * JOB_START_FAILED, named by the error's name only: the service's own text may carry account ARNs. A
 * transient refusal keeps its name, so the state machine retries it.
 */
async function startOrExplain(runner: JobRunner, job: JobKind, start: JobStart) {
  try {
    return await runner.start(start);
  } catch (error) {
    // Ours already say what happened (TransientError is retried, JobStartError is not).
    if (error instanceof CrossdeployError) throw error;
    const { name = 'Error', code } = (error ?? {}) as { name?: string; code?: unknown };
    const named = typeof code === 'string' && code !== name ? `${name} ${code}` : name;
    throw new JobStartError(`the ${job} job could not be started (${named})`, { cause: error });
  }
}
