import { recordEvent } from '#shared/deployments.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import type { Deployment } from '#shared/types.ts';

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

/**
 * The workflow's Release Lock step. Record Result and Record Failure have released the lock already (before
 * they wrote the terminal status); this step stays as the backstop for an execution whose Record step ran
 * an earlier version of the function, and answers `released: false` otherwise.
 */
export async function releaseLock(
  input: { deploymentId: string },
  deps: ReleaseDeps,
): Promise<{ released: boolean }> {
  const deployment = await deps.store.getDeployment(input.deploymentId);
  if (!deployment) return { released: false };
  return { released: await releaseHeldLock(deployment, deps) };
}
