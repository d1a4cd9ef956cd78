import { finish, recordEvent } from '#shared/deployments.ts';
import { JobStartError } from '#shared/errors.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { isTerminal, type Lock } from '#shared/types.ts';

export interface AcquireLockDeps {
  store: DeploymentStore;
  clock: Clock;
  /** At least the deploy job's queued + build timeout plus a margin, so a live deploy never loses its lease. */
  leaseSeconds: number;
}

export type AcquireLockOutput =
  | { acquired: true; leaseExpiresAt: string }
  | { acquired: false; heldBy: string };

/**
 * One deploy per application+environment. A busy environment refuses the request (mode `reject`). An
 * expired lease is taken over only when its owner is terminal and settled, and the takeover is audited.
 */
export async function acquireLock(
  input: { deploymentId: string },
  deps: AcquireLockDeps,
): Promise<AcquireLockOutput> {
  const { store, clock } = deps;
  const deployment = await store.getDeployment(input.deploymentId);
  if (!deployment) throw new JobStartError(`deployment ${input.deploymentId} does not exist`);
  const now = clock.now();
  const lock: Lock = {
    application: deployment.application,
    environment: deployment.environment,
    owner: deployment.deploymentId,
    acquiredAt: now.toISOString(),
    leaseExpiresAt: new Date(now.getTime() + deps.leaseSeconds * 1000).toISOString(),
  };
  await store.updateDeployment(deployment.deploymentId, {
    phase: 'WAITING_FOR_LOCK',
    updatedAt: lock.acquiredAt,
  });
  const attempt = await store.acquireLock(lock);
  let held: Lock | undefined = attempt.acquired ? lock : attempt.holder;

  if (held && held.owner !== deployment.deploymentId && (await canTakeOver(store, held, now))) {
    if (await store.takeOverLock(held, lock)) {
      await recordEvent(store, clock, deployment.deploymentId, 'LOCK_TAKEN_OVER', {
        previousOwner: held.owner,
        previousLeaseExpiresAt: held.leaseExpiresAt,
      });
      held = lock;
    } else {
      held = await store.getLock(lock.application, lock.environment);
    }
  }

  if (held?.owner === deployment.deploymentId) {
    // Also the path of a second invocation of this step: the lease of the first one is kept.
    await recordEvent(store, clock, deployment.deploymentId, 'LOCK_ACQUIRED', {
      leaseExpiresAt: held.leaseExpiresAt,
    });
    await store.updateDeployment(deployment.deploymentId, {
      phase: 'DEPLOYING',
      updatedAt: clock.now().toISOString(),
    });
    return { acquired: true, leaseExpiresAt: held.leaseExpiresAt };
  }
  const heldBy = held?.owner ?? 'unknown';
  await finish(store, clock, deployment.deploymentId, 'REJECTED', {
    errorCode: 'ENVIRONMENT_BUSY',
    errorMessage: `${deployment.application}/${deployment.environment} is busy with deployment ${heldBy}`,
  });
  return { acquired: false, heldBy };
}

async function canTakeOver(store: DeploymentStore, held: Lock, now: Date): Promise<boolean> {
  if (Date.parse(held.leaseExpiresAt) > now.getTime()) return false;
  const owner = await store.getDeployment(held.owner);
  // A lock whose owner record is gone can only be a leftover; one whose owner still runs is never taken.
  return !owner || (isTerminal(owner.status) && owner.settledAt !== undefined);
}
