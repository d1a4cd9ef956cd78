import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type AcquireLockDeps, acquireLock, parkForLock } from './core.ts';

/** "Acquire Lock" sends the deployment id; "Wait For Lock" (waitForTaskToken) sends its task token too. */
export type AcquireLockEvent = { deploymentId: string; taskToken?: string };

export const createHandler = (deps: () => AcquireLockDeps) => async (event: AcquireLockEvent) =>
  withLogKeys({ deploymentId: event.deploymentId }, () =>
    event.taskToken
      ? parkForLock({ deploymentId: event.deploymentId, taskToken: event.taskToken }, deps())
      : acquireLock({ deploymentId: event.deploymentId }, deps()),
  );

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  registry: aws.registry(),
  leaseSeconds: aws.lockLeaseSeconds(),
  tokens: aws.tokens(),
}));
