import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import type { HandOffDeps } from '#shared/queue/handoff.ts';
import { releaseLock } from './core.ts';

export const createHandler = (deps: () => HandOffDeps) => async (event: { deploymentId: string }) =>
  withLogKeys({ deploymentId: event.deploymentId }, () => releaseLock(event, deps()));

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  tokens: aws.tokens(),
  leaseSeconds: aws.lockLeaseSeconds(),
}));
