import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type RecordDeps, type RecordInput, recordResult } from './core.ts';

export const createHandler = (deps: () => RecordDeps) => async (event: RecordInput) =>
  withLogKeys({ deploymentId: event.deploymentId, outcome: event.outcome }, () =>
    recordResult(event, deps()),
  );

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  runner: aws.runner(),
  stacks: aws.targetAccess(),
  registry: aws.registry(),
  tokens: aws.tokens(),
  leaseSeconds: aws.lockLeaseSeconds(),
}));
