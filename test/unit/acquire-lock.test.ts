import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { createTestStore } from '#test/support/store.ts';
import { testRegistry } from '#test/support/workflow.ts';
import { acquireLock } from '../../functions/acquire-lock/core.ts';

const registry = testRegistry();
let now = new Date('2026-11-28T10:00:00.000Z');
const clock = { now: () => new Date(now) };
const deps = (store: DeploymentStore, leaseSeconds = 600) => ({ store, clock, registry, leaseSeconds });

/** A validated request with its ticket, as Validate Request leaves it; `n` orders the request times. */
async function request(store: DeploymentStore, id: string, environment: string, n: number) {
  const requestedAt = new Date(Date.UTC(2026, 10, 28, 9, 0, n)).toISOString();
  await store.createDeployment(
    newDeployment({
      deploymentId: id,
      application: 'hello-world',
      environment,
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt,
    }),
  );
  await store.updateDeployment(id, { status: 'RUNNING', phase: 'BUILDING' });
  if (environment !== 'sandbox') {
    await store.putTicket({ application: 'hello-world', environment, deploymentId: id, requestedAt });
  }
}

const types = async (store: DeploymentStore, id: string) => (await store.listEvents(id)).map((e) => e.type);

describe('Acquire Lock', () => {
  it('takes a free lock with a lease of the configured length and leaves the queue', async () => {
    const { store } = await createTestStore();
    await request(store, 'a', 'staging', 1);
    expect(await acquireLock({ deploymentId: 'a' }, deps(store))).toEqual({
      outcome: 'ACQUIRED',
      leaseExpiresAt: new Date(now.getTime() + 600_000).toISOString(),
    });
    expect((await store.getDeployment('a'))?.phase).toBe('DEPLOYING');
    expect(await store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
  });

  it('keeps the first lease when the step runs twice', async () => {
    const { store } = await createTestStore();
    await request(store, 'a', 'staging', 1);
    const first = await acquireLock({ deploymentId: 'a' }, deps(store));
    now = new Date(now.getTime() + 5000);
    expect(await acquireLock({ deploymentId: 'a' }, deps(store))).toEqual(first);
    expect(await types(store, 'a')).toEqual(['LOCK_ACQUIRED']);
  });

  describe('reject mode', () => {
    it('refuses a busy environment as REJECTED with ENVIRONMENT_BUSY naming the holder', async () => {
      const { store } = await createTestStore();
      await request(store, 'a', 'sandbox', 1);
      await request(store, 'b', 'sandbox', 2);
      await acquireLock({ deploymentId: 'a' }, deps(store));
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toEqual({
        outcome: 'ENDED',
        status: 'REJECTED',
      });
      expect(await store.getDeployment('b')).toMatchObject({
        status: 'REJECTED',
        errorCode: 'ENVIRONMENT_BUSY',
      });
      expect((await store.getDeployment('b'))?.errorMessage).toContain('deployment a');
    });
  });

  describe('queued mode', () => {
    it('waits behind the holder, says so once, and takes the lock after the release', async () => {
      const { store } = await createTestStore();
      await request(store, 'a', 'staging', 1);
      await request(store, 'b', 'staging', 2);
      await acquireLock({ deploymentId: 'a' }, deps(store));
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'a',
      });
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'a',
      });
      expect(await store.getDeployment('b')).toMatchObject({
        status: 'RUNNING',
        phase: 'WAITING_FOR_LOCK',
        waitingBehind: { deploymentId: 'a', reason: 'HOLDS_LOCK' },
      });
      expect(await types(store, 'b')).toEqual(['LOCK_WAITING']);
      // The release lands between two polls: the next poll takes the lock; nothing had to be woken up.
      await store.releaseLock('hello-world', 'staging', 'a');
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toMatchObject({ outcome: 'ACQUIRED' });
    });

    it('lets no newcomer jump ahead of an earlier request, even when the lock is free', async () => {
      const { store } = await createTestStore();
      await request(store, 'first', 'staging', 1);
      await request(store, 'second', 'staging', 2);
      // The second request's build finished first: it still waits for the first.
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'first',
      });
      expect((await store.getDeployment('second'))?.waitingBehind).toEqual({
        deploymentId: 'first',
        reason: 'EARLIER_REQUEST',
      });
      expect(await acquireLock({ deploymentId: 'first' }, deps(store))).toMatchObject({
        outcome: 'ACQUIRED',
      });
    });

    it('skips the ticket of a deployment that ended without taking the lock', async () => {
      const { store } = await createTestStore();
      await request(store, 'dead', 'staging', 1);
      await request(store, 'next', 'staging', 2);
      await store.finishDeployment('dead', 'CANCELLED', {});
      expect(await acquireLock({ deploymentId: 'next' }, deps(store))).toMatchObject({ outcome: 'ACQUIRED' });
    });

    it('fails a waiter with LOCK_WAIT_TIMEOUT after the registry bound, and removes its ticket', async () => {
      const { store } = await createTestStore();
      await request(store, 'a', 'staging', 1);
      await request(store, 'b', 'staging', 2);
      await acquireLock({ deploymentId: 'a' }, deps(store));
      await acquireLock({ deploymentId: 'b' }, deps(store));
      now = new Date(now.getTime() + 21_601_000);
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toEqual({
        outcome: 'ENDED',
        status: 'FAILED',
      });
      expect(await store.getDeployment('b')).toMatchObject({
        status: 'FAILED',
        errorCode: 'LOCK_WAIT_TIMEOUT',
      });
      expect(await store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
      expect((await store.getLock('hello-world', 'staging'))?.owner).toBe('a');
    });

    it('hands an expired, settled lease to the head of the queue only', async () => {
      const { store } = await createTestStore();
      await request(store, 'old', 'staging', 1);
      await acquireLock({ deploymentId: 'old' }, deps(store, 60));
      await store.finishDeployment('old', 'FAILED', {});
      await store.markSettled('old', now.toISOString());
      await request(store, 'head', 'staging', 2);
      await request(store, 'later', 'staging', 3);
      now = new Date(now.getTime() + 3_600_000);
      expect(await acquireLock({ deploymentId: 'later' }, deps(store))).toMatchObject({
        outcome: 'WAITING',
        behind: 'head',
      });
      expect(await acquireLock({ deploymentId: 'head' }, deps(store))).toMatchObject({ outcome: 'ACQUIRED' });
      expect(await types(store, 'head')).toEqual(['LOCK_TAKEN_OVER', 'LOCK_ACQUIRED']);
      expect((await store.listEvents('head'))[0]?.detail).toMatchObject({ previousOwner: 'old' });
    });

    it('does not take over an expired lease whose owner runs or is not settled', async () => {
      const { store } = await createTestStore();
      await request(store, 'running', 'staging', 1);
      await acquireLock({ deploymentId: 'running' }, deps(store, 60));
      await request(store, 'b', 'staging', 2);
      now = new Date(now.getTime() + 3_600_000);
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toMatchObject({ outcome: 'WAITING' });
      await store.finishDeployment('running', 'FAILED', {});
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toMatchObject({ outcome: 'WAITING' });
    });
  });

  describe('superseded mode', () => {
    it('replaces a waiting request with a newer one and never interrupts the running one', async () => {
      const { store } = await createTestStore();
      await request(store, 'first', 'preview', 1);
      await acquireLock({ deploymentId: 'first' }, deps(store));
      await request(store, 'second', 'preview', 2);
      await request(store, 'third', 'preview', 3);
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toEqual({
        outcome: 'ENDED',
        status: 'SUPERSEDED',
      });
      expect(await store.getDeployment('second')).toMatchObject({
        status: 'SUPERSEDED',
        supersededBy: 'third',
      });
      expect(await acquireLock({ deploymentId: 'third' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'first',
      });
      expect((await store.getLock('hello-world', 'preview'))?.owner).toBe('first');
    });
  });
});
