import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { EventBridgeApprovalNotices } from '#shared/aws/approval-notices.ts';
import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type ApprovalDeps, type ApprovalInput, runApprovalStep } from './core.ts';

export const createHandler = (deps: () => ApprovalDeps) => async (event: ApprovalInput) =>
  withLogKeys({ deploymentId: event.deploymentId }, () => runApprovalStep(event, deps()));

let noticesClient: EventBridgeApprovalNotices | undefined;
const notices = () => {
  noticesClient ??= new EventBridgeApprovalNotices(new EventBridgeClient({}));
  return noticesClient;
};

export const handler = createHandler(() => {
  const access = aws.targetAccess();
  return {
    store: aws.store(),
    registry: aws.registry(),
    changeSets: access,
    stacks: access,
    clock: aws.clock,
    notices: notices(),
  };
});
