import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createWorkflowHarness } from '#test/support/workflow.ts';
import {
  type ExecutionStatusChange,
  createHandler as reconcileHandler,
} from '../../functions/reconcile/handler.ts';
import type { LambdaFunction } from '../../local/workflow-engine.ts';

/**
 * Lock hand-over on the real ASL (aws-local-stepfunctions) and the real store (dynalite): a waiting
 * deployment parks at "Wait For Lock" with its task token on its queue ticket, and the release hands it
 * the lock. The races are forced by wrapping the real Acquire Lock function: the park of a chosen
 * deployment is held until the test has let the release run.
 */

const executionEvent = JSON.parse(
  readFileSync(new URL('../events/stepfunctions/execution-status-change.json', import.meta.url), 'utf8'),
) as ExecutionStatusChange;

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;
type Payload = { deploymentId: string; taskToken?: string };

async function types(h: Harness, id: string) {
  return (await h.store.listEvents(id)).map((e) => e.type);
}

async function waitUntil(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 1000; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Counts Acquire Lock invocations (without a token) and parks (with one) per deployment; hooks a park. */
function acquireSpy() {
  const acquires = new Map<string, number>();
  const parks = new Map<string, number>();
  let beforePark: (deploymentId: string) => Promise<void> = async () => {};
  const wrap = (functions: Record<string, LambdaFunction>) => {
    const real = functions.AcquireLockFunctionArn!;
    return {
      ...functions,
      AcquireLockFunctionArn: async (payload: unknown) => {
        const { deploymentId, taskToken } = payload as Payload;
        const counts = taskToken ? parks : acquires;
        counts.set(deploymentId, (counts.get(deploymentId) ?? 0) + 1);
        if (taskToken) await beforePark(deploymentId);
        return real(payload);
      },
    };
  };
  return {
    wrap,
    acquires: (id: string) => acquires.get(id) ?? 0,
    parks: (id: string) => parks.get(id) ?? 0,
    onPark: (hook: (deploymentId: string) => Promise<void>) => {
      beforePark = hook;
    },
  };
}

/** Spans from LOCK_ACQUIRED to LOCK_RELEASED must not overlap, in the order the deployments ran. */
async function expectNoOverlap(h: Harness, ids: string[]) {
  const spans = await Promise.all(
    ids.map(async (id) => {
      const events = await h.store.listEvents(id);
      const at = (type: string) => events.find((e) => e.type === type)?.at ?? '';
      return [at('LOCK_ACQUIRED'), at('LOCK_RELEASED')] as const;
    }),
  );
  spans.sort((a, b) => a[0].localeCompare(b[0]));
  for (let i = 1; i < spans.length; i++) expect(spans[i]![0] >= spans[i - 1]![1]).toBe(true);
}

let stdout: string[] = [];
beforeEach(() => {
  stdout = [];
  const capture = (chunk: unknown) => {
    stdout.push(String(chunk));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture as never);
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => capture(args.join(' ')));
  vi.spyOn(console, 'info').mockImplementation((...args: unknown[]) => capture(args.join(' ')));
  vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => capture(args.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => capture(args.join(' ')));
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('lock hand-over by task token (deploy.asl.json, dynalite)', () => {
  it('parks a waiter instead of polling: two Acquire Lock calls and one park, however long the holder deploys', async () => {
    const spy = acquireSpy();
    const h = await createWorkflowHarness({ wrapFunctions: spy.wrap });
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const holder = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => (await types(h, holder.deploymentId)).includes('DEPLOY_STARTED'), 'holder');
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const waiter = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => spy.parks(waiter.deploymentId) === 1, 'the waiter to park');
    // The old protocol polled every Wait (20 ms here): give it room for many rounds.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(spy.acquires(waiter.deploymentId)).toBe(1);
    expect((await h.store.listTickets('hello-world', 'staging', { limit: 5 }))[0]?.taskToken).toMatch(
      /^local-token-/,
    );

    await h.codebuild.finish(h.codebuild.running()[0]!.id!, { status: 'SUCCEEDED' });
    const [a, b] = await Promise.all([holder.settled, waiter.settled]);
    expect([a.ok, b.ok]).toEqual([true, true]);
    expect(spy.acquires(waiter.deploymentId)).toBe(2);
    expect(spy.parks(waiter.deploymentId)).toBe(1);
    // The wait added exactly Wait For Lock, Acquire Lock and Lock Acquired? once each.
    const entered = (run: typeof holder) =>
      run.events.filter((e) => e.type === 'StateEntered').map((e) => e.state?.name);
    expect(entered(waiter).length - entered(holder).length).toBe(3);
    await expectNoOverlap(h, [holder.deploymentId, waiter.deploymentId]);
    expect(h.terminalWhileLocked).toEqual([]);
  });

  it('does not miss a release that happens between the failed put and the park', async () => {
    const spy = acquireSpy();
    const h = await createWorkflowHarness({ wrapFunctions: spy.wrap });
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const holder = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => (await types(h, holder.deploymentId)).includes('DEPLOY_STARTED'), 'holder');
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const waiter = h.start({ application: 'hello-world', environment: 'staging' });
    // Acquire Lock has answered WAITING; before its park stores the token, the holder ends completely
    // (its Record Result releases and tries to hand over, finding nobody parked).
    spy.onPark(async (id) => {
      if (id !== waiter.deploymentId) return;
      await h.codebuild.finish(h.codebuild.running()[0]!.id!, { status: 'SUCCEEDED' });
      await holder.settled;
    });
    const outcome = await waiter.settled;
    expect(outcome.ok).toBe(true);
    expect((await h.store.getDeployment(holder.deploymentId))?.status).toBe('SUCCEEDED');
    expect((await h.store.getDeployment(waiter.deploymentId))?.status).toBe('SUCCEEDED');
    expect(spy.acquires(waiter.deploymentId)).toBe(2);
    await expectNoOverlap(h, [holder.deploymentId, waiter.deploymentId]);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it('skips a dead waiter: its hand-over finds no task, the reconciler ends it, and the lock goes to the next', async () => {
    const spy = acquireSpy();
    const h = await createWorkflowHarness({ wrapFunctions: spy.wrap });
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const holder = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => (await types(h, holder.deploymentId)).includes('DEPLOY_STARTED'), 'holder');
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const dying = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => spy.parks(dying.deploymentId) === 1, 'the second to park');
    const third = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => spy.parks(third.deploymentId) === 1, 'the third to park');

    // Its execution dies while parked; nothing has reconciled it yet.
    dying.abort();
    await dying.settled;
    h.tokens.discard(
      (await h.store.listTickets('hello-world', 'staging', { limit: 5 })).find(
        (t) => t.deploymentId === dying.deploymentId,
      )!.taskToken!,
    );
    await h.codebuild.finish(h.codebuild.running()[0]!.id!, { status: 'SUCCEEDED' });
    await holder.settled;
    // The hand-over went to the head of the queue (the dead one): its token is gone, the lock stays with it.
    expect((await h.store.getLock('hello-world', 'staging'))?.owner).toBe(dying.deploymentId);

    const reconcile = reconcileHandler(() => ({
      store: h.store,
      clock: h.clock,
      tokens: h.tokens,
      ...h.settleDeps,
      executions: h.executions,
      sleep: async () => {},
    }));
    const event = structuredClone(executionEvent);
    event.detail.name = dying.deploymentId;
    event.detail.status = 'ABORTED';
    await reconcile(event);

    expect((await third.settled).ok).toBe(true);
    expect((await h.store.getDeployment(dying.deploymentId))?.status).toBe('CANCELLED');
    expect((await h.store.getDeployment(third.deploymentId))?.status).toBe('SUCCEEDED');
    expect(spy.acquires(third.deploymentId)).toBe(2);
    await expectNoOverlap(h, [holder.deploymentId, third.deploymentId]);
  });

  it('serves a burst in request order, one at a time, each waiter parking once', async () => {
    const spy = acquireSpy();
    const h = await createWorkflowHarness({ wrapFunctions: spy.wrap });
    const runs = [];
    for (let i = 0; i < 6; i++) {
      runs.push(h.start({ application: 'hello-world', environment: 'staging' }));
      // Distinct request times: the queue orders by them.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const outcomes = await Promise.all(runs.map((r) => r.settled));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const deployStarts = h.codebuild.starts
      .filter((s) => s.projectName === 'crossdeploy-deploy')
      .map((s) => s.environmentVariablesOverride?.find((v) => v.name === 'DEPLOYMENT_ID')?.value);
    expect(deployStarts).toEqual(runs.map((r) => r.deploymentId));
    for (const run of runs) expect(spy.parks(run.deploymentId)).toBeLessThanOrEqual(1);
    await expectNoOverlap(
      h,
      runs.map((r) => r.deploymentId),
    );
    expect(await h.store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
  });
});
