import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalScheduler, type Schedule, type Timer } from '#local/scheduler.ts';
import type { RunningExecution } from '#local/workflow-engine.ts';
import { LocalWorkflowStarter } from '#local/workflow-starter.ts';
import { parseRegistry, type Registry } from '#shared/registry/registry.ts';
import { BUILD_OK, createWorkflowHarness } from '#test/support/workflow.ts';

/**
 * Local mode's scheduler on the real statemachine/deploy.asl.json: ticks go through the same workflow
 * starter local mode uses, and the workflow's first step claims each tick once.
 */

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;

const PROMOTION: Schedule = {
  name: 'promote-staging-to-prod',
  from: 'staging',
  to: 'prod',
  schedule: 'cron(0 10 ? * MON-FRI *)',
  timezone: 'Europe/Berlin',
  enabled: true,
};

/** The test registry with a weekday 10:00 Berlin promotion of hello-world from staging to prod. */
function withSchedule(registry: Registry): Registry {
  const raw = structuredClone(registry);
  raw.applications['hello-world']!.schedules = [PROMOTION];
  return parseRegistry(raw);
}

/** Time that moves only when the test says so; due timers fire on the way. */
class FakeTime implements Timer {
  at: number;
  private readonly pending = new Map<number, { due: number; callback: () => void }>();
  private id = 0;
  constructor(start: string) {
    this.at = Date.parse(start);
  }
  now = () => new Date(this.at);
  set(callback: () => void, ms: number) {
    this.pending.set(++this.id, { due: this.at + ms, callback });
    return this.id;
  }
  clear(handle: unknown) {
    this.pending.delete(handle as number);
  }
  advanceTo(time: string) {
    const target = Date.parse(time);
    for (;;) {
      const [id, next] = [...this.pending.entries()].sort(([, a], [, b]) => a.due - b.due)[0] ?? [];
      if (id === undefined || !next || next.due > target) break;
      this.pending.delete(id);
      this.at = Math.max(this.at, next.due);
      next.callback();
    }
    this.at = target;
  }
}

/** The scheduler wired as local/server.ts wires it, and the executions it caused. */
function scheduled(h: Harness, time: FakeTime) {
  const workflow = new LocalWorkflowStarter({
    engine: h.engine,
    store: h.store,
    reconcileDeps: {
      store: h.store,
      clock: h.clock,
      tokens: h.tokens,
      ...h.settleDeps,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    },
  });
  const start = vi.spyOn(h.engine, 'start');
  const scheduler = new LocalScheduler({
    registry: withSchedule(h.registry),
    workflow,
    clock: time,
    timer: time,
  });
  /** Every execution started so far, by name, with how it ended. */
  async function executions() {
    await scheduler.idle();
    return Promise.all(
      start.mock.results.map(async (result, i) => {
        const execution = result.value as RunningExecution;
        const output = (await execution.result) as {
          validation: { value: { outcome: string; code?: string } };
        };
        return { name: String(start.mock.calls[i]?.[0]), validation: output.validation.value };
      }),
    );
  }
  return { scheduler, executions };
}

async function deployStaging(h: Harness) {
  h.codebuild.scripts.build = BUILD_OK;
  const run = h.start({ application: 'hello-world', environment: 'staging', ref: 'main' });
  expect((await run.settled).ok).toBe(true);
  expect((await h.store.getDeployment(run.deploymentId))?.status).toBe('SUCCEEDED');
  h.codebuild.starts.length = 0;
}

beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((() => true) as never);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('scheduled promotion ticks (local scheduler, real workflow)', () => {
  it('the same tick started twice ends once as a deployment and once as DUPLICATE_TICK with nothing recorded', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h);
    const { scheduler, executions } = scheduled(h, new FakeTime('2026-11-30T08:00:00Z'));
    const tick = new Date('2026-11-30T09:00:00Z');

    // EventBridge Scheduler delivers at least once, each delivery under a new execution name.
    const ids = await Promise.all([
      scheduler.fire('hello-world', PROMOTION, tick),
      scheduler.fire('hello-world', PROMOTION, tick),
    ]);
    expect(new Set(ids).size).toBe(2);
    const runs = await executions();

    const outcomes = runs.map((run) => run.validation.outcome).sort();
    expect(outcomes).toEqual(['ENDED', 'VALIDATED']);
    const duplicate = runs.find((run) => run.validation.outcome === 'ENDED')!;
    const deployed = runs.find((run) => run.validation.outcome === 'VALIDATED')!;
    expect(duplicate.validation.code).toBe('DUPLICATE_TICK');
    expect(await h.store.getDeployment(duplicate.name)).toBeUndefined();
    expect(await h.store.listEvents(duplicate.name)).toEqual([]);

    expect(await h.store.getDeployment(deployed.name)).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'promotion',
      trigger: 'schedule',
      requester: { type: 'schedule', scheduleName: 'promote-staging-to-prod' },
      reason: 'scheduled promotion promote-staging-to-prod',
      environment: 'prod',
      source: { environment: 'staging' },
    });
    expect(h.codebuild.starts.map((s) => s.projectName)).toEqual(['crossdeploy-deploy']);
  });

  it('deploys on its first tick, and records the next tick as SKIPPED when staging has nothing new', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h);
    // Monday 2026-11-30, 09:59 in Berlin (UTC+1).
    const time = new FakeTime('2026-11-30T08:59:00Z');
    const { scheduler, executions } = scheduled(h, time);
    scheduler.start();

    time.advanceTo('2026-11-30T09:00:00Z');
    const [first] = await executions();
    expect(await h.store.getDeployment(first!.name)).toMatchObject({ status: 'SUCCEEDED', release: 1 });

    time.advanceTo('2026-12-01T09:00:00Z');
    const [, second] = await executions();
    const skipped = await h.store.getDeployment(second!.name);
    expect(skipped).toMatchObject({ status: 'SKIPPED', errorCode: 'ALREADY_DEPLOYED', trigger: 'schedule' });
    expect(skipped?.errorMessage).toContain(`already runs this build output (deployment ${first!.name})`);
    expect(h.codebuild.starts.map((s) => s.projectName)).toEqual(['crossdeploy-deploy']);
    scheduler.stop();
  });
});
