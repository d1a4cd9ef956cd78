import { array, maxLength, enum as oneOf, strictObject, string } from 'zod/mini';
import { recordEvent } from '#shared/deployments/record.ts';
import { isJobFailureCode } from '#shared/errors.ts';
import { readBuildOutput } from '#shared/jobs/job-env.ts';
import { logger } from '#shared/logger.ts';
import type { Clock, DeploymentStore, JobInfo, JobRunner, TaskTokens } from '#shared/ports.ts';
import { isTerminal, type JobStatus, type TemplatePolicyExceptionUse } from '#shared/types.ts';

export interface JobEventsDeps {
  store: DeploymentStore;
  runner: JobRunner;
  tokens: TaskTokens;
  clock: Clock;
}

/**
 * A job changed state (CodeBuild's "Build State Change" event, or the sweep that covers a lost event).
 * The final status is read from the job itself, never trusted from the event, then the waiting Task's
 * token is completed. A token that no longer exists means the workflow already moved on: not an error.
 */
export async function onJobStateChange(
  buildId: string,
  deps: JobEventsDeps,
): Promise<'delivered' | 'ignored'> {
  const [info] = await deps.runner.describe([buildId]);
  if (!info?.complete || !info.deploymentId || !info.job) return 'ignored';
  return deliverJobResult(info, deps);
}

export async function deliverJobResult(info: JobInfo, deps: JobEventsDeps): Promise<'delivered' | 'ignored'> {
  const { store, tokens, clock } = deps;
  const deploymentId = info.deploymentId!;
  const job = info.job!;
  const deployment = await store.getDeployment(deploymentId);
  if (!deployment) {
    logger.warn('job finished for an unknown deployment', { deploymentId, buildId: info.buildId });
    return 'ignored';
  }
  // Only the job the deployment records counts: a stale event of a replaced job is ignored. A job that is
  // not recorded yet finished before its starter wrote it down (fast local jobs): its id is ours anyway.
  const recorded = deployment.jobs?.[job];
  if (recorded && recorded.buildId !== info.buildId) return 'ignored';
  const jobRecord = (status: JobStatus, finishedAt: string) => ({
    buildId: info.buildId,
    startedAt: recorded?.startedAt ?? finishedAt,
    ...(recorded?.logUrl ? { logUrl: recorded.logUrl } : info.logUrl ? { logUrl: info.logUrl } : {}),
    status,
    finishedAt,
  });
  const token = await store.getTaskToken(deploymentId, job);
  const finishedAt = clock.now().toISOString();
  const succeeded = info.status === 'SUCCEEDED';
  const finishedType = job === 'build' ? 'BUILD_FINISHED' : 'DEPLOY_FINISHED';

  if (succeeded && job === 'build') {
    let buildOutput: ReturnType<typeof readBuildOutput>;
    try {
      buildOutput = readBuildOutput(
        info.exportedVariables,
        info.environmentVariables.OUTPUT_BUCKET ?? '',
        info.environmentVariables.OUTPUT_KEY ?? '',
      );
      const commitTime = readCommitTime(info.exportedVariables.BUILD_COMMIT_TIME, clock.now());
      if (commitTime) buildOutput = { ...buildOutput, commitTime };
    } catch (error) {
      await recordEvent(store, clock, deploymentId, finishedType, {
        buildId: info.buildId,
        status: 'FAILED',
      });
      if (token)
        await tokens.fail(token, 'JobFailedError', causeOf('BUILD_FAILED', (error as Error).message));
      return 'delivered';
    }
    if (!isTerminal(deployment.status)) {
      await store.updateDeployment(deploymentId, {
        buildOutput,
        resolvedCommit: buildOutput.resolvedCommit,
        jobs: { build: jobRecord(info.status, finishedAt) },
        updatedAt: finishedAt,
      });
    }
    await recordEvent(store, clock, deploymentId, finishedType, {
      buildId: info.buildId,
      status: info.status,
      resolvedCommit: buildOutput.resolvedCommit,
      versionId: buildOutput.versionId,
      sha256: buildOutput.sha256,
    });
    if (token)
      await tokens.succeed(token, {
        buildId: info.buildId,
        status: info.status,
        resolvedCommit: buildOutput.resolvedCommit,
      });
    return 'delivered';
  }

  // The template policy step (buildspecs/deploy.yml): registry exceptions it let through are audited whatever
  // the outcome; a refusal is the job's failure reason.
  const { exceptions, unreadable } =
    job === 'deploy'
      ? readPolicyExceptions(info.exportedVariables.TEMPLATE_POLICY_EXCEPTIONS)
      : { exceptions: [], unreadable: false };
  const refused = job === 'deploy' ? info.exportedVariables.TEMPLATE_POLICY_REFUSED : undefined;
  if (exceptions.length > 0 || unreadable) {
    if (!isTerminal(deployment.status)) {
      await store.updateDeployment(deploymentId, {
        templatePolicyExceptions: exceptions,
        updatedAt: finishedAt,
      });
    }
    await recordEvent(store, clock, deploymentId, 'TEMPLATE_POLICY_EXCEPTIONS_USED', {
      exceptions,
      ...(unreadable ? { unreadable: true } : {}),
    });
  }
  const changeSet = info.exportedVariables.CHANGE_SET_SUMMARY;
  // A reviewed environment's job created the change set without executing it: the workflow reviews it next.
  const changeSetArn =
    job === 'deploy' && succeeded ? readChangeSetArn(info.exportedVariables.CHANGE_SET_ARN) : undefined;
  // sam deploy found nothing to change: a success all the same, recorded as such.
  const noChanges = succeeded && info.exportedVariables.NO_CHANGES === 'true';
  if (!isTerminal(deployment.status)) {
    await store.updateDeployment(deploymentId, {
      jobs: { [job]: jobRecord(info.status, finishedAt) },
      updatedAt: finishedAt,
      ...(succeeded && changeSet ? { changeSet } : {}),
      ...(noChanges ? { noChanges } : {}),
      ...(changeSetArn ? { changeSetArn } : {}),
    });
  }
  await recordEvent(store, clock, deploymentId, finishedType, {
    buildId: info.buildId,
    status: info.status,
    ...(succeeded && changeSet ? { changeSet } : {}),
    ...(noChanges ? { noChanges } : {}),
    ...(changeSetArn ? { changeSetArn } : {}),
  });
  if (!token) {
    logger.warn('no task token stored for a finished job', { deploymentId, job });
    return 'delivered';
  }
  if (
    succeeded &&
    job === 'deploy' &&
    info.environmentVariables.CHANGE_SET_ONLY === 'true' &&
    !noChanges &&
    !changeSetArn
  ) {
    // The job was told not to execute: without the ARN there is nothing to review, and nothing ran.
    await tokens.fail(
      token,
      'JobFailedError',
      causeOf('DEPLOY_FAILED', 'the deploy job created no change set to review (no CHANGE_SET_ARN)'),
    );
  } else if (succeeded) {
    await tokens.succeed(token, {
      buildId: info.buildId,
      status: info.status,
      ...(changeSet ? { changeSet } : {}),
    });
  } else if (refused) {
    await tokens.fail(
      token,
      'JobFailedError',
      causeOf('TEMPLATE_POLICY_VIOLATION', `the template policy refuses ${refused}`),
    );
  } else {
    // The job's own reason when it gave one (a refusal the README promises), else the job's generic code.
    const reason = info.exportedVariables.CROSSDEPLOY_FAILURE;
    const code = isJobFailureCode(reason) ? reason : job === 'build' ? 'BUILD_FAILED' : 'DEPLOY_FAILED';
    const why = isJobFailureCode(reason) ? ` (${reason})` : '';
    await tokens.fail(token, 'JobFailedError', causeOf(code, `the ${job} job ended ${info.status}${why}`));
  }
  return 'delivered';
}

/** Strict ISO-8601 with seconds and an offset (the output of git's %cI), nothing before or after it. */
const COMMIT_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;
/** A committer clock a little ahead is tolerated; a commit from the far future is not believed. */
const COMMIT_TIME_SKEW_MS = 3_600_000;

/**
 * The build job's BUILD_COMMIT_TIME, normalised to UTC, or undefined. The job runs repository code, so the
 * value is untrusted: anything but a real calendar time with an offset, not after now, is ignored (lead time
 * then has no sample for this deployment; the build itself is fine).
 */
export function readCommitTime(text: string | undefined, now: Date): string | undefined {
  if (!text) return undefined;
  const match = COMMIT_TIME.exec(text);
  if (!match) {
    logger.warn('the build job exported an unreadable BUILD_COMMIT_TIME');
    return undefined;
  }
  const [, year, month, day, hour, minute, second, , offsetHours, offsetMinutes] = match.map(Number);
  const calendar = new Date(Date.UTC(year!, month! - 1, day!, hour!, minute!, second!));
  const real =
    calendar.getUTCMonth() === month! - 1 &&
    calendar.getUTCDate() === day! &&
    hour! < 24 &&
    minute! < 60 &&
    second! < 60 &&
    (offsetHours === undefined || Number.isNaN(offsetHours) || (offsetHours < 24 && offsetMinutes! < 60));
  const time = Date.parse(text);
  if (!real || !Number.isFinite(time) || time > now.getTime() + COMMIT_TIME_SKEW_MS || year! < 1970) {
    logger.warn('the build job exported an implausible BUILD_COMMIT_TIME');
    return undefined;
  }
  return new Date(time).toISOString();
}

/** Only a CloudFormation change set ARN is kept: the value is later handed to ExecuteChangeSet. */
const CHANGE_SET_ARN =
  /^arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:changeSet\/[A-Za-z0-9-]{1,128}\/[A-Za-z0-9-]{1,128}$/;

function readChangeSetArn(text: string | undefined): string | undefined {
  if (!text) return undefined;
  if (CHANGE_SET_ARN.test(text)) return text;
  logger.warn('the deploy job exported an unreadable CHANGE_SET_ARN');
  return undefined;
}

// zod/mini: the classic build is ~440 kB in this function's bundle for one small schema (cold start).
const policyExceptions = array(
  strictObject({
    kind: oneOf(['allowedTrustPrincipals', 'allowedManagedPolicies']),
    value: string().check(maxLength(2048)),
    resource: string().check(maxLength(512)),
  }),
).check(maxLength(100));

/** The deploy job's TEMPLATE_POLICY_EXCEPTIONS; a malformed value is still audited, as unreadable. */
function readPolicyExceptions(text: string | undefined): {
  exceptions: TemplatePolicyExceptionUse[];
  unreadable: boolean;
} {
  if (!text) return { exceptions: [], unreadable: false };
  try {
    return { exceptions: policyExceptions.parse(JSON.parse(text)), unreadable: false };
  } catch {
    logger.warn('the deploy job exported unreadable TEMPLATE_POLICY_EXCEPTIONS');
    return { exceptions: [], unreadable: true };
  }
}

/** The Cause the Catch puts at $.error: the same JSON shape a Lambda error has, plus our code. */
function causeOf(code: string, message: string): string {
  return JSON.stringify({ errorType: 'JobFailedError', errorMessage: message, code });
}
