import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type AcquireLockDeps, acquireLock } from './core.ts';

export const createHandler = (deps: () => AcquireLockDeps) => async (event: { deploymentId: string }) =>
  withLogKeys({ deploymentId: event.deploymentId }, () => acquireLock(event, deps()));

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  registry: aws.registry(),
  leaseSeconds: aws.lockLeaseSeconds(),
}));
