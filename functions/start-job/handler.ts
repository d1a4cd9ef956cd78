import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type StartJobDeps, type StartJobInput, startJob } from './core.ts';

// The task token is a bearer capability for the waiting Task: it is stored, never logged.
export const createHandler = (deps: () => StartJobDeps) => async (event: StartJobInput) =>
  withLogKeys({ deploymentId: event.deploymentId, job: event.job }, () => startJob(event, deps()));

export const handler = createHandler(() => ({
  store: aws.store(),
  registry: aws.registry(),
  runner: aws.jobStarter(),
  clock: aws.clock,
  settings: aws.jobSettings(),
}));
