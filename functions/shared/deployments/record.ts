/**
 * deployments/: a deployment's life as the cores write it: the record and its audit events (this file),
 * intake and request validation, freeze overrides, settling, release numbers.
 * May import: the cross-cutting modules (types, ports, errors, logger, config), registry/ and jobs/. Never aws/.
 */
import { RequestRejectedError } from '../errors.ts';
import type { Clock, DeploymentStore } from '../ports.ts';
import type { Target } from '../registry/registry.ts';
import type { AuditEventType, Deployment, Requester, TerminalStatus, Trigger } from '../types.ts';

/** Small helpers every core uses to write the record the same way. */

/**
 * Whether a target's jobs are simulated. Only local mode simulates (`runner: simulate`); in AWS every job
 * runs in CodeBuild whatever the registry says, so the AWS wiring passes no check and nothing is marked.
 */
export type SimulationCheck = (target: Target) => boolean;

/**
 * A build output that stand-ins made (`runner: simulate`) never reaches an environment that runs real jobs:
 * in a shared table a simulated success is otherwise indistinguishable from a release to promote or roll
 * back to. The API's intake and Validate Request both ask, so no trigger skips it.
 */
export function refuseSimulatedSource(
  source: Pick<Deployment, 'deploymentId' | 'environment' | 'simulated'>,
  target: { environment: string; simulated: boolean },
): void {
  if (source.simulated && !target.simulated) {
    throw new RequestRejectedError(
      'SIMULATED_SOURCE',
      409,
      `deployment ${source.deploymentId} in ${source.environment} was simulated (runner: simulate): its build output was never built for real, so ${target.environment} may not deploy it`,
    );
  }
}

export function newDeployment(input: {
  deploymentId: string;
  application: string;
  environment: string;
  ref?: string;
  reason?: string;
  dryRun?: boolean;
  requester: Requester;
  trigger: Trigger;
  requestedAt: string;
  kind?: Deployment['kind'];
  source?: Deployment['source'];
  rollbackOf?: number;
  simulated?: boolean;
}): Deployment {
  return {
    deploymentId: input.deploymentId,
    application: input.application,
    environment: input.environment,
    ...(input.ref !== undefined ? { ref: input.ref } : {}),
    ...(input.reason !== undefined ? { reason: input.reason } : {}),
    dryRun: input.dryRun ?? false,
    requester: input.requester,
    trigger: input.trigger,
    ...(input.kind !== undefined ? { kind: input.kind } : {}),
    ...(input.source !== undefined ? { source: input.source } : {}),
    ...(input.rollbackOf !== undefined ? { rollbackOf: input.rollbackOf } : {}),
    ...(input.simulated ? { simulated: true } : {}),
    status: 'QUEUED',
    requestedAt: input.requestedAt,
    updatedAt: input.requestedAt,
  };
}

/** Appends an audit event with a deterministic key (`type`, or `type#n` for a step that may repeat). */
export async function recordEvent(
  store: DeploymentStore,
  clock: Clock,
  deploymentId: string,
  type: AuditEventType,
  detail: Record<string, unknown> = {},
  repeat?: number,
): Promise<void> {
  await store.appendEvent({
    deploymentId,
    type,
    step: repeat === undefined ? type : `${type}#${repeat}`,
    at: clock.now().toISOString(),
    detail,
  });
}

/**
 * Ends a deployment: the terminal status (first one wins) and its audit event. Returns whether this call
 * was the one that ended it.
 */
export async function finish(
  store: DeploymentStore,
  clock: Clock,
  deploymentId: string,
  status: TerminalStatus,
  fields: {
    errorCode?: string;
    errorMessage?: string;
    changeSet?: string;
    supersededBy?: string;
    release?: number;
  } = {},
): Promise<boolean> {
  const at = clock.now().toISOString();
  const { changed, deployment } = await store.finishDeployment(deploymentId, status, {
    ...fields,
    finishedAt: at,
    updatedAt: at,
  });
  if (changed) {
    const detail: Record<string, unknown> = {};
    if (fields.errorCode) detail.code = fields.errorCode;
    if (fields.errorMessage) detail.message = fields.errorMessage;
    if (fields.supersededBy) detail.supersededBy = fields.supersededBy;
    if (fields.release !== undefined) detail.release = fields.release;
    // The outcome's own event says a simulated success deployed nothing, for readers of events alone.
    if (deployment?.simulated) detail.simulated = true;
    await recordEvent(store, clock, deploymentId, status, detail);
  }
  return changed;
}
