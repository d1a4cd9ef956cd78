import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments.ts';
import { parseRegistryText } from '#shared/registry-file.ts';
import type { Trigger } from '#shared/types.ts';
import { createTestStore } from '#test/support/store.ts';
import { recoverOnStart } from '../../local/recover.ts';

const registry = parseRegistryText(
  readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'),
  'test/fixtures/registry.yaml',
);
const clock = { now: () => new Date('2026-11-30T09:00:00Z') };

/** A deployment left RUNNING, holding staging's lock, by a server that was killed (no job had started). */
async function leftover(trigger: Trigger) {
  const { store } = await createTestStore();
  const deploymentId = `01JNLEFT-${trigger}`;
  await store.createDeployment(
    newDeployment({
      deploymentId,
      application: 'hello-world',
      environment: 'staging',
      ref: 'main',
      requester: { type: 'schedule', scheduleName: 'promote-nightly' },
      trigger,
      requestedAt: clock.now().toISOString(),
    }),
  );
  await store.updateDeployment(deploymentId, { status: 'RUNNING', phase: 'BUILDING' });
  const lock = await store.acquireLock({
    application: 'hello-world',
    environment: 'staging',
    owner: deploymentId,
    acquiredAt: '2026-11-30T09:00:00.000Z',
    leaseExpiresAt: '2026-11-30T10:00:00.000Z',
  });
  expect(lock.acquired).toBe(true);
  const noJobs = {
    unfinishedFromEarlierRuns: () => [],
    stopSurvivor: async () => false,
  } as never;
  const reconcileDeps = {
    store,
    clock,
    registry,
    runner: { start: async () => ({ buildId: 'x' }), describe: async () => [], stop: async () => {} },
    stacks: { stackStatus: async () => undefined },
    tokens: { succeed: async () => 'gone' as const, fail: async () => 'gone' as const },
    sleep: async () => {},
  };
  return {
    store,
    deploymentId,
    recover: (ownsStore: boolean) =>
      recoverOnStart({
        store,
        registry,
        runner: noJobs,
        reconcileDeps,
        ownsStore,
        budget: { budgetMs: 1000, pollMs: 1 },
      }),
  };
}

describe('recovery at start-up', () => {
  it.each(['chat', 'schedule', 'local'] as const)(
    'with its own store, settles a %s deployment a killed server left in flight and frees its lock',
    async (trigger) => {
      const { store, deploymentId, recover } = await leftover(trigger);
      const report = await recover(true);
      expect(report.reconciled).toEqual([deploymentId]);
      expect(await store.getDeployment(deploymentId)).toMatchObject({
        status: 'FAILED',
        errorCode: 'ORCHESTRATOR_RESTARTED',
      });
      expect(await store.getLock('hello-world', 'staging')).toBeUndefined();
    },
  );

  it("with a shared table, leaves a deployed orchestrator's chat and schedule deployments alone", async () => {
    for (const trigger of ['chat', 'schedule'] as const) {
      const { store, deploymentId, recover } = await leftover(trigger);
      expect((await recover(false)).reconciled).toEqual([]);
      expect(await store.getDeployment(deploymentId)).toMatchObject({ status: 'RUNNING' });
      expect(await store.getLock('hello-world', 'staging')).toMatchObject({ owner: deploymentId });
    }
  });
});
