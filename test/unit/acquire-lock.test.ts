import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { newDeployment } from '#shared/deployments/record.ts';
import { RegistryError } from '#shared/errors.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { MAX_LOCK_WAIT_SECONDS, parseRegistry } from '#shared/registry/schema.ts';
import { createTestStore } from '#test/support/store.ts';
import { testRegistry } from '#test/support/workflow.ts';
import { acquireLock } from '../../functions/acquire-lock/core.ts';
import { LocalTaskTokens } from '../../local/workflow-engine.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

const registry = testRegistry();
let now = new Date('2026-11-28T10:00:00.000Z');
const clock = { now: () => new Date(now) };
const tokens = new LocalTaskTokens();
const deps = (store: DeploymentStore, leaseSeconds = 600) => ({
  store,
  clock,
  registry,
  leaseSeconds,
  tokens,
});

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

  it('frees the lock it already took when a retry of the step finds a freeze window begun (REJECTED, never locked)', async () => {
    const { store } = await createTestStore();
    const before = now;
    try {
      now = new Date('2026-12-19T23:59:50.000Z');
      await request(store, 'a', 'frozen', 1);
      expect((await acquireLock({ deploymentId: 'a' }, deps(store))).outcome).toBe('ACQUIRED');
      // The first invocation took the lock but its answer was lost; the retry runs after year-end began.
      now = new Date('2026-12-20T00:00:10.000Z');
      expect(await acquireLock({ deploymentId: 'a' }, deps(store))).toMatchObject({
        outcome: 'ENDED',
        status: 'REJECTED',
      });
      expect(await store.getDeployment('a')).toMatchObject({
        status: 'REJECTED',
        errorCode: 'ENVIRONMENT_FROZEN',
      });
      expect(await store.getLock('hello-world', 'frozen')).toBeUndefined();
      expect(await types(store, 'a')).toEqual(expect.arrayContaining(['LOCK_ACQUIRED', 'LOCK_RELEASED']));
    } finally {
      now = before;
    }
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
        message: 'ENVIRONMENT_BUSY: hello-world/sandbox is busy with deployment a',
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
        recheckSeconds: 3600,
      });
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'a',
        recheckSeconds: 3600,
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
        recheckSeconds: 3600,
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
        message: 'LOCK_WAIT_TIMEOUT: waited more than 21600 s for hello-world/staging (behind a)',
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
    it('replaces a waiting request with a newer one that waits too, and never interrupts the running one', async () => {
      const { store } = await createTestStore();
      await request(store, 'first', 'preview', 1);
      await acquireLock({ deploymentId: 'first' }, deps(store));
      await request(store, 'second', 'preview', 2);
      await request(store, 'third', 'preview', 3);
      // The third is still building: it may fail, so it replaces nothing yet.
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'first',
        // preview waits at most 600 s: the parked Task wakes at that deadline.
        recheckSeconds: 600,
      });
      expect(await acquireLock({ deploymentId: 'third' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'second',
        recheckSeconds: 600,
      });
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toEqual({
        outcome: 'ENDED',
        status: 'SUPERSEDED',
        message: 'SUPERSEDED: replaced by the newer request third',
      });
      expect(await store.getDeployment('second')).toMatchObject({
        status: 'SUPERSEDED',
        supersededBy: 'third',
      });
      expect(await types(store, 'second')).toEqual(['LOCK_WAITING', 'SUPERSEDED']);
      expect(await acquireLock({ deploymentId: 'third' }, deps(store))).toEqual({
        outcome: 'WAITING',
        behind: 'first',
        recheckSeconds: 600,
      });
      expect((await store.getLock('hello-world', 'preview'))?.owner).toBe('first');
    });

    it('runs the first of three rapid requests: one that need not wait is never superseded', async () => {
      const { store } = await createTestStore();
      await request(store, 'first', 'preview', 1);
      await request(store, 'second', 'preview', 2);
      await request(store, 'third', 'preview', 3);
      // Builds finish in reverse order: the later two wait, the first runs when it gets here.
      expect(await acquireLock({ deploymentId: 'third' }, deps(store))).toMatchObject({ outcome: 'WAITING' });
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toMatchObject({
        outcome: 'ENDED',
        status: 'SUPERSEDED',
      });
      expect(await acquireLock({ deploymentId: 'first' }, deps(store))).toMatchObject({
        outcome: 'ACQUIRED',
      });
      expect((await store.getDeployment('second'))?.supersededBy).toBe('third');
      await store.releaseLock('hello-world', 'preview', 'first');
      expect(await acquireLock({ deploymentId: 'third' }, deps(store))).toMatchObject({
        outcome: 'ACQUIRED',
      });
    });

    it('keeps a waiter whose newer request failed its build, so one of them still deploys', async () => {
      const { store } = await createTestStore();
      await request(store, 'first', 'preview', 1);
      await acquireLock({ deploymentId: 'first' }, deps(store));
      await request(store, 'second', 'preview', 2);
      await request(store, 'third', 'preview', 3);
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toMatchObject({
        outcome: 'WAITING',
      });
      await store.finishDeployment('third', 'FAILED', { errorCode: 'BUILD_FAILED' });
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toMatchObject({
        outcome: 'WAITING',
      });
      await store.releaseLock('hello-world', 'preview', 'first');
      expect(await acquireLock({ deploymentId: 'second' }, deps(store))).toMatchObject({
        outcome: 'ACQUIRED',
      });
    });

    it('points to the newest waiting request when several wait behind the one it replaces', async () => {
      const { store } = await createTestStore();
      await request(store, 'first', 'preview', 1);
      await acquireLock({ deploymentId: 'first' }, deps(store));
      for (const [n, id] of ['second', 'third', 'fourth'].entries())
        await request(store, id, 'preview', n + 2);
      await acquireLock({ deploymentId: 'second' }, deps(store));
      await acquireLock({ deploymentId: 'third' }, deps(store));
      await acquireLock({ deploymentId: 'fourth' }, deps(store));
      await acquireLock({ deploymentId: 'second' }, deps(store));
      await acquireLock({ deploymentId: 'third' }, deps(store));
      expect((await store.getDeployment('second'))?.supersededBy).toBe('fourth');
      expect((await store.getDeployment('third'))?.supersededBy).toBe('fourth');
      expect((await store.getDeployment('fourth'))?.status).toBe('RUNNING');
    });
  });

  describe('a release racing with a waiter', () => {
    /** The real store, with `hook` run right after one call of `method` (the forced interleaving). */
    function interleave<M extends 'acquireLock' | 'getLock' | 'updateDeployment'>(
      store: DeploymentStore,
      method: M,
      hook: (...args: Parameters<DeploymentStore[M]>) => Promise<void>,
      before = false,
    ): DeploymentStore {
      return new Proxy(store, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          // Bound to the proxy, so the store's own calls (acquireLock reads the holder) pass the hook too.
          if (prop !== method) return typeof value === 'function' ? value.bind(receiver) : value;
          return async (...args: Parameters<DeploymentStore[M]>) => {
            if (before) await hook(...args);
            const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(receiver, args);
            if (!before) await hook(...args);
            return result;
          };
        },
      });
    }

    it.each(['staging', 'sandbox'])(
      'acquires in the same attempt when the release lands between the failed put and the read of the holder (%s)',
      async (environment) => {
        const { store } = await createTestStore();
        await request(store, 'a', environment, 1);
        await request(store, 'b', environment, 2);
        await acquireLock({ deploymentId: 'a' }, deps(store));
        let released = false;
        const racing = interleave(
          store,
          'getLock',
          async () => {
            if (!released) released = await store.releaseLock('hello-world', environment, 'a');
          },
          true,
        );
        expect(await acquireLock({ deploymentId: 'b' }, deps(racing))).toMatchObject({ outcome: 'ACQUIRED' });
        expect(released).toBe(true);
        expect((await store.getLock('hello-world', environment))?.owner).toBe('b');
        expect(JSON.stringify(await store.getDeployment('b'))).not.toContain('unknown');
      },
    );

    it.each([
      ['after the failed put, before the answer', 'acquireLock'],
      ['while it parks (records WAITING_FOR_LOCK)', 'updateDeployment'],
    ] as const)('loses no wake-up when the release lands %s: the next poll acquires', async (_, method) => {
      const { store } = await createTestStore();
      await request(store, 'a', 'staging', 1);
      await request(store, 'b', 'staging', 2);
      await acquireLock({ deploymentId: 'a' }, deps(store));
      let released = false;
      const racing = interleave(store, method, async () => {
        if (!released) released = await store.releaseLock('hello-world', 'staging', 'a');
      });
      expect(await acquireLock({ deploymentId: 'b' }, deps(racing))).toEqual({
        outcome: 'WAITING',
        behind: 'a',
        recheckSeconds: 3600,
      });
      expect(released).toBe(true);
      expect(await store.getLock('hello-world', 'staging')).toBeUndefined();
      expect(await acquireLock({ deploymentId: 'b' }, deps(store))).toMatchObject({ outcome: 'ACQUIRED' });
      expect(await types(store, 'b')).toEqual(['LOCK_WAITING', 'LOCK_ACQUIRED']);
    });
  });

  describe('the wait bound', () => {
    it('refuses a lockWaitTimeoutSeconds above the bound at registry load, naming the field', () => {
      const raw = parseYaml(readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'));
      raw.applications['hello-world'].environments.staging.lockWaitTimeoutSeconds = MAX_LOCK_WAIT_SECONDS + 1;
      expect(() => parseRegistry(raw, 'registry.yaml')).toThrow(RegistryError);
      expect(() => parseRegistry(raw, 'registry.yaml')).toThrow(
        /applications\.hello-world\.environments\.staging\.lockWaitTimeoutSeconds: must be at most 36000 s/,
      );
      raw.applications['hello-world'].environments.staging.lockWaitTimeoutSeconds = MAX_LOCK_WAIT_SECONDS;
      expect(
        parseRegistry(raw).applications['hello-world']?.environments.staging?.lockWaitTimeoutSeconds,
      ).toBe(MAX_LOCK_WAIT_SECONDS);
    });

    it('lets the longest build wait, lock wait and deploy wait end before the execution times out', () => {
      const template = loadTemplate(fileURLToPath(new URL('../../template.yaml', import.meta.url)));
      const asl = JSON.parse(
        readFileSync(new URL('../../statemachine/deploy.asl.json', import.meta.url), 'utf8'),
      ) as { TimeoutSeconds: number; States: Record<string, Record<string, unknown>> };
      const waits = template.Mappings?.WaitSeconds as Record<string, Record<string, number>>;
      const allowed = (name: string) => {
        const values = template.Parameters?.[name]?.AllowedValues as number[] | undefined;
        if (!values) throw new Error(`template.yaml has no AllowedValues for ${name}`);
        return values.map(String);
      };
      const longest = (job: string) =>
        Math.max(...allowed('QueuedTimeoutMinutes').flatMap((q) => allowed(job).map((j) => waits[q]![j]!)));
      // A parked waiter's Task times out at its lock-wait deadline at the latest (recheckSeconds), so the
      // lock wait adds nothing beyond MAX_LOCK_WAIT_SECONDS.
      expect(asl.States['Wait For Lock']).toMatchObject({
        TimeoutSecondsPath: '$.lock.value.recheckSeconds',
      });
      const worst = longest('BuildTimeoutMinutes') + MAX_LOCK_WAIT_SECONDS + longest('DeployTimeoutMinutes');
      // The rest (Lambda steps with their retries, settling) needs room too: at least half an hour.
      expect(asl.TimeoutSeconds - worst).toBeGreaterThanOrEqual(1800);
    });
  });
});
