import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoChatStore } from '#shared/aws/slack-store.ts';
import { MemoryChatStore } from '#shared/chat/memory-store.ts';
import type { ChatReply, ChatStore } from '#shared/chat/ports.ts';
import { createTestStore } from '#test/support/store.ts';

const reply = (deploymentId: string, overrides: Partial<ChatReply> = {}): ChatReply => ({
  deploymentId,
  responseUrl: `https://hooks.slack.com/commands/T1/1/${deploymentId}-secret`,
  teamId: 'T1DC2JH3J',
  userId: 'U2CERLKJA',
  channelId: 'C0123456',
  createdAt: '2026-03-01T12:00:00.000Z',
  expiresAt: '2026-03-01T12:29:00.000Z',
  stage: 0,
  posts: 0,
  ...overrides,
});
const NOW = '2026-03-01T12:05:00.000Z';

const stores: [string, () => Promise<ChatStore>][] = [
  [
    'DynamoChatStore',
    async () => {
      const { doc, tableName } = await createTestStore();
      return new DynamoChatStore({ client: doc, tableName });
    },
  ],
  ['MemoryChatStore', async () => new MemoryChatStore()],
];

describe.each(stores)('%s', (_name, make) => {
  let chat: ChatStore;
  beforeEach(async () => {
    chat = await make();
  });

  it('claims a signed request once and answers a replay with the first deployment id', async () => {
    expect(await chat.claimRequest('hash-1', 'D1', NOW)).toEqual({ claimed: true });
    expect(await chat.claimRequest('hash-1', 'D2', NOW)).toEqual({ claimed: false, deploymentId: 'D1' });
    expect(await chat.claimRequest('hash-2', 'D3', NOW)).toEqual({ claimed: true });
  });

  it('stores a reply item once: a resumed request keeps the progress already made', async () => {
    await chat.putReply(reply('D1'));
    await chat.claimPost('D1', 1, { maxPosts: 5, now: NOW });
    await chat.putReply(reply('D1', { responseUrl: 'https://hooks.slack.com/commands/other' }));
    expect(await chat.getReply('D1')).toEqual({ ...reply('D1'), stage: 1, posts: 1 });
    expect(await chat.getReply('nope')).toBeUndefined();
  });

  it('lets each stage be claimed once, only forward', async () => {
    await chat.putReply(reply('D1'));
    expect(await chat.claimPost('D1', 2, { maxPosts: 5, now: NOW })).toMatchObject({ stage: 2, posts: 1 });
    expect(await chat.claimPost('D1', 2, { maxPosts: 5, now: NOW })).toBeUndefined();
    expect(await chat.claimPost('D1', 1, { maxPosts: 5, now: NOW })).toBeUndefined();
    expect(await chat.claimPost('D1', 4, { maxPosts: 5, now: NOW })).toMatchObject({ stage: 4, posts: 2 });
  });

  it('never claims more posts than allowed, after expiry, or for a deleted item', async () => {
    await chat.putReply(reply('D1', { posts: 4 }));
    expect(await chat.claimPost('D1', 1, { maxPosts: 5, now: NOW })).toMatchObject({ posts: 5 });
    expect(await chat.claimPost('D1', 2, { maxPosts: 5, now: NOW })).toBeUndefined();

    await chat.putReply(reply('D2'));
    expect(await chat.claimPost('D2', 1, { maxPosts: 5, now: '2026-03-01T12:29:00.000Z' })).toBeUndefined();

    await chat.putReply(reply('D3'));
    await chat.deleteReply('D3');
    expect(await chat.claimPost('D3', 1, { maxPosts: 5, now: NOW })).toBeUndefined();
    expect(await chat.getReply('D3')).toBeUndefined();
  });

  it('lists expired reply items, oldest first', async () => {
    await chat.putReply(reply('LATE', { expiresAt: '2026-03-01T12:40:00.000Z' }));
    await chat.putReply(reply('B', { expiresAt: '2026-03-01T12:20:00.000Z' }));
    await chat.putReply(reply('A', { expiresAt: '2026-03-01T12:10:00.000Z' }));
    expect(await chat.listExpiredReplies('2026-03-01T12:30:00.000Z', 10)).toEqual(['A', 'B']);
    expect(await chat.listExpiredReplies('2026-03-01T12:30:00.000Z', 1)).toEqual(['A']);
  });

  it('lets the bot claim a stage past the URL’s expiry and post limit, still only forward and only while the item exists', async () => {
    await chat.putReply(reply('D1', { stage: 1, posts: 5 }));
    const later = '2026-03-01T13:30:00.000Z';
    expect(await chat.claimPost('D1', 4, { maxPosts: 5, now: later })).toBeUndefined();
    expect(await chat.claimBotPost('D1', 4)).toMatchObject({ stage: 4, posts: 6 });
    expect(await chat.claimBotPost('D1', 4)).toBeUndefined();
    expect(await chat.claimBotPost('D1', 2)).toBeUndefined();
    await chat.deleteReply('D1');
    expect(await chat.claimBotPost('D1', 5)).toBeUndefined();
    expect(await chat.getReply('D1')).toBeUndefined();
  });

  it('keeps an item for the bot without its expired URL, and lists it for the sweep only after keepUntil', async () => {
    await chat.putReply(reply('KEPT'));
    await chat.putReply(reply('GONE'));
    await chat.retainReply('KEPT', '2026-03-02T13:00:00.000Z');
    const kept = await chat.getReply('KEPT');
    expect(kept).toMatchObject({
      deploymentId: 'KEPT',
      channelId: 'C0123456',
      keepUntil: '2026-03-02T13:00:00.000Z',
    });
    expect(kept).not.toHaveProperty('responseUrl');
    expect(await chat.listExpiredReplies('2026-03-01T12:40:00.000Z', 10)).toEqual(['GONE']);
    expect(await chat.listExpiredReplies('2026-03-02T13:00:01.000Z', 10)).toEqual(['GONE', 'KEPT']);
    // Retaining an item that is gone creates nothing.
    await chat.retainReply('NONE', '2026-03-02T13:00:00.000Z');
    expect(await chat.getReply('NONE')).toBeUndefined();
  });

  it('finishes an item: the URL goes, nothing claims it again, no rearm brings it back, and the sweep lists it at keepUntil', async () => {
    await chat.putReply(reply('D1', { stage: 4, posts: 4 }));
    await chat.finishReply('D1', 5, '2026-03-01T13:00:00.000Z');
    const done = await chat.getReply('D1');
    expect(done).toMatchObject({ stage: 5, keepUntil: '2026-03-01T13:00:00.000Z' });
    expect(done).not.toHaveProperty('responseUrl');
    expect(await chat.claimPost('D1', 5, { maxPosts: 9, now: NOW })).toBeUndefined();
    expect(await chat.claimBotPost('D1', 5)).toBeUndefined();
    expect(
      await chat.rearmReply(
        reply('D1', { responseUrl: 'https://hooks.slack.com/actions/T1/2/late', stage: 4 }),
      ),
    ).toBe(false);
    expect(await chat.listExpiredReplies('2026-03-01T12:59:00.000Z', 10)).toEqual([]);
    expect(await chat.listExpiredReplies('2026-03-01T13:00:01.000Z', 10)).toEqual(['D1']);
    await chat.finishReply('NONE', 5, '2026-03-01T13:00:00.000Z');
    expect(await chat.getReply('NONE')).toBeUndefined();
  });

  it('does not delete or retain an item that was re-armed since the sweep read it', async () => {
    await chat.putReply(reply('D1'));
    const seen = (await chat.getReply('D1'))?.expiresAt as string;
    const rearmed = reply('D1', {
      responseUrl: 'https://hooks.slack.com/actions/T1/2/fresh',
      expiresAt: '2026-03-01T13:10:00.000Z',
      stage: 4,
      posts: 1,
    });
    expect(await chat.rearmReply(rearmed)).toBe(true);
    await chat.retainReply('D1', '2026-03-02T13:00:00.000Z', seen);
    await chat.deleteReply('D1', seen);
    expect(await chat.getReply('D1')).toEqual(rearmed);
    // As read, it goes.
    await chat.deleteReply('D1', rearmed.expiresAt);
    expect(await chat.getReply('D1')).toBeUndefined();
  });

  it('rearms an item kept for the bot (without a URL) with the click’s URL', async () => {
    await chat.putReply(reply('KEPT', { stage: 4, posts: 1 }));
    await chat.retainReply('KEPT', '2026-03-02T13:00:00.000Z');
    const fresh = reply('KEPT', {
      responseUrl: 'https://hooks.slack.com/actions/T1/2/fresh',
      expiresAt: '2026-03-01T13:10:00.000Z',
      stage: 4,
      posts: 1,
    });
    expect(await chat.rearmReply(fresh)).toBe(true);
    expect(await chat.getReply('KEPT')).toEqual(fresh);
  });

  it('rearms with a fresh URL in one conditional write, never over an item that moved past the request', async () => {
    const fresh = (id: string) =>
      reply(id, { responseUrl: `https://hooks.slack.com/actions/T1/2/${id}-fresh`, stage: 4, posts: 1 });
    // The command's item, before the request was posted (or kept for the bot without its URL).
    await chat.putReply(reply('EARLIER', { stage: 3, posts: 3 }));
    expect(await chat.rearmReply(fresh('EARLIER'))).toBe(true);
    expect(await chat.getReply('EARLIER')).toMatchObject({
      stage: 4,
      posts: 1,
      responseUrl: expect.stringContaining('fresh'),
    });
    // Swept meanwhile: written again.
    expect(await chat.rearmReply(fresh('SWEPT'))).toBe(true);
    // The result was already claimed: the item stays as it is.
    await chat.putReply(reply('DONE', { stage: 5, posts: 5 }));
    expect(await chat.rearmReply(fresh('DONE'))).toBe(false);
    expect(await chat.getReply('DONE')).toMatchObject({
      stage: 5,
      posts: 5,
      responseUrl: expect.stringContaining('DONE-secret'),
    });
  });
});

describe('DynamoChatStore items', () => {
  it('keeps the response_url out of the deployment partitions and the ACTIVE/OK index partitions', async () => {
    const { doc, tableName, store } = await createTestStore();
    const chat = new DynamoChatStore({ client: doc, tableName });
    await chat.putReply(reply('D1'));
    expect(await store.getDeployment('D1')).toBeUndefined();
    expect(await store.listEvents('D1')).toEqual([]);
    expect(await store.listActive()).toEqual([]);
  });
});
