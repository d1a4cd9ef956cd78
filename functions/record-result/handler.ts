import * as aws from '#shared/aws/runtime.ts';
import { logger } from '#shared/logger.ts';
import { type RecordDeps, type RecordInput, recordResult } from './core.ts';

export const createHandler = (deps: () => RecordDeps) => async (event: RecordInput) => {
  logger.appendKeys({ deploymentId: event.deploymentId, outcome: event.outcome });
  return recordResult(event, deps());
};

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  runner: aws.runner(),
  stacks: aws.targetAccess(),
  registry: aws.registry(),
}));
