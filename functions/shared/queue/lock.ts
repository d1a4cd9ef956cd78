/**
 * queue/: the per-environment lock and the queue behind it, as the cores see them (the DynamoDB items are in
 * aws/store.ts behind the DeploymentStore port). May import: the cross-cutting modules (types, ports,
 * errors, logger, config) and deployments/. Never aws/ or an AWS SDK.
 */

import { recordEvent } from '../deployments/record.ts';
import type { Clock, DeploymentStore } from '../ports.ts';
import type { Deployment } from '../types.ts';

export interface ReleaseDeps {
  store: DeploymentStore;
  clock: Clock;
}

/**
 * Frees the deployment's environment if it still holds the lock, with its audit event; safe to run twice.
 * Every path that ends a deployment runs it before the terminal write, so a client that reads the final
 * status may deploy again at once. The read first keeps the usual no-op (already released, or the next
 * deployment's lock) a read instead of a failed conditional delete, which DynamoDB bills as a write.
 */
export async function releaseHeldLock(
  deployment: Pick<Deployment, 'deploymentId' | 'application' | 'environment'>,
  deps: ReleaseDeps,
  detail: Record<string, unknown> = {},
): Promise<boolean> {
  const { store, clock } = deps;
  const lock = await store.getLock(deployment.application, deployment.environment);
  if (lock?.owner !== deployment.deploymentId) return false;
  const released = await store.releaseLock(
    deployment.application,
    deployment.environment,
    deployment.deploymentId,
  );
  if (released) await recordEvent(store, clock, deployment.deploymentId, 'LOCK_RELEASED', detail);
  return released;
}
