import * as aws from '#shared/aws/runtime.ts';
import { logger } from '#shared/logger.ts';
import { type ValidateDeps, type ValidateInput, validateStep } from './core.ts';

export const createHandler = (deps: () => ValidateDeps) => async (event: ValidateInput) => {
  logger.appendKeys({ deploymentId: event.deploymentId });
  return validateStep(event, deps());
};

export const handler = createHandler(() => ({
  store: aws.store(),
  registry: aws.registry(),
  clock: aws.clock,
  orchestratorAccount: aws.orchestratorAccount(),
}));
