import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBridgeApprovalNotices } from '#shared/aws/approval-notices.ts';
import { logger } from '#shared/logger.ts';

/** "Deployment Awaiting Approval" on the default bus (EventBridge mocked at the SDK boundary). */

const eventBridge = mockClient(EventBridgeClient);
const notices = () => new EventBridgeApprovalNotices(new EventBridgeClient({ region: 'eu-west-1' }));

beforeEach(() => {
  eventBridge.reset();
  vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
});

describe('EventBridgeApprovalNotices', () => {
  it('puts one entry with the source and detail type the Slack rule and the deployer policy name, and the id only', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    await notices().awaitingApproval('01JNAPPROVAL00000000000001');
    expect(eventBridge).toReceiveCommandTimes(PutEventsCommand, 1);
    expect(eventBridge).toReceiveCommandWith(PutEventsCommand, {
      Entries: [
        {
          Source: 'crossdeploy',
          DetailType: 'Deployment Awaiting Approval',
          Detail: JSON.stringify({ deploymentId: '01JNAPPROVAL00000000000001' }),
        },
      ],
    });
  });

  it('never fails the wait: a refused entry or an SDK error is logged, not thrown', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'AccessDeniedException' }] })
      .rejectsOnce(Object.assign(new Error('throttled'), { name: 'ThrottlingException' }));
    await expect(notices().awaitingApproval('01JNAPPROVAL00000000000001')).resolves.toBeUndefined();
    await expect(notices().awaitingApproval('01JNAPPROVAL00000000000001')).resolves.toBeUndefined();
    expect(logger.warn).toHaveBeenCalledWith(
      'approval notice not accepted by EventBridge',
      expect.objectContaining({ errorCode: 'AccessDeniedException' }),
    );
    expect(logger.warn).toHaveBeenCalledWith(
      'approval notice not sent',
      expect.objectContaining({ errorName: 'ThrottlingException' }),
    );
  });
});
