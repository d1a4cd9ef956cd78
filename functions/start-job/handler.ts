import * as aws from '#shared/aws/runtime.ts';
import { logger } from '#shared/logger.ts';
import { type StartJobDeps, type StartJobInput, startJob } from './core.ts';

export const createHandler = (deps: () => StartJobDeps) => async (event: StartJobInput) => {
  // The task token is a bearer capability for the waiting Task: it is stored, never logged.
  logger.appendKeys({ deploymentId: event.deploymentId, job: event.job });
  return startJob(event, deps());
};

export const handler = createHandler(() => ({
  store: aws.store(),
  registry: aws.registry(),
  runner: aws.runner(),
  clock: aws.clock,
  settings: aws.jobSettings(),
}));
