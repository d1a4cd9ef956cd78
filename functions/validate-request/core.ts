import { auditFreezeOverride } from '#shared/deployments/freeze-override.ts';
import {
  finish,
  newDeployment,
  recordEvent,
  refuseSimulatedSource,
  type SimulationCheck,
} from '#shared/deployments/record.ts';
import {
  type ValidRequest,
  validatePromotion,
  validateRequest,
  validateRollback,
} from '#shared/deployments/validation.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { readRecordedParameters } from '#shared/jobs/job-env.ts';
import { logger } from '#shared/logger.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { deployParameters, findTarget, type Registry } from '#shared/registry/registry.ts';
import { mayOverrideFreeze, type RuleScope } from '#shared/registry/requester.ts';
import type { BuildOutput, Deployment, Requester, Trigger } from '#shared/types.ts';

export interface WorkflowInput {
  deploymentId?: string;
  application?: unknown;
  environment?: unknown;
  ref?: unknown;
  reason?: unknown;
  dryRun?: unknown;
  overrideFreeze?: unknown;
  /** A promotion names its source environment; a rollback the release it redeploys. */
  promoteFrom?: unknown;
  rollbackRelease?: unknown;
  /** The deployment whose recorded build output to deploy (the API resolves it for promotions and rollbacks). */
  buildOutputFrom?: string;
  /**
   * Set by an EventBridge Scheduler schedule (or the local scheduler), which cannot choose the execution
   * name: the tick is claimed first, so a duplicate fire of the same tick starts nothing new.
   */
  schedule?: { name?: unknown; scheduledTime?: unknown };
  requester: Requester;
  trigger?: Trigger;
  requestedAt?: string;
}

export interface ValidateInput {
  deploymentId: string;
  input: WorkflowInput;
}

export type ValidateOutput =
  | { outcome: 'VALIDATED'; buildOutput?: BuildOutput }
  | { outcome: 'REJECTED' | 'SKIPPED' | 'ENDED'; code: string };

export interface ValidateDeps {
  store: DeploymentStore;
  registry: Registry;
  clock: Clock;
  /** The orchestrator's account, to which bare role-name rules are bound (absent in local mode). */
  orchestratorAccount?: string;
  /** Local mode only: marks `runner: simulate` requests simulated when this step creates their record. */
  isSimulated?: SimulationCheck;
}

/**
 * The workflow's first step. It creates the record when the request did not come through the API
 * (schedules), then runs the same validation core as the API: schedules never pass the API's checks.
 * Promotions and rollbacks resolve the recorded build output they deploy; Build is then skipped.
 */
export async function validateStep(event: ValidateInput, deps: ValidateDeps): Promise<ValidateOutput> {
  const { store, clock } = deps;
  const { input } = event;
  const deploymentId = event.deploymentId;
  const now = clock.now();
  if (input.schedule !== undefined) {
    const tick = await claimTick(store, String(input.application), input.schedule, deploymentId, now);
    if (tick.outcome === 'duplicate') return { outcome: 'ENDED', code: 'DUPLICATE_TICK' };
    input.requester = { type: 'schedule', scheduleName: tick.name };
    input.trigger = 'schedule';
  }
  const target = findTarget(deps.registry, String(input.application ?? ''), String(input.environment ?? ''));
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
      requestedAt: input.requestedAt ?? now.toISOString(),
      ...(target && deps.isSimulated?.(target) ? { simulated: true } : {}),
    }),
  );
  // Set once at creation (here or by the API): a later registry change does not rewrite what this one was.
  const simulated = deployment.simulated ? { simulated: true } : {};
  if (created) {
    await recordEvent(store, clock, deploymentId, 'REQUESTED', {
      requester: input.requester,
      trigger: deployment.trigger,
      ...(deployment.ref ? { ref: deployment.ref } : {}),
      ...simulated,
    });
  }
  if (deployment.status !== 'QUEUED' && deployment.status !== 'RUNNING') {
    // Already decided (this step ran twice, or a schedule fired the same tick twice).
    return { outcome: 'ENDED', code: deployment.errorCode ?? deployment.status };
  }
  await store.updateDeployment(deploymentId, {
    status: 'RUNNING',
    phase: 'VALIDATING',
    updatedAt: now.toISOString(),
  });

  try {
    const valid = validate(input, deps, now);
    const source = await sourceOf(store, valid, input.buildOutputFrom);
    if (source)
      refuseSimulatedSource(source, { environment: valid.environment, simulated: !!deployment.simulated });
    const { parameters, hash } =
      valid.kind === 'rollback' ? releaseParameters(source!, valid) : deployParameters(valid.target.env);
    if (source && deployment.trigger === 'schedule') {
      // A scheduled promotion with nothing new is not redeployed.
      const current = await store.lastSuccessful(valid.application, valid.environment);
      if (current?.buildOutput?.sha256 === source.buildOutput.sha256 && current.parametersHash === hash) {
        await finish(store, clock, deploymentId, 'SKIPPED', {
          errorCode: 'ALREADY_DEPLOYED',
          errorMessage: `${valid.environment} already runs this build output (deployment ${current.deploymentId}) with the same registry parameters`,
        });
        return { outcome: 'SKIPPED', code: 'ALREADY_DEPLOYED' };
      }
    }
    const ref = valid.ref ?? source?.ref;
    await store.updateDeployment(deploymentId, {
      ...(ref ? { ref } : {}),
      kind: valid.kind,
      targetAccount: valid.target.env.accountId,
      targetRegion: valid.target.env.region,
      stackName: valid.target.env.stackName,
      parameters,
      parametersHash: hash,
      phase: 'BUILDING',
      updatedAt: clock.now().toISOString(),
      ...(source
        ? {
            buildOutput: source.buildOutput,
            resolvedCommit: source.buildOutput.resolvedCommit,
            source: {
              deploymentId: source.deploymentId,
              environment: source.environment,
              ...(source.release !== undefined ? { release: source.release } : {}),
            },
          }
        : {}),
      ...(valid.release !== undefined ? { rollbackOf: valid.release } : {}),
      ...(valid.freezeOverride ? { freezeOverride: true } : {}),
      // Kept whenever an approver asks, so a window that opens before the lock is overridden there too.
      ...(overrideRequested(input.requester, valid, scopeOf(deps)) ? { freezeOverrideRequested: true } : {}),
    });
    if (valid.freezeOverride) {
      const { window, endsAt } = valid.freezeOverride;
      await auditFreezeOverride(store, clock, deployment, { name: window, endsAt }, 'request');
    }
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
      kind: valid.kind,
      ...(ref ? { ref } : {}),
      targetAccount: valid.target.env.accountId,
      region: valid.target.env.region,
      stackName: valid.target.env.stackName,
      parametersHash: hash,
      dryRun: valid.dryRun,
      ...simulated,
      ...(source
        ? {
            buildOutputFrom: source.deploymentId,
            sourceEnvironment: source.environment,
            resolvedCommit: source.buildOutput.resolvedCommit,
            ...(valid.release !== undefined ? { rollbackOf: valid.release } : {}),
          }
        : {}),
    });
    return source ? { outcome: 'VALIDATED', buildOutput: source.buildOutput } : { outcome: 'VALIDATED' };
  } catch (error) {
    if (!(error instanceof RequestRejectedError)) throw error;
    await finish(store, clock, deploymentId, 'REJECTED', {
      errorCode: error.code,
      errorMessage: error.message,
    });
    return { outcome: 'REJECTED', code: error.code };
  }
}

const scopeOf = (deps: ValidateDeps): RuleScope => ({ orchestratorAccount: deps.orchestratorAccount });

function validate(input: WorkflowInput, deps: ValidateDeps, now: Date): ValidRequest {
  const scope = scopeOf(deps);
  const common: Record<string, unknown> = { application: input.application };
  for (const field of ['reason', 'dryRun', 'overrideFreeze'] as const) {
    if (input[field] !== undefined) common[field] = input[field];
  }
  if (input.promoteFrom !== undefined) {
    return validatePromotion(
      { ...common, from: input.promoteFrom, to: input.environment },
      input.requester,
      deps.registry,
      now,
      scope,
    );
  }
  if (input.rollbackRelease !== undefined) {
    return validateRollback(
      { ...common, environment: input.environment, release: input.rollbackRelease },
      input.requester,
      deps.registry,
      now,
      scope,
    );
  }
  const body = {
    ...common,
    environment: input.environment,
    ...(input.ref !== undefined ? { ref: input.ref } : {}),
  };
  return validateRequest(body, input.requester, deps.registry, now, scope);
}

type Source = Deployment & { buildOutput: BuildOutput };

/** Whether an approver of the target asked to override freeze windows (honoured again at lock time). */
function overrideRequested(requester: Requester, valid: ValidRequest, scope: RuleScope): boolean {
  return valid.overrideFreeze === true && mayOverrideFreeze(requester, valid.target.env, scope);
}

/**
 * A rollback redeploys release N's registry parameters, as release N recorded them with their hash, not the
 * registry's current ones. Where it deploys stays the registry's: a release recorded for another account,
 * region or stack than the environment has now cannot be rolled back to.
 */
function releaseParameters(
  source: Source,
  valid: ValidRequest,
): { parameters: Record<string, unknown>; hash: string } {
  const env = valid.target.env;
  const recorded = readRecordedParameters(source.parameters);
  if (!recorded || !source.parametersHash) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      409,
      `release ${valid.release} (deployment ${source.deploymentId}) recorded no registry parameters to redeploy`,
      { details: { field: 'release' } },
    );
  }
  const was = `account ${source.targetAccount}, ${recorded.region}, stack ${recorded.stackName}`;
  const now = `account ${env.accountId}, ${env.region}, stack ${env.stackName}`;
  if (was !== now) {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      409,
      `release ${valid.release} was deployed to ${was}; ${valid.environment} is now ${now}`,
      { details: { field: 'release' } },
    );
  }
  return { parameters: source.parameters!, hash: source.parametersHash };
}

/**
 * The recorded build output a promotion or rollback deploys: a promotion takes the source environment's
 * last successful real deployment, a rollback the deployment that became release N. Never a branch head.
 */
async function sourceOf(
  store: DeploymentStore,
  valid: ValidRequest,
  named?: string,
): Promise<Source | undefined> {
  let sourceId = named;
  if (!sourceId && valid.kind === 'promotion') {
    sourceId = (await store.lastSuccessful(valid.application, valid.promoteFrom!))?.deploymentId;
    if (!sourceId) {
      throw new RequestRejectedError(
        'NOTHING_TO_PROMOTE',
        409,
        `${valid.promoteFrom} has no successful deployment of ${valid.application} to promote`,
      );
    }
  }
  if (!sourceId && valid.kind === 'rollback') {
    sourceId = (await store.getRelease(valid.application, valid.environment, valid.release!))?.deploymentId;
    if (!sourceId) {
      throw new RequestRejectedError(
        'UNKNOWN_RELEASE',
        404,
        `${valid.application}/${valid.environment} has no release ${valid.release}`,
      );
    }
  }
  if (!sourceId) return undefined;
  const source = await store.getDeployment(sourceId);
  if (!source?.buildOutput || source.application !== valid.application || source.status !== 'SUCCEEDED') {
    throw new RequestRejectedError(
      'INVALID_FIELD',
      400,
      `deployment ${sourceId} is not a successful deployment of ${valid.application} with a recorded build output`,
    );
  }
  return source as Source;
}

/**
 * A schedule's tick (schedule name + scheduled time) is claimed with a conditional put before anything
 * else. EventBridge Scheduler delivers at least once and names executions itself, so a second fire of the
 * same tick arrives as another execution: it finds the claim held by another deployment and ends, having
 * written nothing. The same execution running this step again finds its own claim and goes on.
 */
async function claimTick(
  store: DeploymentStore,
  application: string,
  schedule: NonNullable<WorkflowInput['schedule']>,
  deploymentId: string,
  now: Date,
): Promise<{ outcome: 'claimed' | 'duplicate'; name: string }> {
  const { name, scheduledTime } = schedule;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw new Error('a scheduled request must name its schedule');
  }
  const time = typeof scheduledTime === 'string' ? Date.parse(scheduledTime) : Number.NaN;
  if (Number.isNaN(time)) throw new Error(`schedule ${name}: scheduledTime is not a timestamp`);
  const key = `TICK\n${application}\n${name}\n${new Date(time).toISOString()}`;
  const claim = await store.claimIdempotencyKey(key, 'schedule', deploymentId, now.toISOString());
  const mine = claim.claimed || claim.deploymentId === deploymentId;
  if (!mine) {
    logger.info('duplicate schedule tick: nothing started', {
      application,
      schedule: name,
      scheduledTime: new Date(time).toISOString(),
      firstDeploymentId: claim.deploymentId,
    });
  }
  return { outcome: mine ? 'claimed' : 'duplicate', name };
}
