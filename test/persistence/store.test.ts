import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import type { Deployment } from '#shared/types.ts';
import { createTestStore } from '#test/support/store.ts';

const requester = { type: 'local', user: 'alice' } as const;

function deployment(id: string, requestedAt: string, overrides: Partial<Deployment> = {}): Deployment {
  return {
    ...newDeployment({
      deploymentId: id,
      application: 'hello-world',
      environment: 'staging',
      ref: 'main',
      requester,
      trigger: 'local',
      requestedAt,
    }),
    ...overrides,
  };
}

describe('DynamoDeploymentStore', () => {
  it('creates a deployment once and returns the stored one on a second create', async () => {
    const { store } = await createTestStore();
    const first = await store.createDeployment(deployment('d1', '2026-01-01T00:00:00.000Z'));
    const second = await store.createDeployment(
      deployment('d1', '2026-01-02T00:00:00.000Z', { reason: 'other' }),
    );
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.deployment.requestedAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('never moves a terminal deployment to another status', async () => {
    const { store } = await createTestStore();
    await store.createDeployment(deployment('d1', '2026-01-01T00:00:00.000Z'));
    const failed = await store.finishDeployment('d1', 'FAILED', { errorCode: 'BUILD_FAILED' });
    const succeeded = await store.finishDeployment('d1', 'SUCCEEDED', {});
    const updated = await store.updateDeployment('d1', { phase: 'DEPLOYING' });
    expect(failed.changed).toBe(true);
    expect(succeeded.changed).toBe(false);
    expect(updated).toBeUndefined();
    expect((await store.getDeployment('d1'))?.status).toBe('FAILED');
  });

  it('updates one job record without touching the other', async () => {
    const { store } = await createTestStore();
    await store.createDeployment(deployment('d1', '2026-01-01T00:00:00.000Z'));
    await store.updateDeployment('d1', { jobs: { build: { buildId: 'b:1', startedAt: 'x' } } });
    await store.updateDeployment('d1', { jobs: { deploy: { buildId: 'd:1', startedAt: 'y' } } });
    const stored = await store.getDeployment('d1');
    expect(stored?.jobs).toEqual({
      build: { buildId: 'b:1', startedAt: 'x' },
      deploy: { buildId: 'd:1', startedAt: 'y' },
    });
  });

  it('accepts the same audit event twice but refuses a different one under the same key', async () => {
    const { store } = await createTestStore();
    const event = {
      deploymentId: 'd1',
      type: 'BUILD_STARTED' as const,
      step: 'BUILD_STARTED',
      at: '2026-01-01T00:00:00.000Z',
      detail: { buildId: 'b:1', logUrl: 'u' },
    };
    expect(await store.appendEvent(event)).toEqual({ written: true });
    expect(await store.appendEvent({ ...event, detail: { logUrl: 'u', buildId: 'b:1' } })).toEqual({
      written: false,
    });
    await expect(store.appendEvent({ ...event, detail: { buildId: 'b:2' } })).rejects.toThrow(
      /already exists/,
    );
    expect(await store.listEvents('d1')).toHaveLength(1);
  });

  it('lists events in the order they happened', async () => {
    const { store } = await createTestStore();
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    for (const [type, s] of [
      ['VALIDATED', 2],
      ['REQUESTED', 1],
      ['SUCCEEDED', 5],
      ['LOCK_RELEASED', 5],
    ] as const) {
      await store.appendEvent({ deploymentId: 'd1', type, step: type, at: at(s), detail: {} });
    }
    // Within one millisecond, the order the workflow writes them: the lock is released before the result.
    expect((await store.listEvents('d1')).map((e) => e.type)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'LOCK_RELEASED',
      'SUCCEEDED',
    ]);
  });

  it('keys events so that a plain Query returns them in time order, whatever their step names', async () => {
    const { store, doc, tableName } = await createTestStore();
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    // Alphabetical step order (the old key) would put BUILD_FINISHED before BUILD_STARTED and LOCK_* first.
    for (const [type, step, s] of [
      ['REQUESTED', 'REQUESTED', 1],
      ['VALIDATED', 'VALIDATED', 2],
      ['BUILD_STARTED', 'BUILD_STARTED', 3],
      ['BUILD_FINISHED', 'BUILD_FINISHED', 4],
      ['LOCK_WAITING', 'LOCK_WAITING#2', 5],
      ['LOCK_WAITING', 'LOCK_WAITING#10', 6],
      ['LOCK_RELEASED', 'LOCK_RELEASED', 7],
      ['SUCCEEDED', 'SUCCEEDED', 7],
    ] as const) {
      await store.appendEvent({ deploymentId: 'd1', type, step, at: at(s), detail: {} });
    }
    const { Items = [] } = await doc.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ev)',
        ExpressionAttributeValues: { ':pk': 'DEP#d1', ':ev': 'EV#' },
      }),
    );
    expect(Items.map((item) => item.step)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'BUILD_STARTED',
      'BUILD_FINISHED',
      'LOCK_WAITING#2',
      'LOCK_WAITING#10',
      'LOCK_RELEASED',
      'SUCCEEDED',
    ]);
  });

  it('keeps the first time of a step written twice: a retry later in time adds no second event', async () => {
    const { store } = await createTestStore();
    const event = {
      deploymentId: 'd1',
      type: 'LOCK_ACQUIRED' as const,
      step: 'LOCK_ACQUIRED',
      at: '2026-01-01T00:00:01.000Z',
      detail: { owner: 'd1' },
    };
    expect(await store.appendEvent(event)).toEqual({ written: true });
    expect(await store.appendEvent({ ...event, at: '2026-01-01T00:05:00.000Z' })).toEqual({ written: false });
    await expect(
      store.appendEvent({ ...event, at: '2026-01-01T00:06:00.000Z', detail: { owner: 'other' } }),
    ).rejects.toThrow(/already exists/);
    expect(await store.listEvents('d1')).toEqual([event]);
  });

  it('still reads events stored under the old step-name key, merged in time order with new ones', async () => {
    const { store, doc, tableName } = await createTestStore();
    // Written by the previous release: SK EV#<step>, no time in the key.
    for (const [type, at] of [
      ['VALIDATED', '2026-01-01T00:00:02.000Z'],
      ['REQUESTED', '2026-01-01T00:00:01.000Z'],
    ] as const) {
      await doc.send(
        new PutCommand({
          TableName: tableName,
          Item: { PK: 'DEP#d1', SK: `EV#${type}`, deploymentId: 'd1', type, step: type, at, detail: {} },
        }),
      );
    }
    await store.appendEvent({
      deploymentId: 'd1',
      type: 'BUILD_STARTED',
      step: 'BUILD_STARTED',
      at: '2026-01-01T00:00:03.000Z',
      detail: {},
    });
    expect((await store.listEvents('d1')).map((e) => e.type)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'BUILD_STARTED',
    ]);
  });

  it('pages history newest first with a cursor and refuses a forged cursor', async () => {
    const { store } = await createTestStore();
    for (let i = 0; i < 5; i++) {
      await store.createDeployment(deployment(`d${i}`, `2026-01-01T00:00:0${i}.000Z`));
    }
    const page1 = await store.listHistory('hello-world', 'staging', { limit: 2 });
    expect(page1.items.map((d) => d.deploymentId)).toEqual(['d4', 'd3']);
    const page2 = await store.listHistory('hello-world', 'staging', { limit: 2, cursor: page1.nextCursor! });
    expect(page2.items.map((d) => d.deploymentId)).toEqual(['d2', 'd1']);
    const page3 = await store.listHistory('hello-world', 'staging', { limit: 2, cursor: page2.nextCursor! });
    expect(page3.items.map((d) => d.deploymentId)).toEqual(['d0']);
    await expect(
      store.listHistory('hello-world', 'staging', { limit: 2, cursor: 'not-a-cursor' }),
    ).rejects.toMatchObject({ code: 'BAD_CURSOR' });
    await expect(
      store.listHistory('hello-world', 'prod', { limit: 2, cursor: page1.nextCursor! }),
    ).rejects.toMatchObject({
      code: 'BAD_CURSOR',
    });
  });

  it('gives the last full page of history no cursor to an empty page', async () => {
    const { store } = await createTestStore();
    for (let i = 0; i < 4; i++) {
      await store.createDeployment(deployment(`d${i}`, `2026-01-01T00:00:0${i}.000Z`));
    }
    const page1 = await store.listHistory('hello-world', 'staging', { limit: 2 });
    expect(page1.nextCursor).toBeDefined();
    const page2 = await store.listHistory('hello-world', 'staging', { limit: 2, cursor: page1.nextCursor! });
    expect(page2.items.map((d) => d.deploymentId)).toEqual(['d1', 'd0']);
    expect(page2.nextCursor).toBeUndefined();
    const whole = await store.listHistory('hello-world', 'staging', { limit: 4 });
    expect(whole.items).toHaveLength(4);
    expect(whole.nextCursor).toBeUndefined();
  });

  it('keeps only keys in GSI2 and still returns whole records from it', async () => {
    const { store, doc, tableName } = await createTestStore();
    await store.createDeployment(deployment('ok', '2026-01-01T00:00:00.000Z', { reason: 'first' }));
    await store.finishDeployment('ok', 'SUCCEEDED', { finishedAt: '2026-01-01T01:00:00.000Z' });
    await store.createDeployment(deployment('live', '2026-01-02T00:00:00.000Z', { reason: 'second' }));
    await store.updateDeployment('live', { phase: 'DEPLOYING' });
    const { Items = [] } = await doc.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: 'GSI2',
        KeyConditionExpression: 'GSI2PK = :pk',
        ExpressionAttributeValues: { ':pk': 'ACTIVE' },
      }),
    );
    expect(Items.map((item) => Object.keys(item).sort())).toEqual([['GSI2PK', 'GSI2SK', 'PK', 'SK']]);
    expect(await store.lastSuccessful('hello-world', 'staging')).toMatchObject({
      deploymentId: 'ok',
      application: 'hello-world',
      reason: 'first',
      status: 'SUCCEEDED',
    });
    expect(await store.listActive()).toEqual([
      expect.objectContaining({ deploymentId: 'live', reason: 'second', phase: 'DEPLOYING' }),
    ]);
    // A finished deployment leaves the in-flight list.
    await store.finishDeployment('live', 'FAILED', { finishedAt: '2026-01-02T01:00:00.000Z' });
    expect(await store.listActive()).toEqual([]);
  });

  it('finds the last successful real deployment and lists only in-flight ones as active', async () => {
    const { store } = await createTestStore();
    await store.createDeployment(deployment('old', '2026-01-01T00:00:00.000Z'));
    await store.finishDeployment('old', 'SUCCEEDED', { finishedAt: '2026-01-01T01:00:00.000Z' });
    await store.createDeployment(deployment('dry', '2026-01-02T00:00:00.000Z', { dryRun: true }));
    await store.finishDeployment('dry', 'SUCCEEDED', { finishedAt: '2026-01-02T01:00:00.000Z' });
    await store.createDeployment(deployment('bad', '2026-01-03T00:00:00.000Z'));
    await store.finishDeployment('bad', 'FAILED', { finishedAt: '2026-01-03T01:00:00.000Z' });
    await store.createDeployment(deployment('running', '2026-01-04T00:00:00.000Z'));
    expect((await store.lastSuccessful('hello-world', 'staging'))?.deploymentId).toBe('old');
    expect((await store.listActive()).map((d) => d.deploymentId)).toEqual(['running']);
  });

  it('lets one owner hold a lock, releases only for the owner, and takes over only the same lease', async () => {
    const { store } = await createTestStore();
    const lock = {
      application: 'hello-world',
      environment: 'staging',
      owner: 'a',
      acquiredAt: '2026-01-01T00:00:00.000Z',
      leaseExpiresAt: '2026-01-01T02:00:00.000Z',
    };
    expect(await store.acquireLock(lock)).toEqual({ acquired: true });
    expect(await store.acquireLock({ ...lock, leaseExpiresAt: 'later' })).toMatchObject({
      acquired: false,
      holder: { owner: 'a', leaseExpiresAt: lock.leaseExpiresAt },
    });
    const other = await store.acquireLock({ ...lock, owner: 'b' });
    expect(other).toMatchObject({ acquired: false, holder: { owner: 'a' } });
    expect(await store.releaseLock('hello-world', 'staging', 'b')).toBe(false);
    expect(await store.takeOverLock({ ...lock, leaseExpiresAt: 'other' }, { ...lock, owner: 'b' })).toBe(
      false,
    );
    expect(await store.takeOverLock(lock, { ...lock, owner: 'b' })).toBe(true);
    expect(await store.releaseLock('hello-world', 'staging', 'a')).toBe(false);
    expect(await store.releaseLock('hello-world', 'staging', 'b')).toBe(true);
    expect(await store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it('claims an idempotency key once and reports the first claim afterwards', async () => {
    const { store } = await createTestStore();
    expect(await store.claimIdempotencyKey('k', 'h1', 'd1', 'now')).toEqual({ claimed: true });
    expect(await store.claimIdempotencyKey('k', 'h2', 'd2', 'now')).toEqual({
      claimed: false,
      bodyHash: 'h1',
      deploymentId: 'd1',
    });
  });

  it('keeps the latest task token per job', async () => {
    const { store } = await createTestStore();
    await store.putTaskToken('d1', 'build', 't1');
    await store.putTaskToken('d1', 'build', 't2');
    expect(await store.getTaskToken('d1', 'build')).toBe('t2');
    expect(await store.getTaskToken('d1', 'deploy')).toBeUndefined();
  });
});
