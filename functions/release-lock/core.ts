import { recordEvent } from '#shared/deployments.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';

/** Releases the lock only if this deployment still owns it; safe to run twice. */
export async function releaseLock(
  input: { deploymentId: string },
  deps: { store: DeploymentStore; clock: Clock },
): Promise<{ released: boolean }> {
  const deployment = await deps.store.getDeployment(input.deploymentId);
  if (!deployment) return { released: false };
  const released = await deps.store.releaseLock(
    deployment.application,
    deployment.environment,
    deployment.deploymentId,
  );
  if (released) await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'LOCK_RELEASED');
  return { released };
}
