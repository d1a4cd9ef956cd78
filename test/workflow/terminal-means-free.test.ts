import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ScheduledEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { acceptRequest, type Intake } from '#shared/deployments/intake.ts';
import { validateRequest } from '#shared/deployments/validation.ts';
import { isTerminal } from '#shared/types.ts';
import { createWorkflowHarness } from '#test/support/workflow.ts';
import {
  type ExecutionStatusChange,
  createHandler as reconcileHandler,
} from '../../functions/reconcile/handler.ts';

/**
 * A client that reads a terminal status may deploy again at once: the environment must already be free.
 * These tests act as that client, on the real ASL: they poll the record as fast as they can and, the instant
 * it reads terminal, look at the lock the way the API's busy check does and deploy again.
 */

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;

beforeEach(() => {
  // The handlers log every step; this file repeats whole deployments many times.
  vi.spyOn(process.stdout, 'write').mockImplementation((() => true) as never);
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Polls like an impatient client: no pause between reads, so it sees the first terminal write. */
async function firstTerminalRead(h: Harness, deploymentId: string) {
  for (;;) {
    const deployment = await h.store.getDeployment(deploymentId);
    if (deployment && isTerminal(deployment.status)) return deployment;
  }
}

const requester = { type: 'local' as const, user: 'alice' };

/** A new request for hello-world/sandbox (a `reject` environment) through the real intake. */
async function deployAgain(h: Harness) {
  let run: ReturnType<Harness['start']> | undefined;
  const workflow = {
    start: async (deploymentId: string, input: unknown) => {
      run = h.start(input as Record<string, unknown>, deploymentId);
    },
  };
  const valid = validateRequest(
    { application: 'hello-world', environment: 'sandbox' },
    requester,
    h.registry,
  );
  const intake = await acceptRequest(`again-${randomUUID()}`, valid, requester, {
    store: h.store,
    workflow,
    clock: h.clock,
    newId: randomUUID,
  });
  return { ...intake, run };
}

const describeIntake = (intake: Intake) =>
  'error' in intake ? `${intake.error.code}: ${intake.error.message}` : intake.outcome;

const ROUNDS = 15;

async function types(h: Harness, id: string) {
  return (await h.store.listEvents(id)).map((e) => e.type);
}

async function waitUntil(check: () => Promise<boolean>) {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 5));
}

const executionEvent = JSON.parse(
  readFileSync(new URL('../events/stepfunctions/execution-status-change.json', import.meta.url), 'utf8'),
) as ExecutionStatusChange;
const scheduledEvent = JSON.parse(
  readFileSync(new URL('../events/eventbridge/scheduled-event.json', import.meta.url), 'utf8'),
) as ScheduledEvent;

describe('a deployment that reads terminal has already freed its environment', () => {
  it(`success and failure, ${ROUNDS} rounds each: the lock is free the instant the status is terminal, and deploying again then is not refused`, async () => {
    const h = await createWorkflowHarness();
    // A build output to redeploy without a build, so the next request reaches Acquire Lock quickly.
    const built = h.start({ application: 'hello-world', environment: 'sandbox' });
    await built.settled;
    expect((await h.store.getDeployment(built.deploymentId))?.status).toBe('SUCCEEDED');

    const heldAtTerminal: string[] = [];
    const refused: string[] = [];
    for (let round = 0; round < ROUNDS * 2; round++) {
      // Alternate the success path (Record Result) and the failure path (Record Failure after a settle).
      h.codebuild.scripts.deploy = { status: round % 2 === 0 ? 'SUCCEEDED' : 'FAILED' };
      const run = h.start({
        application: 'hello-world',
        environment: 'sandbox',
        buildOutputFrom: built.deploymentId,
      });
      const seen = await firstTerminalRead(h, run.deploymentId);
      // What the API's busy check reads for a `reject` environment, at that instant.
      const lock = await h.store.getLock('hello-world', 'sandbox');
      if (lock) heldAtTerminal.push(`${seen.status} in round ${round}: still held by ${lock.owner}`);
      // Deploying again at that instant, through the intake the API and chat use, is not refused as busy.
      h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
      const again = await deployAgain(h);
      await run.settled;
      if (again.outcome !== 'accepted')
        refused.push(`round ${round}: ${again.outcome} ${describeIntake(again)}`);
      else await again.run?.settled;
    }
    expect({ heldAtTerminal, refused }).toEqual({ heldAtTerminal: [], refused: [] });
    expect(h.terminalWhileLocked).toEqual([]);
    expect(await h.store.getLock('hello-world', 'sandbox')).toBeUndefined();
  }, 120_000);

  it('in queued mode hands the lock to the next waiter, and releases it exactly once', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const first = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => (await types(h, first.deploymentId)).includes('DEPLOY_STARTED'));
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const second = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(async () => (await types(h, second.deploymentId)).includes('LOCK_WAITING'));

    const held = h.codebuild.running()[0]!;
    void h.codebuild.finish(held.id!, { status: 'SUCCEEDED' });
    await firstTerminalRead(h, first.deploymentId);
    const lock = await h.store.getLock('hello-world', 'staging');
    // Free, or already the waiter's: never still the finished deployment's.
    expect(lock === undefined || lock.owner === second.deploymentId).toBe(true);

    await Promise.all([first.settled, second.settled]);
    expect((await h.store.getDeployment(second.deploymentId))?.status).toBe('SUCCEEDED');
    for (const run of [first, second]) {
      expect((await types(h, run.deploymentId)).filter((t) => t === 'LOCK_RELEASED')).toHaveLength(1);
      const released = run.events.find((e) => e.type === 'StateExited' && e.state?.name === 'Release Lock') as
        | { state: { output: { released: { value: unknown } } } }
        | undefined;
      // The workflow's own Release Lock step found nothing left to release.
      expect(released?.state.output.released.value).toEqual({ released: false });
    }
    expect(h.terminalWhileLocked).toEqual([]);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it.each([
    ['the status-change event of an aborted execution', 'event'],
    ['the scheduled sweep', 'sweep'],
  ] as const)(
    'the reconciler (%s) frees the environment before the deployment reads terminal',
    async (_what, how) => {
      const h = await createWorkflowHarness();
      h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
      const run = h.start({ application: 'hello-world', environment: 'staging' });
      await waitUntil(async () => (await types(h, run.deploymentId)).includes('DEPLOY_STARTED'));
      run.abort();
      await run.settled;

      const reconcile = reconcileHandler(() => ({
        store: h.store,
        clock: h.clock,
        tokens: h.tokens,
        ...h.settleDeps,
        executions: h.executions,
        sleep: async () => {},
      }));
      const event = structuredClone(how === 'event' ? executionEvent : scheduledEvent);
      if (how === 'event') {
        (event as ExecutionStatusChange).detail.name = run.deploymentId;
        (event as ExecutionStatusChange).detail.status = 'ABORTED';
      }
      const reconciled = reconcile(event, { getRemainingTimeInMillis: () => 870_000 });
      const seen = await firstTerminalRead(h, run.deploymentId);
      expect(seen.status).toBe('CANCELLED');
      expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
      await reconciled;
      expect(h.terminalWhileLocked).toEqual([]);
      expect((await types(h, run.deploymentId)).slice(-3)).toEqual(['SETTLED', 'LOCK_RELEASED', 'CANCELLED']);
    },
  );
});
