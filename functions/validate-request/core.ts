import { finish, newDeployment, recordEvent } from '#shared/deployments.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { deployParameters, type Registry } from '#shared/registry.ts';
import type { BuildOutput, Requester, Trigger } from '#shared/types.ts';
import { validateRequest } from '#shared/validation.ts';

export interface ValidateInput {
  deploymentId: string;
  input: {
    deploymentId?: string;
    application?: unknown;
    environment?: unknown;
    ref?: unknown;
    reason?: unknown;
    dryRun?: unknown;
    requester: Requester;
    trigger?: Trigger;
    requestedAt?: string;
    /** Promotions and rollbacks name a recorded build output by the deployment that produced it. */
    buildOutputFrom?: string;
  };
}

export type ValidateOutput =
  | { outcome: 'VALIDATED'; buildOutput?: BuildOutput }
  | { outcome: 'REJECTED'; code: string };

export interface ValidateDeps {
  store: DeploymentStore;
  registry: Registry;
  clock: Clock;
}

/**
 * The workflow's first step. It creates the record when the request did not come through the API
 * (schedules), then runs the same validation core as the API: schedules never pass the API's checks.
 */
export async function validateStep(event: ValidateInput, deps: ValidateDeps): Promise<ValidateOutput> {
  const { store, clock, registry } = deps;
  const { input } = event;
  const deploymentId = event.deploymentId;
  const now = clock.now().toISOString();
  const { created, deployment } = await store.createDeployment(
    newDeployment({
      deploymentId,
      application: String(input.application ?? ''),
      environment: String(input.environment ?? ''),
      ...(typeof input.ref === 'string' ? { ref: input.ref } : {}),
      ...(typeof input.reason === 'string' ? { reason: input.reason } : {}),
      dryRun: input.dryRun === true,
      requester: input.requester,
      trigger: input.trigger ?? 'schedule',
      requestedAt: input.requestedAt ?? now,
    }),
  );
  if (created) {
    await recordEvent(store, clock, deploymentId, 'REQUESTED', {
      requester: input.requester,
      trigger: deployment.trigger,
      ...(deployment.ref ? { ref: deployment.ref } : {}),
    });
  }
  if (deployment.status !== 'QUEUED' && deployment.status !== 'RUNNING') {
    // Already decided (e.g. this step ran twice and the first run rejected it).
    return { outcome: 'REJECTED', code: deployment.errorCode ?? deployment.status };
  }
  await store.updateDeployment(deploymentId, { status: 'RUNNING', phase: 'VALIDATING', updatedAt: now });

  try {
    const body: Record<string, unknown> = { application: input.application, environment: input.environment };
    for (const field of ['ref', 'reason', 'dryRun'] as const)
      if (input[field] !== undefined) body[field] = input[field];
    const valid = validateRequest(body, input.requester, registry);
    const buildOutput = input.buildOutputFrom
      ? await recordedBuildOutput(store, input.buildOutputFrom, valid.application)
      : undefined;
    const { parameters, hash } = deployParameters(valid.target.env);
    await store.updateDeployment(deploymentId, {
      ref: valid.ref,
      targetAccount: valid.target.env.accountId,
      targetRegion: valid.target.env.region,
      stackName: valid.target.env.stackName,
      parameters,
      parametersHash: hash,
      phase: 'BUILDING',
      updatedAt: clock.now().toISOString(),
      ...(buildOutput ? { buildOutput, resolvedCommit: buildOutput.resolvedCommit } : {}),
    });
    if (valid.target.env.mode !== 'reject') {
      // The place in the queue is taken now, before the build, so the order is the order of requests.
      await store.putTicket({
        application: valid.application,
        environment: valid.environment,
        deploymentId,
        requestedAt: deployment.requestedAt,
      });
    }
    await recordEvent(store, clock, deploymentId, 'VALIDATED', {
      ref: valid.ref,
      targetAccount: valid.target.env.accountId,
      region: valid.target.env.region,
      stackName: valid.target.env.stackName,
      parametersHash: hash,
      dryRun: valid.dryRun,
      ...(buildOutput
        ? { buildOutputFrom: input.buildOutputFrom, resolvedCommit: buildOutput.resolvedCommit }
        : {}),
    });
    return buildOutput ? { outcome: 'VALIDATED', buildOutput } : { outcome: 'VALIDATED' };
  } catch (error) {
    if (!(error instanceof RequestRejectedError)) throw error;
    await finish(store, clock, deploymentId, 'REJECTED', {
      errorCode: error.code,
      errorMessage: error.message,
    });
    return { outcome: 'REJECTED', code: error.code };
  }
}

async function recordedBuildOutput(store: DeploymentStore, fromId: string, application: string) {
  const source = await store.getDeployment(fromId);
  if (!source?.buildOutput || source.application !== application) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      `deployment ${fromId} has no recorded build output of application ${application}`,
    );
  }
  return source.buildOutput;
}
