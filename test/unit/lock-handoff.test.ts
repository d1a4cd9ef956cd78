import { describe, expect, it } from 'vitest';
import { finish, newDeployment } from '#shared/deployments/record.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { handOffLock } from '#shared/queue/handoff.ts';
import { releaseHeldLock } from '#shared/queue/lock.ts';
import { createTestStore } from '#test/support/store.ts';
import { testRegistry } from '#test/support/workflow.ts';
import { acquireLock, parkForLock } from '../../functions/acquire-lock/core.ts';
import { sweepParkedWaiters } from '../../functions/reconcile/core.ts';
import { LocalTaskTokens } from '../../local/workflow-engine.ts';

/**
 * The hand-over protocol on the real store (dynalite), each interleaving forced by calling the cores in
 * that order. Tokens are the local engine's (the same port SendTaskSuccess sits behind in AWS).
 */

const registry = testRegistry();
let now = new Date('2026-11-28T10:00:00.000Z');
const clock = { now: () => new Date(now) };
const env = { application: 'hello-world', environment: 'staging' };

async function setup() {
  const { store } = await createTestStore();
  const tokens = new LocalTaskTokens();
  const deps = { store, clock, registry, leaseSeconds: 600, tokens };
  return { store, tokens, deps };
}

async function request(store: DeploymentStore, id: string, n: number) {
  const requestedAt = new Date(Date.UTC(2026, 10, 28, 9, 0, n)).toISOString();
  await store.createDeployment(
    newDeployment({
      deploymentId: id,
      ...env,
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt,
    }),
  );
  await store.updateDeployment(id, { status: 'RUNNING', phase: 'BUILDING' });
  await store.putTicket({ ...env, deploymentId: id, requestedAt });
}

/** Acquire Lock answered WAITING, then the Wait For Lock Task parks with a fresh token. */
async function waitAndPark(deps: Awaited<ReturnType<typeof setup>>['deps'], id: string) {
  expect((await acquireLock({ deploymentId: id }, deps)).outcome).toBe('WAITING');
  const { token, result } = deps.tokens.issue();
  let resumed = 0;
  const woken = result.then((output) => {
    resumed++;
    return output;
  });
  await parkForLock({ deploymentId: id, taskToken: token }, deps);
  return { token, woken, resumed: () => resumed };
}

const types = async (store: DeploymentStore, id: string) => (await store.listEvents(id)).map((e) => e.type);
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('lock hand-over', () => {
  it('two releases racing hand the lock to the head once: one owner, its token completed once', async () => {
    const { store, deps } = await setup();
    await request(store, 'a', 1);
    await request(store, 'b', 2);
    await acquireLock({ deploymentId: 'a' }, deps);
    const parked = await waitAndPark(deps, 'b');
    await releaseHeldLock({ deploymentId: 'a', ...env }, deps);
    await finish(store, clock, 'a', 'SUCCEEDED', {});
    // Record Result's hand-over and the Release Lock step's (or the reconciler's) at the same moment.
    const outcomes = await Promise.all([
      handOffLock(env, deps),
      handOffLock(env, deps),
      handOffLock(env, deps),
    ]);
    expect(outcomes.filter((o) => o.outcome === 'HANDED_OVER')).toHaveLength(1);
    expect(outcomes.filter((o) => o.outcome === 'TOKEN_GONE')).toHaveLength(2);
    expect(await parked.woken).toEqual({ handedOver: true });
    await settle();
    expect(parked.resumed()).toBe(1);
    expect((await store.getLock(env.application, env.environment))?.owner).toBe('b');
    // Back at Acquire Lock, the lock is its own.
    expect((await acquireLock({ deploymentId: 'b' }, deps)).outcome).toBe('ACQUIRED');
  });

  it('a park that starts after the release (between the failed put and the park) takes the free lock itself', async () => {
    const { store, deps } = await setup();
    await request(store, 'a', 1);
    await request(store, 'b', 2);
    await acquireLock({ deploymentId: 'a' }, deps);
    expect((await acquireLock({ deploymentId: 'b' }, deps)).outcome).toBe('WAITING');
    // The holder ends now: its hand-over finds b not parked yet.
    await releaseHeldLock({ deploymentId: 'a', ...env }, deps);
    await finish(store, clock, 'a', 'SUCCEEDED', {});
    expect(await handOffLock(env, deps)).toEqual({ outcome: 'HEAD_NOT_PARKED' });
    const { token, result } = deps.tokens.issue();
    expect(await parkForLock({ deploymentId: 'b', taskToken: token }, deps)).toEqual({ parked: true });
    expect(await result).toEqual({ handedOver: true });
    expect((await store.getLock(env.application, env.environment))?.owner).toBe('b');
  });

  it('skips the ticket of an ended waiter even when it still carries a token, and hands the lock to the next', async () => {
    const { store, deps, tokens } = await setup();
    await request(store, 'a', 1);
    await request(store, 'dead', 2);
    await request(store, 'c', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const dead = await waitAndPark(deps, 'dead');
    const next = await waitAndPark(deps, 'c');
    // Its deployment ended but its ticket (with the token) is still there, as after a crash mid-finish.
    await store.updateDeployment('dead', { phase: 'WAITING_FOR_LOCK' });
    await store.finishDeployment('dead', 'CANCELLED', {});
    await store.putTicket({
      ...env,
      deploymentId: 'dead',
      requestedAt: new Date(Date.UTC(2026, 10, 28, 9, 0, 2)).toISOString(),
      taskToken: dead.token,
    });
    tokens.discard(dead.token);
    await releaseHeldLock({ deploymentId: 'a', ...env }, deps);
    await finish(store, clock, 'a', 'SUCCEEDED', {});
    expect(await handOffLock(env, deps)).toEqual({ outcome: 'HANDED_OVER', to: 'c' });
    expect(await next.woken).toEqual({ handedOver: true });
    expect(
      (await store.listTickets(env.application, env.environment, { limit: 5 })).map((t) => t.deploymentId),
    ).toEqual(['c']);
  });

  it('a failed build at the head of the queue lets the parked one behind it go (it never held the lock)', async () => {
    const { store, deps } = await setup();
    await request(store, 'head', 1);
    await request(store, 'b', 2);
    // b built first and queues behind head, which is still building: the lock is free.
    const parked = await waitAndPark(deps, 'b');
    expect(await store.getLock(env.application, env.environment)).toBeUndefined();
    await finish(store, clock, 'head', 'FAILED', { errorCode: 'BUILD_FAILED' });
    expect(await handOffLock(env, deps)).toEqual({ outcome: 'HANDED_OVER', to: 'b' });
    expect(await parked.woken).toEqual({ handedOver: true });
  });

  it('leaves a busy lock alone, also past its lease while its owner still runs (no wake-and-park loop)', async () => {
    const { store, deps } = await setup();
    await request(store, 'a', 1);
    await request(store, 'b', 2);
    await acquireLock({ deploymentId: 'a' }, deps);
    const parked = await waitAndPark(deps, 'b');
    expect(await handOffLock(env, deps)).toEqual({ outcome: 'LOCK_BUSY' });
    const before = now;
    try {
      now = new Date(now.getTime() + 601_000);
      // a is not terminal: waking b would only park it again (Acquire Lock takes over no live owner).
      expect(await handOffLock(env, deps)).toEqual({ outcome: 'LOCK_BUSY' });
      expect(parked.resumed()).toBe(0);
    } finally {
      now = before;
    }
  });

  it('wakes the head for an expired lease whose owner ended and settled, and Acquire Lock takes it over', async () => {
    const { store, deps } = await setup();
    await request(store, 'a', 1);
    await request(store, 'b', 2);
    await acquireLock({ deploymentId: 'a' }, deps);
    const parked = await waitAndPark(deps, 'b');
    // The lock outlived its owner (an ending that crashed before its release, from an older version).
    await store.markSettled('a', now.toISOString());
    await store.finishDeployment('a', 'FAILED', { errorCode: 'EXECUTION_FAILED' });
    const before = now;
    try {
      now = new Date(now.getTime() + 601_000);
      expect(await handOffLock(env, deps)).toEqual({ outcome: 'WOKEN', to: 'b' });
      expect(await parked.woken).toEqual({ handedOver: false });
      expect((await acquireLock({ deploymentId: 'b' }, deps)).outcome).toBe('ACQUIRED');
      expect(await types(store, 'b')).toContain('LOCK_TAKEN_OVER');
    } finally {
      now = before;
    }
  });

  it('a waiter handed the lock goes on even when an older ticket appeared after the hand-over', async () => {
    const { store, deps } = await setup();
    await request(store, 'a', 2);
    await request(store, 'b', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const parked = await waitAndPark(deps, 'b');
    await releaseHeldLock({ deploymentId: 'a', ...env }, deps);
    await finish(store, clock, 'a', 'SUCCEEDED', {});
    expect(await handOffLock(env, deps)).toEqual({ outcome: 'HANDED_OVER', to: 'b' });
    await parked.woken;
    // An earlier request whose Validate Request wrote its ticket only now.
    await request(store, 'early', 1);
    expect((await acquireLock({ deploymentId: 'b' }, deps)).outcome).toBe('ACQUIRED');
    // The earlier one waits behind b's lock, and gets it when b is done.
    expect((await acquireLock({ deploymentId: 'early' }, deps)).outcome).toBe('WAITING');
  });

  describe('the sweep (safety net, no state transitions)', () => {
    const sweepDeps = (d: Awaited<ReturnType<typeof setup>>['deps']) => ({
      ...d,
      runner: { start: async () => ({ buildId: 'x' }), describe: async () => [], stop: async () => {} },
      stacks: { stackStatus: async () => undefined },
      sleep: async () => {},
    });

    it('hands over a lock whose hand-over was lost (freed by a path that did not hand over)', async () => {
      const { store, deps } = await setup();
      await request(store, 'a', 1);
      await request(store, 'b', 2);
      await acquireLock({ deploymentId: 'a' }, deps);
      const parked = await waitAndPark(deps, 'b');
      // Released and ended, and then the process died before its hand-over.
      await releaseHeldLock({ deploymentId: 'a', ...env }, deps);
      await finish(store, clock, 'a', 'SUCCEEDED', {});
      expect(await sweepParkedWaiters(sweepDeps(deps))).toEqual({ handedOver: ['b'], woken: [] });
      expect(await parked.woken).toEqual({ handedOver: true });
    });

    it('wakes a waiter past its lock-wait deadline, which Acquire Lock then ends LOCK_WAIT_TIMEOUT', async () => {
      const { store, deps } = await setup();
      await request(store, 'a', 1);
      await request(store, 'b', 2);
      // A lease longer than the wait: only the deadline can wake b.
      await acquireLock({ deploymentId: 'a' }, { ...deps, leaseSeconds: 86_400 });
      const parked = await waitAndPark(deps, 'b');
      const before = now;
      try {
        expect(await sweepParkedWaiters(sweepDeps(deps))).toEqual({ handedOver: [], woken: [] });
        // staging waits at most 21,600 s (the registry default).
        now = new Date(now.getTime() + 21_601_000);
        expect((await sweepParkedWaiters(sweepDeps(deps))).woken).toEqual(['b']);
        expect(await parked.woken).toEqual({ handedOver: false });
        expect(await acquireLock({ deploymentId: 'b' }, deps)).toMatchObject({
          outcome: 'ENDED',
          status: 'FAILED',
        });
        expect((await store.getDeployment('b'))?.errorCode).toBe('LOCK_WAIT_TIMEOUT');
      } finally {
        now = before;
      }
    });
  });
});
