import { describe, expect, it } from 'vitest';
import { finish, newDeployment } from '#shared/deployments/record.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { handOffLock } from '#shared/queue/handoff.ts';
import { releaseHeldLock } from '#shared/queue/lock.ts';
import { createTestStore } from '#test/support/store.ts';
import { testRegistry } from '#test/support/workflow.ts';
import { acquireLock, parkForLock } from '../../functions/acquire-lock/core.ts';
import { reconcileDeployment, sweepParkedWaiters } from '../../functions/reconcile/core.ts';
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

/**
 * A deployment that ends itself at Acquire Lock (superseded, frozen, lock-wait timeout) or is ended by the
 * reconciler while a release hands it the lock: its ticket still carries the token of its last park (woken,
 * so gone), and the hand-over's put lands between its release and its terminal write. The interleaving is
 * forced by running the release at the moment the ending deployment writes its terminal status.
 */
describe('a hand-over racing a deployment that ends', () => {
  /** Runs `race` once, just before the terminal write of `id`. */
  function beforeTerminalWrite(store: DeploymentStore, id: string, race: () => Promise<void>) {
    const finishDeployment = store.finishDeployment.bind(store);
    let fired = false;
    store.finishDeployment = async (deploymentId, status, changes) => {
      if (deploymentId === id && !fired) {
        fired = true;
        await race();
      }
      return finishDeployment(deploymentId, status, changes);
    };
  }

  async function requestIn(store: DeploymentStore, environment: string, id: string, n: number) {
    const requestedAt = new Date(Date.UTC(2026, 10, 28, 9, 0, n)).toISOString();
    await store.createDeployment(
      newDeployment({
        deploymentId: id,
        application: env.application,
        environment,
        requester: { type: 'local', user: 'alice' },
        trigger: 'local',
        requestedAt,
      }),
    );
    await store.updateDeployment(id, { status: 'RUNNING', phase: 'BUILDING' });
    await store.putTicket({ application: env.application, environment, deploymentId: id, requestedAt });
  }

  it('a head superseded while the holder releases does not keep the lock: the newer waiter gets it', async () => {
    const { store, deps } = await setup();
    const preview = { application: env.application, environment: 'preview' };
    await requestIn(store, 'preview', 'a', 1);
    await requestIn(store, 'preview', 'x', 2);
    await requestIn(store, 'preview', 'y', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const x = await waitAndPark(deps, 'x');
    // y parks and wakes x, the older waiter it replaces: x's ticket keeps its completed token.
    const y = await waitAndPark(deps, 'y');
    expect(await x.woken).toEqual({ handedOver: false });
    // a ends and hands over while x, back at Acquire Lock, finds a holding the lock and is superseded.
    beforeTerminalWrite(store, 'x', async () => {
      await releaseHeldLock({ deploymentId: 'a', ...preview }, deps);
      await finish(store, clock, 'a', 'SUCCEEDED', {});
      await handOffLock(preview, deps);
    });
    expect(await acquireLock({ deploymentId: 'x' }, deps)).toMatchObject({ status: 'SUPERSEDED' });
    // x never settles (it ran nothing): a lock left with it could never be taken over.
    expect((await store.getLock(preview.application, preview.environment))?.owner).toBe('y');
    expect(await y.woken).toEqual({ handedOver: true });
  });

  it('a head frozen while the holder releases does not keep the lock', async () => {
    const { store, deps } = await setup();
    const frozen = { application: env.application, environment: 'frozen' };
    await requestIn(store, 'frozen', 'a', 1);
    await requestIn(store, 'frozen', 'x', 2);
    await requestIn(store, 'frozen', 'z', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const x = await waitAndPark(deps, 'x');
    const z = await waitAndPark(deps, 'z');
    // x's safety-net re-check: its token is gone, its ticket still carries it.
    deps.tokens.discard(x.token);
    const before = now;
    try {
      // Inside the year-end freeze: x, back at Acquire Lock, is rejected.
      now = new Date('2026-12-21T10:00:00.000Z');
      beforeTerminalWrite(store, 'x', async () => {
        await releaseHeldLock({ deploymentId: 'a', ...frozen }, deps);
        await finish(store, clock, 'a', 'SUCCEEDED', {});
        await handOffLock(frozen, deps);
      });
      expect(await acquireLock({ deploymentId: 'x' }, deps)).toMatchObject({ status: 'REJECTED' });
      expect((await store.getLock(frozen.application, frozen.environment))?.owner).toBe('z');
      expect(await z.woken).toEqual({ handedOver: true });
    } finally {
      now = before;
    }
  });

  it('a retried Acquire Lock finishes the ending its first attempt crashed in: the lock still moves on', async () => {
    const { store, deps } = await setup();
    const frozen = { application: env.application, environment: 'frozen' };
    await requestIn(store, 'frozen', 'a', 1);
    await requestIn(store, 'frozen', 'x', 2);
    await requestIn(store, 'frozen', 'z', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const x = await waitAndPark(deps, 'x');
    const z = await waitAndPark(deps, 'z');
    deps.tokens.discard(x.token);
    const before = now;
    const getLock = store.getLock.bind(store);
    let crash = false;
    try {
      now = new Date('2026-12-21T10:00:00.000Z');
      beforeTerminalWrite(store, 'x', async () => {
        await releaseHeldLock({ deploymentId: 'a', ...frozen }, deps);
        await finish(store, clock, 'a', 'SUCCEEDED', {});
        await handOffLock(frozen, deps);
        crash = true;
      });
      // The first attempt's terminal write lands, then its next read fails (throttled): Step Functions retries.
      store.getLock = async (application, environment) => {
        if (crash) {
          crash = false;
          throw new Error('ProvisionedThroughputExceededException');
        }
        return getLock(application, environment);
      };
      await expect(acquireLock({ deploymentId: 'x' }, deps)).rejects.toThrow('ProvisionedThroughputExceeded');
      expect((await store.getDeployment('x'))?.status).toBe('REJECTED');
      expect(await acquireLock({ deploymentId: 'x' }, deps)).toMatchObject({ status: 'REJECTED' });
      // x never settles: a lock left with it could never be taken over.
      expect((await getLock(frozen.application, frozen.environment))?.owner).toBe('z');
      expect(await z.woken).toEqual({ handedOver: true });
    } finally {
      now = before;
    }
  });

  it('a hand-over whose put lands after the head ended (and looked at the lock) frees the lock again', async () => {
    const { store, deps } = await setup();
    const frozen = { application: env.application, environment: 'frozen' };
    await requestIn(store, 'frozen', 'a', 1);
    await requestIn(store, 'frozen', 'x', 2);
    await requestIn(store, 'frozen', 'z', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const x = await waitAndPark(deps, 'x');
    deps.tokens.discard(x.token);
    const before = now;
    try {
      now = new Date('2026-12-21T10:00:00.000Z');
      await releaseHeldLock({ deploymentId: 'a', ...frozen }, deps);
      await finish(store, clock, 'a', 'SUCCEEDED', {});
      // a's hand-over has read x as the live head; x is rejected (frozen) before the put for it lands.
      const acquire = store.acquireLock.bind(store);
      let raced = false;
      store.acquireLock = async (lock) => {
        if (lock.owner === 'x' && !raced) {
          raced = true;
          expect(await acquireLock({ deploymentId: 'x' }, deps)).toMatchObject({ status: 'REJECTED' });
        }
        return acquire(lock);
      };
      // z is still building: nobody is parked to hand the lock to.
      expect(await handOffLock(frozen, deps)).toEqual({ outcome: 'HEAD_NOT_PARKED' });
      expect(raced).toBe(true);
      expect(await store.getLock(frozen.application, frozen.environment)).toBeUndefined();
    } finally {
      now = before;
    }
  });

  it('a dead waiter handed the lock while the reconciler ends it does not keep the lock', async () => {
    const { store, deps } = await setup();
    await request(store, 'a', 1);
    await request(store, 'x', 2);
    await request(store, 'z', 3);
    await acquireLock({ deploymentId: 'a' }, deps);
    const x = await waitAndPark(deps, 'x');
    const z = await waitAndPark(deps, 'z');
    // x's execution was aborted: its token is gone, its ticket still carries it.
    deps.tokens.discard(x.token);
    beforeTerminalWrite(store, 'x', async () => {
      await releaseHeldLock({ deploymentId: 'a', ...env }, deps);
      await finish(store, clock, 'a', 'SUCCEEDED', {});
      expect(await handOffLock(env, deps)).toEqual({ outcome: 'TOKEN_GONE', to: 'x' });
    });
    const reconcileDeps = {
      ...deps,
      runner: { start: async () => ({ buildId: 'x' }), describe: async () => [], stop: async () => {} },
      stacks: { stackStatus: async () => undefined },
      sleep: async () => {},
    };
    await reconcileDeployment(
      'x',
      { status: 'CANCELLED', code: 'EXECUTION_ABORTED', message: 'aborted' },
      reconcileDeps,
      { budgetMs: 1000, pollMs: 1 },
    );
    // Otherwise held by the ended x until its lease ran out (the deploy job's timeouts plus a margin).
    expect((await store.getLock(env.application, env.environment))?.owner).toBe('z');
    expect(await z.woken).toEqual({ handedOver: true });
  });
});
