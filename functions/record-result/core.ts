import { finish, recordEvent } from '#shared/deployments/record.ts';
import { assignRelease } from '#shared/deployments/releases.ts';
import { type SettleDeps, settle } from '#shared/deployments/settle.ts';
import { describeWorkflowError, REJECTION_ERROR_NAMES } from '#shared/errors.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { type HandOffDeps, handOffLock } from '#shared/queue/handoff.ts';
import { releaseHeldLock } from '#shared/queue/lock.ts';

export type RecordInput =
  | { deploymentId: string; outcome: 'SUCCEEDED' }
  | { deploymentId: string; outcome: 'FAILED'; error: { Error?: string; Cause?: string } };

export type RecordOutput =
  | { settled: true; status: string; message: string }
  | { settled: false; message: string };

export interface RecordDeps extends SettleDeps, HandOffDeps {
  store: DeploymentStore;
  clock: Clock;
}

/**
 * Records how a deployment ended. A failure settles first: the state machine loops through a Wait until
 * this reports settled, so a stopped job or a stack still rolling back is never left behind by a released lock.
 * The lock is released before the terminal status is written (never after): a client that reads the final
 * status may deploy again at once and must find the environment free. There is no transaction to do both in
 * one write (DynamoDB Local stand-ins lack TransactWriteItems), and this order needs none: a crash between
 * the two leaves a free environment and a record the Catch path or the reconciler still ends.
 */
export async function recordResult(input: RecordInput, deps: RecordDeps): Promise<RecordOutput> {
  const { store, clock } = deps;
  const deployment = await store.getDeployment(input.deploymentId);
  if (!deployment)
    return { settled: true, status: 'UNKNOWN', message: `no deployment ${input.deploymentId}` };

  if (input.outcome === 'SUCCEEDED') {
    // The deploy job completed, so there is nothing left to settle.
    const at = clock.now().toISOString();
    await store.markSettled(deployment.deploymentId, at);
    // A dry run is never a release.
    // The release number is taken while the lock is held, so releases number deployments in the order they ran.
    const release = deployment.dryRun ? undefined : await assignRelease(store, deployment, at);
    await releaseHeldLock(deployment, deps);
    await finish(store, clock, deployment.deploymentId, 'SUCCEEDED', {
      ...(deployment.changeSet ? { changeSet: deployment.changeSet } : {}),
      ...(release !== undefined ? { release } : {}),
    });
    // After the terminal write, which removed its ticket: the next in the queue gets the lock and wakes.
    await handOffLock(deployment, deps);
    // "No changes to deploy" is a success too (a rollback to what already runs still completed), and a
    // release like any other: the environment runs that build output with those parameters from now on.
    const unchanged = deployment.noChanges ? ' (no changes: the stack was already up to date)' : '';
    return {
      settled: true,
      status: 'SUCCEEDED',
      message: `${release !== undefined ? `deployed as release ${release}` : 'deployed'}${unchanged}`,
    };
  }

  const failure = describeWorkflowError(input.error);
  await store.updateDeployment(deployment.deploymentId, {
    phase: 'SETTLING',
    updatedAt: clock.now().toISOString(),
  });
  const settled = await settle(deployment, deps);
  if (!settled.settled) return { settled: false, message: `waiting for ${settled.waitingFor}` };
  if (!deployment.settledAt) {
    await store.markSettled(deployment.deploymentId, clock.now().toISOString());
    await recordEvent(store, clock, deployment.deploymentId, 'SETTLED');
  }
  await releaseHeldLock(deployment, deps);
  const status = (REJECTION_ERROR_NAMES as readonly string[]).includes(failure.name) ? 'REJECTED' : 'FAILED';
  await finish(store, clock, deployment.deploymentId, status, {
    errorCode: failure.code,
    errorMessage: failure.message,
  });
  // Also when it never held the lock: a failed build at the head of the queue lets the next one go.
  await handOffLock(deployment, deps);
  const final = await store.getDeployment(deployment.deploymentId);
  return {
    settled: true,
    status: final?.status ?? status,
    message: `${final?.errorCode ?? failure.code}: ${final?.errorMessage ?? failure.message}`,
  };
}
