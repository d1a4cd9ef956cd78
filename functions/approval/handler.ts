import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type ApprovalDeps, type ApprovalInput, runApprovalStep } from './core.ts';

export const createHandler = (deps: () => ApprovalDeps) => async (event: ApprovalInput) =>
  withLogKeys({ deploymentId: event.deploymentId }, () => runApprovalStep(event, deps()));

export const handler = createHandler(() => {
  const access = aws.targetAccess();
  return {
    store: aws.store(),
    registry: aws.registry(),
    changeSets: access,
    stacks: access,
    clock: aws.clock,
  };
});
