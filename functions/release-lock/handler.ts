import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { releaseLock } from './core.ts';

export const createHandler =
  (deps: () => { store: DeploymentStore; clock: Clock }) => async (event: { deploymentId: string }) =>
    withLogKeys({ deploymentId: event.deploymentId }, () => releaseLock(event, deps()));

export const handler = createHandler(() => ({ store: aws.store(), clock: aws.clock }));
