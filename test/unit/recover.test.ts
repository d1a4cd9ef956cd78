import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import { parseRegistryText } from '#shared/registry/file.ts';
import type { Deployment, Trigger } from '#shared/types.ts';
import { createTestStore } from '#test/support/store.ts';
import { watchTerminalWrites } from '#test/support/workflow.ts';
import { InstanceOwnership, instanceIdOf, owningStore } from '../../local/ownership.ts';
import { recoverOnStart } from '../../local/recover.ts';

const registry = parseRegistryText(
  readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'),
  'test/fixtures/registry.yaml',
);
const clock = { now: () => new Date('2026-11-30T09:00:00Z') };

/** A deployment left RUNNING, holding staging's lock, by a server that was killed (no job had started). */
async function leftover(trigger: Trigger) {
  const { store } = await createTestStore();
  const terminalWhileLocked = watchTerminalWrites(store);
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
    leaseSeconds: 600,
    sleep: async () => {},
  };
  return {
    store,
    deploymentId,
    terminalWhileLocked,
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
      const { store, deploymentId, terminalWhileLocked, recover } = await leftover(trigger);
      const report = await recover(true);
      // Freed before it reads FAILED: whoever sees the result may deploy again at once.
      expect(terminalWhileLocked).toEqual([]);
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

describe('recovery on a table other local servers share', () => {
  const T0 = new Date('2026-11-30T09:00:00.000Z');
  const at = (ms: number) => ({ now: () => new Date(T0.getTime() + ms) });

  /**
   * Server "other" (its own data directory) owns a deployment in flight, holding staging's lock; this
   * server is "self". Both on one table; the clock is this test's.
   */
  async function sharedTable(
    shape: Partial<Pick<Deployment, 'phase' | 'jobs'>> = { phase: 'WAITING_FOR_LOCK' },
  ) {
    const { store } = await createTestStore();
    const other = new InstanceOwnership({ store, instanceId: OTHER, dataDir: '/srv/other', clock: at(0) });
    await other.renew();
    const deploymentId = '01JNSHARED0000000000000001';
    const created = await owningStore(store, other).createDeployment(
      newDeployment({
        deploymentId,
        application: 'hello-world',
        environment: 'staging',
        ref: 'main',
        requester: { type: 'local', user: 'alice' },
        trigger: 'local',
        requestedAt: T0.toISOString(),
      }),
    );
    expect(created.created).toBe(true);
    await store.updateDeployment(deploymentId, { status: 'RUNNING', ...shape });
    await store.acquireLock({
      application: 'hello-world',
      environment: 'staging',
      owner: deploymentId,
      acquiredAt: T0.toISOString(),
      leaseExpiresAt: new Date(T0.getTime() + 3_600_000).toISOString(),
    });
    const recover = (clock: { now(): Date }, instanceId = SELF) =>
      recoverOnStart({
        store,
        registry,
        runner: { unfinishedFromEarlierRuns: () => [], stopSurvivor: async () => false } as never,
        reconcileDeps: {
          store,
          clock,
          registry,
          runner: { start: async () => ({ buildId: 'x' }), describe: async () => [], stop: async () => {} },
          stacks: { stackStatus: async () => undefined },
          tokens: { succeed: async () => 'gone' as const, fail: async () => 'gone' as const },
          leaseSeconds: 600,
          sleep: async () => {},
        },
        ownsStore: false,
        ownership: new InstanceOwnership({ store, instanceId, dataDir: '/srv/self', clock }),
        budget: { budgetMs: 1000, pollMs: 1 },
      });
    return { store, other, deploymentId, recover };
  }

  const OTHER = '11111111-1111-4111-8111-111111111111';
  const SELF = '22222222-2222-4222-8222-222222222222';

  it("leaves a deployment alone while its server's lease runs, and reports it", async () => {
    const { store, deploymentId, recover } = await sharedTable();
    const report = await recover(at(59_000));
    expect(report.reconciled).toEqual([]);
    expect(report.left).toEqual([
      { deploymentId, reason: expect.stringContaining(`another server owns it (instance ${OTHER}`) },
    ]);
    expect(await store.getDeployment(deploymentId)).toMatchObject({ status: 'RUNNING' });
    expect(await store.getLock('hello-world', 'staging')).toMatchObject({ owner: deploymentId });
  });

  it('keeps it alone past the first lease while its server renews', async () => {
    const { store, other, deploymentId } = await sharedTable();
    await new InstanceOwnership({
      store,
      instanceId: OTHER,
      dataDir: '/srv/other',
      clock: at(50_000),
    }).renew();
    const self = new InstanceOwnership({ store, instanceId: SELF, dataDir: '/srv/self', clock: at(100_000) });
    expect(await self.ownerOf(deploymentId)).toMatchObject({ kind: 'live', instanceId: OTHER });
    expect(other.instanceId).toBe(OTHER);
  });

  it('settles it once the lease has run out, when no job of it can still be running', async () => {
    const { store, deploymentId, recover } = await sharedTable();
    const report = await recover(at(60_001));
    expect(report).toMatchObject({ reconciled: [deploymentId], left: [] });
    expect(await store.getDeployment(deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'ORCHESTRATOR_RESTARTED',
    });
    expect(await store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it('settles it at once after a clean shutdown of its server', async () => {
    const { store, other, deploymentId, recover } = await sharedTable();
    await other.stop();
    expect((await recover(at(1_000))).reconciled).toEqual([deploymentId]);
    expect(await store.getDeployment(deploymentId)).toMatchObject({ status: 'FAILED' });
  });

  it.each([
    [
      'a deploy job without a result',
      { phase: 'DEPLOYING', jobs: { deploy: { buildId: 'b-1', startedAt: T0.toISOString() } } },
    ],
    [
      'a deploy job still IN_PROGRESS',
      {
        phase: 'DEPLOYING',
        jobs: { deploy: { buildId: 'b-1', startedAt: T0.toISOString(), status: 'IN_PROGRESS' } },
      },
    ],
    ['a build about to be recorded', { phase: 'BUILDING' }],
  ] as const)(
    'leaves it alone after the lease ran out when it has %s (that job ran where this server cannot see)',
    async (_what, shape) => {
      const { store, deploymentId, recover } = await sharedTable(shape as never);
      const report = await recover(at(3_600_000));
      expect(report.reconciled).toEqual([]);
      expect(report.left).toEqual([{ deploymentId, reason: expect.stringContaining('restart that server') }]);
      expect(await store.getDeployment(deploymentId)).toMatchObject({ status: 'RUNNING' });
      expect(await store.getLock('hello-world', 'staging')).toMatchObject({ owner: deploymentId });
    },
  );

  it('settles it after the lease ran out when its jobs all reported', async () => {
    const { store, deploymentId, recover } = await sharedTable({
      phase: 'DEPLOYING',
      jobs: {
        build: { buildId: 'b-0', startedAt: T0.toISOString(), status: 'SUCCEEDED' },
        deploy: { buildId: 'b-1', startedAt: T0.toISOString(), status: 'FAILED' },
      },
    });
    expect((await recover(at(60_001))).reconciled).toEqual([deploymentId]);
    expect(await store.getDeployment(deploymentId)).toMatchObject({ status: 'FAILED' });
  });

  it("settles its own data directory's deployment at once, lease or not (a restart after kill -9)", async () => {
    const { store, deploymentId, recover } = await sharedTable({
      phase: 'DEPLOYING',
      jobs: { deploy: { buildId: 'b-1', startedAt: T0.toISOString() } },
    });
    expect((await recover(at(1_000), OTHER)).reconciled).toEqual([deploymentId]);
    expect(await store.getDeployment(deploymentId)).toMatchObject({ errorCode: 'ORCHESTRATOR_RESTARTED' });
  });

  it('leaves a local deployment with no recorded owner alone, and reports it', async () => {
    const { store } = await createTestStore();
    const deploymentId = '01JNUNOWNED000000000000001';
    await store.createDeployment(
      newDeployment({
        deploymentId,
        application: 'hello-world',
        environment: 'staging',
        requester: { type: 'local', user: 'alice' },
        trigger: 'local',
        requestedAt: T0.toISOString(),
      }),
    );
    const report = await recoverOnStart({
      store,
      registry,
      runner: { unfinishedFromEarlierRuns: () => [], stopSurvivor: async () => false } as never,
      reconcileDeps: {} as never,
      ownsStore: false,
      ownership: new InstanceOwnership({ store, instanceId: SELF, dataDir: '/srv/self', clock: at(0) }),
    });
    expect(report).toMatchObject({ reconciled: [], left: [{ deploymentId }] });
    expect(await store.getDeployment(deploymentId)).toMatchObject({ status: 'QUEUED' });
  });
});

describe('deployment ownership', () => {
  it('the first server to create a deployment owns it; a replay on another server does not take it', async () => {
    const { store } = await createTestStore();
    const clock = { now: () => new Date('2026-11-30T09:00:00.000Z') };
    const a = new InstanceOwnership({ store, instanceId: 'a', dataDir: '/a', clock });
    const b = new InstanceOwnership({ store, instanceId: 'b', dataDir: '/b', clock });
    const fresh = newDeployment({
      deploymentId: '01JNOWNED00000000000000001',
      application: 'hello-world',
      environment: 'staging',
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt: clock.now().toISOString(),
    });
    expect((await owningStore(store, a).createDeployment(fresh)).created).toBe(true);
    expect((await owningStore(store, b).createDeployment(fresh)).created).toBe(false);
    expect(await store.getDeploymentOwner(fresh.deploymentId)).toBe('a');
    // The record itself carries nothing of it.
    expect(await store.getDeployment(fresh.deploymentId)).not.toHaveProperty('instanceId');
  });

  it('claims nothing for a deployment created already terminal (a refusal)', async () => {
    const { store } = await createTestStore();
    const clock = { now: () => new Date('2026-11-30T09:00:00.000Z') };
    const a = new InstanceOwnership({ store, instanceId: 'a', dataDir: '/a', clock });
    const refused = {
      ...newDeployment({
        deploymentId: '01JNREFUSED000000000000001',
        application: 'hello-world',
        environment: 'staging',
        requester: { type: 'local', user: 'alice' },
        trigger: 'local',
        requestedAt: clock.now().toISOString(),
      }),
      status: 'REJECTED' as const,
    };
    await owningStore(store, a).createDeployment(refused);
    expect(await store.getDeploymentOwner(refused.deploymentId)).toBeUndefined();
  });

  it('renews its lease on its own while it runs, and ends it on stop', async () => {
    const { store } = await createTestStore();
    let now = new Date('2026-11-30T09:00:00.000Z').getTime();
    const clock = { now: () => new Date(now) };
    const a = new InstanceOwnership({ store, instanceId: 'a', dataDir: '/a', clock });
    await a.start(5);
    const first = await store.getInstanceLease('a');
    expect(first).toMatchObject({ leaseExpiresAt: '2026-11-30T09:01:00.000Z', dataDir: '/a' });
    now += 30_000;
    for (let i = 0; i < 400; i++) {
      if ((await store.getInstanceLease('a'))?.leaseExpiresAt === '2026-11-30T09:01:30.000Z') break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await store.getInstanceLease('a')).toMatchObject({ leaseExpiresAt: '2026-11-30T09:01:30.000Z' });
    await a.stop();
    expect(await store.getInstanceLease('a')).toMatchObject({
      leaseExpiresAt: '2026-11-30T09:00:30.000Z',
      stoppedAt: '2026-11-30T09:00:30.000Z',
    });
  });

  it('keeps one instance id per data directory', () => {
    const [dir, other] = [
      mkdtempSync(join(tmpdir(), 'crossdeploy-instance-')),
      mkdtempSync(join(tmpdir(), 'crossdeploy-instance-')),
    ];
    try {
      const id = instanceIdOf(dir);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(instanceIdOf(dir)).toBe(id);
      expect(instanceIdOf(other)).not.toBe(id);
    } finally {
      for (const d of [dir, other]) rmSync(d, { recursive: true, force: true });
    }
  });
});
