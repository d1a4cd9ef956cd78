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
import { LocalWorkflowStarter } from '../../local/workflow-starter.ts';

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

/** An execution that dies on the real ASL with States.Runtime (a Choice path that does not resolve) while it holds the lock. */
const RUNTIME_ERROR: HarnessOptions = {
  wrapFunctions: (functions) => ({
    ...functions,
    AcquireLockFunctionArn: async (payload) => {
      const result = (await functions.AcquireLockFunctionArn!(payload)) as Record<string, unknown>;
      const { outcome: _dropped, ...rest } = result;
      return rest;
    },
  }),
};

describe('the reconciler ends what the workflow could not', () => {
  it.each(['event', 'sweep'] as const)(
    'an execution that TIMED_OUT mid-deploy (%s): FAILED EXECUTION_TIMED_OUT, the job stopped, the lock released',
    async (how) => {
      const h = await createWorkflowHarness({ executionTimeoutSeconds: 3 });
      h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
      const run = h.start({ application: 'hello-world', environment: 'staging' });
      const outcome = await run.settled;
      expect(outcome.ok).toBe(false);
      expect(await h.executions.status(run.deploymentId)).toBe('TIMED_OUT');
      // The timeout found it deploying: a job runs and the lock is held until the reconciler acts.
      expect(await types(h, run.deploymentId)).toContain('DEPLOY_STARTED');
      expect(h.codebuild.running()).toHaveLength(1);
      expect((await h.store.getLock('hello-world', 'staging'))?.owner).toBe(run.deploymentId);

      const reconcile = reconcilerOf(h);
      if (how === 'event') await reconcile(statusChange(run.deploymentId, 'TIMED_OUT'));
      else
        expect(await reconcile(scheduledEvent, { getRemainingTimeInMillis: () => 870_000 })).toMatchObject({
          reconciled: [run.deploymentId],
        });

      expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
        status: 'FAILED',
        errorCode: 'EXECUTION_TIMED_OUT',
        settledAt: expect.any(String),
      });
      expect(h.codebuild.running()).toEqual([]);
      expect((await types(h, run.deploymentId)).slice(-3)).toEqual(['SETTLED', 'LOCK_RELEASED', 'FAILED']);
      expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
    },
  );

  it.each(['event', 'sweep'] as const)(
    'an execution that FAILED with States.Runtime while holding the lock (%s): FAILED EXECUTION_FAILED, the lock released',
    async (how) => {
      const h = await createWorkflowHarness(RUNTIME_ERROR);
      const run = h.start({ application: 'hello-world', environment: 'staging' });
      const outcome = await run.settled;
      expect(failure(outcome)?.name).toBe('States.Runtime');
      expect(await h.executions.status(run.deploymentId)).toBe('FAILED');
      expect((await h.store.getLock('hello-world', 'staging'))?.owner).toBe(run.deploymentId);

      const reconcile = reconcilerOf(h);
      if (how === 'event') await reconcile(statusChange(run.deploymentId, 'FAILED'));
      else
        expect(await reconcile(scheduledEvent, { getRemainingTimeInMillis: () => 870_000 })).toMatchObject({
          reconciled: [run.deploymentId],
        });

      expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
        status: 'FAILED',
        errorCode: 'EXECUTION_FAILED',
        errorMessage: 'the workflow execution ended FAILED',
        settledAt: expect.any(String),
      });
      expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
      expect(h.terminalWhileLocked).toEqual([]);
    },
  );
});

describe('a job that cannot be started', () => {
  it.each([
    ['build', 'ResourceNotFoundException'],
    ['deploy', 'AccessDeniedException'],
  ] as const)(
    'StartBuild of the %s job refused for good (%s): FAILED JOB_START_FAILED, not retried, the lock released',
    async (job, errorName) => {
      const h = await createWorkflowHarness();
      h.codebuild.failStarts[job] = errorName;
      const run = h.start({ application: 'hello-world', environment: 'staging' });
      const outcome = await run.settled;
      expect(failure(outcome)).toEqual({
        name: 'DeploymentFailed',
        message: expect.stringMatching(/^JOB_START_FAILED: /),
      });
      const deployment = await h.store.getDeployment(run.deploymentId);
      expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'JOB_START_FAILED' });
      expect(deployment?.errorMessage).toContain(errorName);
      // Not a transient error: the Task is not retried.
      expect(run.events.filter((e) => e.type === 'StateRetried')).toEqual([]);
      expect(h.codebuild.builds.size).toBe(job === 'build' ? 0 : 1);
      expect(h.codebuild.running()).toEqual([]);
      expect(await types(h, run.deploymentId)).toContain(job === 'build' ? 'VALIDATED' : 'LOCK_ACQUIRED');
      expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
      expect(await h.store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
    },
  );
});

describe('the assumed session', () => {
  it('in the right account but for another role is refused before any deploy job, and the lock released', async () => {
    const h = await createWorkflowHarness({ callerRole: 'SomeOtherRole' });
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'WRONG_TARGET_ACCOUNT' });
    expect(deployment?.errorMessage).toContain('SomeOtherRole');
    expect(deployment?.errorMessage).toContain('crossdeploy-deploy');
    expect(await types(h, run.deploymentId)).not.toContain('ROLE_ASSUMED');
    expect(h.codebuild.starts.map((s) => s.projectName)).toEqual(['crossdeploy-build']);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });
});

describe('a session that is not an assumed role', () => {
  it('is refused before any deploy job when its ARN names no role (an IAM user of the right account)', async () => {
    const h = await createWorkflowHarness({ callerArn: (account) => `arn:aws:iam::${account}:user/someone` });
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'WRONG_TARGET_ACCOUNT' });
    expect(deployment?.errorMessage).toContain('user/someone');
    expect(await types(h, run.deploymentId)).not.toContain('ROLE_ASSUMED');
    expect(h.codebuild.starts.map((s) => s.projectName)).toEqual(['crossdeploy-build']);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });
});

describe('Record Failure itself failing', () => {
  /** Record Failure (the FAILED outcome of the record-result function) fails every time it runs. */
  const brokenRecordFailure: HarnessOptions = {
    ...SHORT_WAITS,
    wrapFunctions: (functions) => ({
      ...functions,
      RecordResultFunctionArn: async (payload) => {
        if ((payload as { outcome?: string }).outcome === 'FAILED') {
          throw Object.assign(new Error('the record-result function crashed'), { name: 'Error' });
        }
        return functions.RecordResultFunctionArn!(payload);
      },
    }),
  };

  it('ends the execution in Recording Failed, and the reconciler settles it (job stopped), releases the lock and records FAILED', async () => {
    const h = await createWorkflowHarness(brokenRecordFailure);
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    const outcome = await run.settled;
    expect(failure(outcome)).toEqual({
      name: 'RecordFailureFailed',
      message: expect.stringContaining('the record-result function crashed'),
    });
    // The Fail state's Error: the Catch on Record Failure handed over to the reconciler.
    expect(caughtBy(run, 'Record Failure')).toMatchObject({ Error: 'States.Timeout' });
    // Nothing was released on the way out: the deploy job may still run.
    expect(h.codebuild.running()).toHaveLength(1);
    expect((await h.store.getLock('hello-world', 'staging'))?.owner).toBe(run.deploymentId);

    expect(await h.executions.status(run.deploymentId)).toBe('FAILED');
    await reconcilerOf(h)(statusChange(run.deploymentId, 'FAILED'));
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'EXECUTION_FAILED',
      settledAt: expect.any(String),
    });
    expect(h.codebuild.running()).toEqual([]);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
    expect(h.terminalWhileLocked).toEqual([]);
  });

  it('in local mode the starter reconciles it by itself: settled, unlocked, FAILED', async () => {
    const h = await createWorkflowHarness(brokenRecordFailure);
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const starter = new LocalWorkflowStarter({
      engine: h.engine,
      store: h.store,
      reconcileDeps: {
        store: h.store,
        clock: h.clock,
        tokens: h.tokens,
        ...h.settleDeps,
        sleep: async () => {},
      },
    });
    const deploymentId = 'dep-local-record-failure';
    await starter.start(deploymentId, {
      application: 'hello-world',
      environment: 'staging',
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt: h.clock.now().toISOString(),
    });
    await waitUntil(async () => (await h.store.getDeployment(deploymentId))?.status === 'FAILED');
    await starter.idle();
    expect(await h.store.getDeployment(deploymentId)).toMatchObject({
      errorCode: 'EXECUTION_FAILED',
      settledAt: expect.any(String),
    });
    expect(h.codebuild.running()).toEqual([]);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });
});
