import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { logger } from '../logger.ts';
import { APPROVAL_NOTICE_SOURCE, type ApprovalNotices, AWAITING_APPROVAL_DETAIL_TYPE } from '../ports.ts';

/**
 * "Deployment Awaiting Approval" on the account's default event bus: the Slack function's rule posts the
 * approval request with its buttons, and a team may add its own rules (email, a pager). The detail is the
 * deployment id only; whoever listens reads the record. Never throws: the decision is still awaited, and
 * the CLI and API can take it, whether or not anyone was told.
 */
export class EventBridgeApprovalNotices implements ApprovalNotices {
  private readonly client: EventBridgeClient;
  constructor(client: EventBridgeClient) {
    this.client = client;
  }

  async awaitingApproval(deploymentId: string): Promise<void> {
    try {
      const result = await this.client.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: APPROVAL_NOTICE_SOURCE,
              DetailType: AWAITING_APPROVAL_DETAIL_TYPE,
              Detail: JSON.stringify({ deploymentId }),
            },
          ],
        }),
      );
      if ((result.FailedEntryCount ?? 0) > 0) {
        logger.warn('approval notice not accepted by EventBridge', {
          deploymentId,
          errorCode: result.Entries?.[0]?.ErrorCode,
        });
      }
    } catch (error) {
      logger.warn('approval notice not sent', { deploymentId, errorName: (error as Error)?.name });
    }
  }
}
