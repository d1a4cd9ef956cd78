import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments.ts';
import { createTestStore } from '#test/support/store.ts';
import { acquireLock } from '../../functions/acquire-lock/core.ts';

const T0 = new Date('2026-11-28T10:00:00.000Z');
const clockAt = (iso: string) => ({ now: () => new Date(iso) });

async function seed(store: Awaited<ReturnType<typeof createTestStore>>['store'], id: string) {
  await store.createDeployment(
    newDeployment({
      deploymentId: id,
      application: 'hello-world',
      environment: 'staging',
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt: T0.toISOString(),
    }),
  );
}

describe('Acquire Lock', () => {
  it('takes a free lock with a lease of the configured length', async () => {
    const { store } = await createTestStore();
    await seed(store, 'a');
    const result = await acquireLock(
      { deploymentId: 'a' },
      { store, clock: clockAt(T0.toISOString()), leaseSeconds: 600 },
    );
    expect(result).toEqual({ acquired: true, leaseExpiresAt: '2026-11-28T10:10:00.000Z' });
    expect((await store.getDeployment('a'))?.phase).toBe('DEPLOYING');
  });

  it('refuses a busy environment as REJECTED with ENVIRONMENT_BUSY naming the holder', async () => {
    const { store } = await createTestStore();
    await seed(store, 'a');
    await seed(store, 'b');
    const deps = { store, clock: clockAt(T0.toISOString()), leaseSeconds: 600 };
    await acquireLock({ deploymentId: 'a' }, deps);
    expect(await acquireLock({ deploymentId: 'b' }, deps)).toEqual({ acquired: false, heldBy: 'a' });
    expect(await store.getDeployment('b')).toMatchObject({
      status: 'REJECTED',
      errorCode: 'ENVIRONMENT_BUSY',
    });
    expect((await store.getDeployment('b'))?.errorMessage).toContain('deployment a');
  });

  it('does not take over an expired lease whose owner is still running', async () => {
    const { store } = await createTestStore();
    await seed(store, 'a');
    await seed(store, 'b');
    await acquireLock({ deploymentId: 'a' }, { store, clock: clockAt(T0.toISOString()), leaseSeconds: 60 });
    const later = { store, clock: clockAt('2026-11-28T12:00:00.000Z'), leaseSeconds: 60 };
    expect(await acquireLock({ deploymentId: 'b' }, later)).toMatchObject({ acquired: false, heldBy: 'a' });
  });

  it('does not take over an expired lease whose owner ended but is not settled', async () => {
    const { store } = await createTestStore();
    await seed(store, 'a');
    await seed(store, 'b');
    await acquireLock({ deploymentId: 'a' }, { store, clock: clockAt(T0.toISOString()), leaseSeconds: 60 });
    await store.finishDeployment('a', 'FAILED', {});
    const later = { store, clock: clockAt('2026-11-28T12:00:00.000Z'), leaseSeconds: 60 };
    expect(await acquireLock({ deploymentId: 'b' }, later)).toMatchObject({ acquired: false });
  });

  it('takes over an expired lease of a terminal, settled owner and audits it', async () => {
    const { store } = await createTestStore();
    await seed(store, 'a');
    await seed(store, 'b');
    await acquireLock({ deploymentId: 'a' }, { store, clock: clockAt(T0.toISOString()), leaseSeconds: 60 });
    await store.finishDeployment('a', 'FAILED', {});
    await store.markSettled('a', T0.toISOString());
    const later = { store, clock: clockAt('2026-11-28T12:00:00.000Z'), leaseSeconds: 60 };
    expect(await acquireLock({ deploymentId: 'b' }, later)).toMatchObject({ acquired: true });
    expect((await store.getLock('hello-world', 'staging'))?.owner).toBe('b');
    const events = await store.listEvents('b');
    expect(events.map((e) => e.type)).toEqual(['LOCK_TAKEN_OVER', 'LOCK_ACQUIRED']);
    expect(events[0]?.detail).toMatchObject({ previousOwner: 'a' });
  });
});
