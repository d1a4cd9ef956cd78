import { describe, expect, it } from 'vitest';
import type { ChatLinks } from '#shared/chat/ports.ts';
import type { Deployment } from '#shared/types.ts';
import { progressMessage, statusMessage } from '../../functions/slack/messages.ts';

/** Chat messages for a deployment queued behind another: whom it waits behind, as the record has it now. */

const links: ChatLinks = { status: (id) => `http://127.0.0.1:3000/deployments/${id}` };
const now = new Date('2026-03-01T12:05:00.000Z');

const waiting = (
  waitingBehind: Deployment['waitingBehind'],
  overrides: Partial<Deployment> = {},
): Deployment => ({
  deploymentId: '01JWAITING0000000000000000',
  application: 'hello-world',
  environment: 'staging',
  ref: 'main',
  requester: { type: 'slack', teamId: 'T1', userId: 'U1', userName: 'alice' } as Deployment['requester'],
  trigger: 'chat',
  dryRun: false,
  status: 'RUNNING',
  phase: 'WAITING_FOR_LOCK',
  requestedAt: '2026-03-01T12:00:00.000Z',
  updatedAt: '2026-03-01T12:01:00.000Z',
  waitStartedAt: '2026-03-01T12:01:00.000Z',
  ...(waitingBehind ? { waitingBehind } : {}),
  ...overrides,
});

/** The Status field of the summary section, as Slack shows it. */
function statusField(message: { blocks?: Record<string, unknown>[] }): string | undefined {
  for (const block of message.blocks ?? []) {
    const fields = (block.fields ?? []) as { text: string }[];
    const status = fields.find((field) => field.text.startsWith('*Status*'));
    if (status) return status.text;
  }
  return undefined;
}

describe('chat messages of a waiting deployment', () => {
  it('name the lock holder it waits behind, in status and progress messages', () => {
    const d = waiting({ deploymentId: '01JHOLDER00000000000000000', reason: 'HOLDS_LOCK' });
    const expected =
      '*Status*\n:arrows_counterclockwise: RUNNING (WAITING_FOR_LOCK), behind `01JHOLDER00000000000000000` (deploying now)';
    expect(statusField(statusMessage(d, links, now))).toBe(expected);
    expect(statusField(progressMessage('build', d, { links, now }))).toBe(expected);
  });

  it('name an earlier request that goes first', () => {
    const d = waiting({ deploymentId: '01JEARLIER0000000000000000', reason: 'EARLIER_REQUEST' });
    expect(statusMessage(d, links, now).text).toContain(
      'RUNNING (WAITING_FOR_LOCK), behind `01JEARLIER0000000000000000` (requested earlier, goes first)',
    );
  });

  it('say nothing about waiting once the lock is held or the deployment ended', () => {
    const behind = { deploymentId: '01JHOLDER00000000000000000', reason: 'HOLDS_LOCK' } as const;
    expect(statusField(statusMessage(waiting(behind, { phase: 'DEPLOYING' }), links, now))).toBe(
      '*Status*\n:arrows_counterclockwise: RUNNING (DEPLOYING)',
    );
    const ended = waiting(behind, { status: 'SUCCEEDED', finishedAt: '2026-03-01T12:04:00.000Z' });
    expect(statusField(progressMessage('final', ended, { links, now }))).toBe(
      '*Status*\n:white_check_mark: SUCCEEDED',
    );
    expect(statusField(statusMessage(waiting(undefined), links, now))).toBe(
      '*Status*\n:arrows_counterclockwise: RUNNING (WAITING_FOR_LOCK)',
    );
  });
});
