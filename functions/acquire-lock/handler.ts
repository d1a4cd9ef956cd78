import * as aws from '#shared/aws/runtime.ts';
import { logger } from '#shared/logger.ts';
import { type AcquireLockDeps, acquireLock } from './core.ts';

export const createHandler = (deps: () => AcquireLockDeps) => async (event: { deploymentId: string }) => {
  logger.appendKeys({ deploymentId: event.deploymentId });
  return acquireLock(event, deps());
};

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  registry: aws.registry(),
  leaseSeconds: aws.lockLeaseSeconds(),
}));
