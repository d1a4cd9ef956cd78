import { CrossdeployError, EnvironmentBusyError, RequestRejectedError } from '../errors.ts';
import { logger } from '../logger.ts';
import type { Clock, DeploymentStore, WorkflowStarter } from '../ports.ts';
import { describeRequester } from '../registry/requester.ts';
import type { Deployment, Requester, Trigger } from '../types.ts';
import { finish, newDeployment, recordEvent, refuseSimulatedSource, type SimulationCheck } from './record.ts';
import { type DeploymentKind, MAX_REASON_LENGTH, type ValidRequest } from './validation.ts';

/**
 * Accepting a deployment request: the one path from a validated request to a started workflow, and from a
 * refused request to its REJECTED record. The HTTP API and the chat command both use it, so the busy check,
 * the conditional create, the audit events and the handling of a failed start exist once; each caller only
 * turns the outcome into its own kind of answer (a problem document, an ephemeral Slack message).
 */

export interface IntakeDeps {
  store: DeploymentStore;
  workflow: WorkflowStarter;
  clock: Clock;
  newId: () => string;
  /** Local mode only: marks `runner: simulate` requests simulated in their record (AWS passes none). */
  isSimulated?: SimulationCheck;
}

/** Correlation for the audit log lines (the API Gateway request id). */
export interface IntakeContext {
  requestId?: string;
}

/** What a refused request names, when it names a target at all. */
export interface Attribution {
  application: string;
  environment: string;
  ref?: string;
  reason?: string;
  dryRun?: boolean;
  kind?: DeploymentKind;
  rollbackOf?: number;
}

export type Intake =
  /** Started now, or (replayed) an earlier request with the same identity already owns this deployment. */
  | { outcome: 'accepted'; deployment: Deployment; replayed: boolean }
  /** Refused; `recorded` says whether the REJECTED record with this id was written. */
  | { outcome: 'rejected'; error: CrossdeployError; deployment: Deployment; recorded: boolean }
  /**
   * Refused without naming a target the registry has: nothing recorded, the caller writes the audit line.
   * `named` is the application and environment asked for, when the request named ones the registry lacks.
   */
  | { outcome: 'unattributed'; error: CrossdeployError; named?: { application: string; environment: string } }
  /** Recorded as FAILED because the workflow could not be started. */
  | { outcome: 'start-failed'; deploymentId: string };

const hasControlChars = (value: string) =>
  [...value].some((char) => {
    const code = char.charCodeAt(0);
    return code < 0x20 || code === 0x7f;
  });

/** A bounded string without control characters: safe to show in history and terminals, and to use in keys. */
export const printable = (value: unknown, max: number): value is string =>
  typeof value === 'string' && value.length >= 1 && value.length <= max && !hasControlChars(value);

/**
 * What a refused body names, when it names a target at all. Only bounded, printable strings are kept:
 * the record is shown in history and terminals, and its fields become DynamoDB keys.
 */
export function attribute(body: unknown): Attribution | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const { application, environment, ref, reason, dryRun } = body as Record<string, unknown>;
  if (!printable(application, 63) || !printable(environment, 63)) return undefined;
  return {
    application,
    environment,
    ...(printable(ref, 200) ? { ref } : {}),
    ...(printable(reason, MAX_REASON_LENGTH) ? { reason } : {}),
    ...(typeof dryRun === 'boolean' ? { dryRun } : {}),
  };
}

/**
 * What a refused request of a given kind names: a promotion files its record under its target (`to`), a
 * rollback keeps the release it asked for, so history shows what was refused.
 */
export function attributeRequest(kind: DeploymentKind, body: unknown): Attribution | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const { to, from: _from, release, ...rest } = body as Record<string, unknown>;
  const attribution = attribute(kind === 'promotion' ? { ...rest, environment: to } : rest);
  if (!attribution) return undefined;
  const rollbackOf =
    kind === 'rollback' && typeof release === 'number' && Number.isInteger(release) && release >= 1
      ? release
      : undefined;
  return { ...attribution, kind, ...(rollbackOf !== undefined ? { rollbackOf } : {}) };
}

export function triggerOf(requester: Requester): Trigger {
  switch (requester.type) {
    case 'local':
      return 'local';
    case 'slack':
      return 'chat';
    default:
      return 'api';
  }
}

export interface AcceptOptions {
  context?: IntakeContext;
  /** The caller already knows this is a repeat of an earlier request (an idempotency or replay claim). */
  replay?: boolean;
  /** Runs once the record exists and just before the workflow starts (only then is it worth anything). */
  beforeStart?: (deployment: Deployment) => Promise<void>;
}

/** Starts the accepted request; safe to repeat for the same id (conditional create, idempotent start). */
export async function acceptRequest(
  deploymentId: string,
  valid: ValidRequest,
  requester: Requester,
  deps: IntakeDeps,
  options: AcceptOptions = {},
): Promise<Intake> {
  const { store, workflow, clock } = deps;
  const { context = {}, replay = false } = options;
  const base = {
    deploymentId,
    application: valid.application,
    environment: valid.environment,
    ...(valid.ref !== undefined ? { ref: valid.ref } : {}),
    ...(valid.reason !== undefined ? { reason: valid.reason } : {}),
    dryRun: valid.dryRun,
    requester,
    trigger: triggerOf(requester),
    requestedAt: clock.now().toISOString(),
    kind: valid.kind,
    ...(valid.release !== undefined ? { rollbackOf: valid.release } : {}),
    ...(deps.isSimulated?.(valid.target) ? { simulated: true } : {}),
  };
  // A promotion or rollback names its build output now, so a missing one is refused with a clear reason.
  let source: Deployment['source'];
  try {
    source = await resolveSource(store, valid, !!base.simulated);
  } catch (error) {
    return refuseRequest(error, base, requester, deps, context, deploymentId);
  }
  const fresh = newDeployment({ ...base, ...(source ? { source } : {}) });

  // Only a `reject` environment refuses while busy; `queued` and `superseded` ones queue in the workflow.
  const lock =
    valid.target.env.mode === 'reject'
      ? await store.getLock(valid.application, valid.environment)
      : undefined;
  const now = clock.now().getTime();
  if (lock && lock.owner !== deploymentId && Date.parse(lock.leaseExpiresAt) > now) {
    const busy = new EnvironmentBusyError(
      `${valid.application}/${valid.environment} is busy with deployment ${lock.owner} (lease until ${lock.leaseExpiresAt})`,
    );
    return rejectRequest(fresh, busy, deps, context);
  }

  const { created, deployment } = await store.createDeployment(fresh);
  if (deployment.status !== 'QUEUED') return { outcome: 'accepted', deployment, replayed: true };
  await recordEvent(store, clock, deploymentId, 'REQUESTED', requestedDetail(deployment));
  await options.beforeStart?.(deployment);
  try {
    await workflow.start(deploymentId, workflowInput(deployment, valid));
  } catch (error) {
    // Nothing half-started may stay QUEUED: the record says FAILED and why; the caller answers generically.
    logger.error('the workflow could not be started', { error, deploymentId });
    const name = error instanceof Error ? error.name : 'Error';
    try {
      await finish(store, clock, deploymentId, 'FAILED', {
        errorCode: 'EXECUTION_FAILED',
        errorMessage: `the workflow could not be started (${name})`,
      });
    } catch (recordError) {
      logger.error('could not record the failed start', { error: recordError, deploymentId });
    }
    return { outcome: 'start-failed', deploymentId };
  }
  logger.info('deployment accepted', {
    deploymentId,
    application: deployment.application,
    environment: deployment.environment,
    requester: describeRequester(requester),
    replay: replay || !created,
  });
  return { outcome: 'accepted', deployment, replayed: replay || !created };
}

/**
 * A refusal after the request was read: recorded as REJECTED when it names an application and environment
 * (under `deploymentId` when the caller already chose one, e.g. for replay protection). Errors that are not
 * the requester's fault are thrown on.
 */
const UNREGISTERED = new Set<string>(['UNKNOWN_APPLICATION', 'UNKNOWN_ENVIRONMENT']);

export async function refuseRequest(
  error: unknown,
  attribution: Attribution | undefined,
  requester: Requester,
  deps: IntakeDeps,
  context: IntakeContext = {},
  deploymentId?: string,
): Promise<Intake> {
  if (!(error instanceof CrossdeployError) || error.httpStatus >= 500) throw error;
  if (!attribution) return { outcome: 'unattributed', error };
  // History is read per registry target, and a target the registry lacks has no readers: a REJECTED record
  // there could never be read, and would let any caller write records under names of its choosing.
  if (UNREGISTERED.has(error.code)) {
    const { application, environment } = attribution;
    return { outcome: 'unattributed', error, named: { application, environment } };
  }
  const deployment = newDeployment({
    deploymentId: deploymentId ?? deps.newId(),
    ...attribution,
    requester,
    trigger: triggerOf(requester),
    requestedAt: deps.clock.now().toISOString(),
  });
  return rejectRequest(deployment, error, deps, context);
}

async function rejectRequest(
  deployment: Deployment,
  error: CrossdeployError,
  deps: IntakeDeps,
  context: IntakeContext,
): Promise<Intake> {
  const { store, clock } = deps;
  const { deploymentId } = deployment;
  let recorded = true;
  try {
    const { created, deployment: stored } = await store.createDeployment(deployment);
    // Only an idempotent twin can have created this id first; it owns the outcome, so answer with it.
    if (!created) return { outcome: 'accepted', deployment: stored, replayed: true };
    await recordEvent(store, clock, deploymentId, 'REQUESTED', requestedDetail(deployment));
    await finish(store, clock, deploymentId, 'REJECTED', {
      errorCode: error.code,
      errorMessage: error.message,
    });
  } catch (recordError) {
    // The caller still gets the real reason; the refusal survives in this log line.
    logger.error('could not record the rejection', { error: recordError, deploymentId, code: error.code });
    recorded = false;
  }
  logger.info('request rejected', {
    audit: 'rejected',
    deploymentId,
    code: error.code,
    status: error.httpStatus,
    application: deployment.application,
    environment: deployment.environment,
    requester: describeRequester(deployment.requester),
    requestId: context.requestId,
  });
  return { outcome: 'rejected', error, deployment, recorded };
}

function requestedDetail(deployment: Deployment): Record<string, unknown> {
  return {
    requester: deployment.requester,
    trigger: deployment.trigger,
    ...(deployment.ref !== undefined ? { ref: deployment.ref } : {}),
    ...(deployment.reason !== undefined ? { reason: deployment.reason } : {}),
    dryRun: deployment.dryRun,
    ...(deployment.simulated ? { simulated: true } : {}),
  };
}

/**
 * Built from the stored record (and the request's override flag, which a replay repeats with the same body),
 * so a repeated start sends the same input and Step Functions dedupes it.
 */
function workflowInput(deployment: Deployment, valid: ValidRequest) {
  const { source } = deployment;
  return {
    deploymentId: deployment.deploymentId,
    application: deployment.application,
    environment: deployment.environment,
    ...(deployment.ref !== undefined ? { ref: deployment.ref } : {}),
    ...(deployment.reason !== undefined ? { reason: deployment.reason } : {}),
    dryRun: deployment.dryRun,
    ...(valid.overrideFreeze ? { overrideFreeze: true } : {}),
    ...(deployment.kind === 'promotion' && source
      ? { promoteFrom: source.environment, buildOutputFrom: source.deploymentId }
      : {}),
    ...(deployment.kind === 'rollback' && source
      ? { rollbackRelease: deployment.rollbackOf, buildOutputFrom: source.deploymentId }
      : {}),
    requester: deployment.requester,
    trigger: deployment.trigger,
    requestedAt: deployment.requestedAt,
  };
}

/**
 * The recorded build output a promotion or rollback will deploy: the source environment's last successful
 * real deployment, or the deployment that became release N. The workflow checks it again.
 */
async function resolveSource(
  store: DeploymentStore,
  valid: ValidRequest,
  simulated: boolean,
): Promise<Deployment['source'] | undefined> {
  if (valid.kind === 'promotion') {
    const from = valid.promoteFrom!;
    const last = await store.lastSuccessful(valid.application, from);
    if (!last?.buildOutput) {
      throw new RequestRejectedError(
        'NOTHING_TO_PROMOTE',
        409,
        `${from} has no successful deployment of ${valid.application} to promote`,
      );
    }
    refuseSimulatedSource(last, { environment: valid.environment, simulated });
    return {
      deploymentId: last.deploymentId,
      environment: from,
      ...(last.release !== undefined ? { release: last.release } : {}),
    };
  }
  if (valid.kind === 'rollback') {
    const release = await store.getRelease(valid.application, valid.environment, valid.release!);
    if (!release) {
      throw new RequestRejectedError(
        'UNKNOWN_RELEASE',
        404,
        `${valid.application}/${valid.environment} has no release ${valid.release}`,
      );
    }
    return { deploymentId: release.deploymentId, environment: valid.environment, release: valid.release! };
  }
  return undefined;
}
