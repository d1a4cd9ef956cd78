import { type ReleaseDeps, releaseHeldLock } from '#shared/queue/lock.ts';

export type { ReleaseDeps } from '#shared/queue/lock.ts';

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
