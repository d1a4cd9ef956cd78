import { type HandOffDeps, handOffLock } from '#shared/queue/handoff.ts';
import { releaseHeldLock } from '#shared/queue/lock.ts';

export type { ReleaseDeps } from '#shared/queue/lock.ts';

/**
 * The workflow's Release Lock step. Record Result and Record Failure have released the lock and handed it
 * on already (before and after they wrote the terminal status); this step stays as the backstop for an
 * execution whose Record step ran an earlier version of the function, and answers `released: false`
 * otherwise. Its hand-over is then a no-op (the head holds the lock; its token is answered `gone`).
 */
export async function releaseLock(
  input: { deploymentId: string },
  deps: HandOffDeps,
): Promise<{ released: boolean }> {
  const deployment = await deps.store.getDeployment(input.deploymentId);
  if (!deployment) return { released: false };
  const released = await releaseHeldLock(deployment, deps);
  await handOffLock(deployment, deps);
  return { released };
}
