import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { EventBridgeApprovalNotices } from '#shared/aws/approval-notices.ts';
import * as aws from '#shared/aws/runtime.ts';
import { withLogKeys } from '#shared/logger.ts';
import { type ApprovalDeps, type ApprovalInput, runApprovalStep } from './core.ts';

export const createHandler = (deps: () => ApprovalDeps) => async (event: ApprovalInput) =>
  withLogKeys({ deploymentId: event.deploymentId }, () => runApprovalStep(event, deps()));

let noticesClient: EventBridgeApprovalNotices | undefined;
const notices = () => {
  // Best effort and short: a hanging PutEvents must not time the wait step out (PENDING and the token are stored).
  noticesClient ??= new EventBridgeApprovalNotices(
    new EventBridgeClient({
      maxAttempts: 2,
      requestHandler: { requestTimeout: 2_000, connectionTimeout: 1_000 },
    }),
  );
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
