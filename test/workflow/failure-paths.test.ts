import { readFileSync } from 'node:fs';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { StopBuildCommand } from '@aws-sdk/client-codebuild';
import type { ScheduledEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createWorkflowHarness, type HarnessOptions } from '#test/support/workflow.ts';
import {
  type ExecutionStatusChange,
  createHandler as reconcileHandler,
} from '../../functions/reconcile/handler.ts';

/**
 * Failure paths on the real ASL (aws-local-stepfunctions), each ending with the same three facts: the
 * record says why, no job of the deployment runs, and its environment is free.
 */

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;

const executionEvent = JSON.parse(
  readFileSync(new URL('../events/stepfunctions/execution-status-change.json', import.meta.url), 'utf8'),
) as ExecutionStatusChange;
const scheduledEvent = JSON.parse(
  readFileSync(new URL('../events/eventbridge/scheduled-event.json', import.meta.url), 'utf8'),
) as ScheduledEvent;

beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((() => true) as never);
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function types(h: Harness, id: string) {
  return (await h.store.listEvents(id)).map((e) => e.type);
}

async function waitUntil(check: () => Promise<boolean>) {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** The Fail state's Error and Cause, as the engine reports them (ExecutionError wraps them). */
function failure(outcome: Awaited<ReturnType<Harness['start']>['settled']>) {
  if (outcome.ok) return undefined;
  const cause = outcome.error.cause as Error | undefined;
  return { name: cause?.name, message: cause?.message };
}

/** The `$.error` a Catch handed to a state, as that state received it. */
function caughtBy(run: ReturnType<Harness['start']>, state: string) {
  const entered = run.events.find((e) => e.type === 'StateEntered' && e.state?.name === state) as
    | { state: { input: { error?: unknown } } }
    | undefined;
  return entered?.state.input.error;
}

function reconcilerOf(h: Harness) {
  return reconcileHandler(() => ({
    store: h.store,
    clock: h.clock,
    tokens: h.tokens,
    ...h.settleDeps,
    executions: h.executions,
    sleep: async () => {},
  }));
}

/** What EventBridge delivers when the execution ends without its own Catch path (the template's rule). */
function statusChange(deploymentId: string, status: string): ExecutionStatusChange {
  const event = structuredClone(executionEvent);
  event.detail.name = deploymentId;
  event.detail.status = status;
  return event;
}

/** Both job waits bounded to one second (the template substitutes queued + job timeout + 10 minutes). */
const SHORT_WAITS: HarnessOptions = { substitutions: { BuildWaitSeconds: '1', DeployWaitSeconds: '1' } };

describe('a token wait that times out', () => {
  it('Build: the job ended but its event was lost — FAILED JOB_TIMED_OUT, nothing runs, the lock never taken', async () => {
    const h = await createWorkflowHarness(SHORT_WAITS);
    h.codebuild.loseEvents = true;
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    const outcome = await run.settled;
    expect(failure(outcome)).toEqual({
      name: 'DeploymentFailed',
      message: expect.stringMatching(/^JOB_TIMED_OUT: /),
    });
    expect(caughtBy(run, 'Record Failure')).toMatchObject({ Error: 'States.Timeout' });
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'JOB_TIMED_OUT',
      settledAt: expect.any(String),
    });
    expect(h.codebuild.running()).toEqual([]);
    expect(await types(h, run.deploymentId)).not.toContain('LOCK_ACQUIRED');
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
    expect(await h.store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
  });

  it('Deploy: the job never reports — FAILED JOB_TIMED_OUT, the job stopped, the stack checked, the lock released', async () => {
    const h = await createWorkflowHarness(SHORT_WAITS);
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    const outcome = await run.settled;
    expect(failure(outcome)).toEqual({
      name: 'DeploymentFailed',
      message: expect.stringMatching(/^JOB_TIMED_OUT: /),
    });
    const deploy = [...h.codebuild.builds.values()].find((b) => b.projectName === 'crossdeploy-deploy')!;
    expect(caughtBy(run, 'Record Failure')).toMatchObject({ Error: 'States.Timeout' });
    expect(h.codebuild.mock).toReceiveCommandWith(StopBuildCommand, { id: deploy.id });
    expect(deploy).toMatchObject({ buildComplete: true, buildStatus: 'STOPPED' });
    expect(h.cfn).toReceiveCommand(DescribeStacksCommand);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'JOB_TIMED_OUT',
      settledAt: expect.any(String),
    });
    expect((await types(h, run.deploymentId)).slice(-3)).toEqual(['SETTLED', 'LOCK_RELEASED', 'FAILED']);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
    expect(h.terminalWhileLocked).toEqual([]);
  });
});
