import type { EventBridgeEvent } from 'aws-lambda';
import * as aws from '#shared/aws/runtime.ts';
import { logger, withLogKeys } from '#shared/logger.ts';
import { type JobEventsDeps, onJobStateChange } from './core.ts';

/** The part of CodeBuild's "Build State Change" event we use; the final status is re-read from CodeBuild. */
export type BuildStateChange = EventBridgeEvent<
  'CodeBuild Build State Change',
  { 'build-id': string; 'build-status': string; 'project-name': string }
>;

export const createHandler = (deps: () => JobEventsDeps) => async (event: BuildStateChange) => {
  const buildId = event.detail['build-id'];
  return withLogKeys({ buildId, reportedStatus: event.detail['build-status'] }, async () => {
    const outcome = await onJobStateChange(buildId, deps());
    logger.info('job state change handled', { outcome });
    return { outcome };
  });
};

export const handler = createHandler(() => ({
  store: aws.store(),
  runner: aws.runner(),
  tokens: aws.tokens(),
  clock: aws.clock,
}));
