import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type ValidateDeps, type ValidateInput, validateStep } from './core.ts';

export const createHandler = (deps: () => ValidateDeps) => async (event: ValidateInput) =>
  withLogKeys({ deploymentId: event.deploymentId }, () => validateStep(event, deps()));

export const handler = createHandler(() => ({
  store: aws.store(),
  registry: aws.registry(),
  clock: aws.clock,
  orchestratorAccount: aws.orchestratorAccount(),
}));
