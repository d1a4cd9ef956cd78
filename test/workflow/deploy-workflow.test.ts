import { readFileSync } from 'node:fs';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { StartBuildCommand } from '@aws-sdk/client-codebuild';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { showLogs } from '#test/support/logs.ts';
import { BUILD_OK, createWorkflowHarness, SECRET_ACCESS_KEY, SESSION_TOKEN } from '#test/support/workflow.ts';
import { createHandler as acquireLockHandler } from '../../functions/acquire-lock/handler.ts';
import {
  type ExecutionStatusChange,
  createHandler as reconcileHandler,
} from '../../functions/reconcile/handler.ts';
import { createHandler as startJobHandler } from '../../functions/start-job/handler.ts';
import { createHandler as validateRequestHandler } from '../../functions/validate-request/handler.ts';

const executionEvent = JSON.parse(
  readFileSync(new URL('../events/stepfunctions/execution-status-change.json', import.meta.url), 'utf8'),
) as ExecutionStatusChange;

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;

async function types(h: Harness, id: string) {
  return (await h.store.listEvents(id)).map((e) => e.type);
}

async function waitUntil(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The credential check below reads the log lines the handlers print.
showLogs();

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

describe('deploy workflow (statemachine/deploy.asl.json on aws-local-stepfunctions)', () => {
  it('deploys: every step recorded in order, the lock released, and credentials nowhere', async () => {
    const h = await createWorkflowHarness();
    const run = h.start({
      application: 'hello-world',
      environment: 'staging',
      ref: 'main',
      reason: 'ship it',
    });
    const outcome = await run.settled;
    expect(outcome.ok).toBe(true);

    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({
      status: 'SUCCEEDED',
      ref: 'main',
      resolvedCommit: 'a'.repeat(40),
      targetAccount: '111111111111',
      buildOutput: { versionId: 'v-1', sha256: 'b'.repeat(64) },
      release: 1,
    });
    expect(deployment?.settledAt).toBeDefined();
    expect(await types(h, run.deploymentId)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'BUILD_STARTED',
      'BUILD_FINISHED',
      'LOCK_ACQUIRED',
      'ROLE_ASSUMED',
      'DEPLOY_STARTED',
      'DEPLOY_FINISHED',
      'LOCK_RELEASED',
      'SUCCEEDED',
    ]);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();

    expect(h.codebuild.mock).toReceiveCommandTimes(StartBuildCommand, 2);
    expect(h.codebuild.mock).toReceiveCommandWith(StartBuildCommand, {
      projectName: 'crossdeploy-build',
      idempotencyToken: expect.any(String),
      sourceVersion: 'main',
    });
    expect(h.sts).toReceiveCommandWith(AssumeRoleCommand, {
      RoleArn: 'arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deploy',
      RoleSessionName: `crossdeploy-${run.deploymentId}`.slice(0, 64),
      SourceIdentity: expect.stringMatching(/^local-alice-[0-9a-f]{8}$/),
      DurationSeconds: 900,
    });

    // No credential in workflow state, in any stored item, in any job's environment, or in the logs.
    const { Items = [] } = await h.doc.send(new ScanCommand({ TableName: h.tableName }));
    const haystacks = {
      state: JSON.stringify(run.events),
      output: JSON.stringify(outcome),
      table: JSON.stringify(Items),
      jobs: JSON.stringify(h.codebuild.starts),
      logs: stdout.join('\n'),
    };
    // The handlers' lines were printed and read: a silenced logger would pass this check without looking.
    expect(haystacks.logs).toContain(run.deploymentId);
    for (const [where, text] of Object.entries(haystacks)) {
      expect(text, where).not.toContain(SECRET_ACCESS_KEY);
      expect(text, where).not.toContain(SESSION_TOKEN);
    }
  });

  it.each([
    ['a hostile ref', { ref: 'main;rm -rf /' }, 'INVALID_REF'],
    ['a ref that starts with "-"', { ref: '--upload-pack=touch x' }, 'INVALID_REF'],
    ['a pull-request ref', { ref: 'pr/12' }, 'INVALID_REF'],
    ['an unknown environment', { environment: 'nope' }, 'UNKNOWN_ENVIRONMENT'],
    ['an unknown application', { application: 'nope' }, 'UNKNOWN_APPLICATION'],
    ['a requester the registry does not allow', { environment: 'prod' }, 'FORBIDDEN'],
    ['a reason over the limit', { reason: 'x'.repeat(501) }, 'INVALID_FIELD'],
  ])('rejects %s as REJECTED with its code and starts no job', async (_what, change, code) => {
    const h = await createWorkflowHarness();
    const run = h.start({ application: 'hello-world', environment: 'staging', ref: 'main', ...change });
    expect((await run.settled).ok).toBe(true);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'REJECTED',
      errorCode: code,
    });
    expect(await types(h, run.deploymentId)).toEqual(['REQUESTED', 'REJECTED']);
    expect(h.codebuild.mock).not.toReceiveCommand(StartBuildCommand);
  });

  it('fails with the candidate causes when STS denies the role, and releases the lock', async () => {
    const h = await createWorkflowHarness({ assumeRoleError: 'AccessDenied' });
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    const outcome = await run.settled;
    expect(outcome.ok).toBe(false);
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'ROLE_ASSUMPTION_DENIED' });
    expect(deployment?.errorMessage).toMatch(/trust policy/);
    expect(deployment?.errorMessage).toMatch(/ExternalId/);
    expect(deployment?.errorMessage).toMatch(/role exists/);
    expect(await types(h, run.deploymentId)).toContain('LOCK_RELEASED');
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
    expect(h.codebuild.starts.map((s) => s.projectName)).toEqual(['crossdeploy-build']);
  });

  it('refuses to deploy when the assumed session lands in another account', async () => {
    const h = await createWorkflowHarness({ callerAccount: () => '999999999999' });
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'WRONG_TARGET_ACCOUNT' });
    expect(deployment?.errorMessage).toContain('999999999999');
    expect(h.codebuild.starts.map((s) => s.projectName)).toEqual(['crossdeploy-build']);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it('records a failed build without taking the lock', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.build = { status: 'FAILED' };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'BUILD_FAILED',
    });
    const events = await types(h, run.deploymentId);
    expect(events).toContain('BUILD_FINISHED');
    expect(events).not.toContain('LOCK_ACQUIRED');
    expect(events.at(-1)).toBe('FAILED');
  });

  it('records a failed deploy, settles and releases the lock', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'FAILED' };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'DEPLOY_FAILED',
    });
    const events = await types(h, run.deploymentId);
    expect(events.slice(-4)).toEqual(['DEPLOY_FINISHED', 'SETTLED', 'LOCK_RELEASED', 'FAILED']);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it('waits for the target stack to leave *_IN_PROGRESS before it records a failure and releases', async () => {
    const statuses = [
      'UPDATE_ROLLBACK_IN_PROGRESS',
      'UPDATE_ROLLBACK_IN_PROGRESS',
      'UPDATE_ROLLBACK_COMPLETE',
    ];
    const h = await createWorkflowHarness({
      stackStatus: () => statuses.shift() ?? 'UPDATE_ROLLBACK_COMPLETE',
    });
    h.codebuild.scripts.deploy = { status: 'FAILED' };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    expect(h.cfn).toReceiveCommandTimes(DescribeStacksCommand, 3);
    const entered = run.events
      .filter((e) => e.type === 'StateEntered')
      .map((e) => (e as { state: { name: string } }).state.name);
    expect(entered.filter((name) => name === 'Wait For Settle')).toHaveLength(2);
    expect((await types(h, run.deploymentId)).slice(-3)).toEqual(['SETTLED', 'LOCK_RELEASED', 'FAILED']);
  });

  it('retries a throttled StartBuild and starts exactly one build', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.throttleNextStarts = 2;
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    expect((await h.store.getDeployment(run.deploymentId))?.status).toBe('SUCCEEDED');
    const retried = run.events.filter((e) => e.type === 'StateRetried');
    expect(retried).toHaveLength(2);
    const builds = [...h.codebuild.builds.values()].filter((b) => b.projectName === 'crossdeploy-build');
    expect(builds).toHaveLength(1);
  });

  it('starts one build when the start step runs twice (idempotency token)', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.build = { ...BUILD_OK, hold: true };
    const validate = validateRequestHandler(() => ({ store: h.store, registry: h.registry, clock: h.clock }));
    await validate({
      deploymentId: 'd-twice',
      input: {
        application: 'hello-world',
        environment: 'staging',
        requester: { type: 'local', user: 'alice' },
      },
    });
    const startJob = startJobHandler(() => ({
      store: h.store,
      registry: h.registry,
      runner: h.runner,
      clock: h.clock,
      settings: { outputBucket: 'bucket-1' },
    }));
    const first = await startJob({ deploymentId: 'd-twice', job: 'build', taskToken: 't1' });
    const second = await startJob({ deploymentId: 'd-twice', job: 'build', taskToken: 't2' });
    expect(second.buildId).toBe(first.buildId);
    expect(h.codebuild.builds.size).toBe(1);
    const tokens = h.codebuild.starts.map((s) => s.idempotencyToken);
    expect(tokens[0]).toBe(tokens[1]);
    expect(await h.store.getTaskToken('d-twice', 'build')).toBe('t2');
    expect((await types(h, 'd-twice')).filter((t) => t === 'BUILD_STARTED')).toHaveLength(1);
  });

  it('writes each event once when a Lambda step is invoked twice', async () => {
    const h = await createWorkflowHarness();
    const validate = validateRequestHandler(() => ({ store: h.store, registry: h.registry, clock: h.clock }));
    const input = {
      deploymentId: 'd-dup',
      input: {
        application: 'hello-world',
        environment: 'staging',
        requester: { type: 'local' as const, user: 'alice' },
      },
    };
    await validate(input);
    await validate(input);
    const acquire = acquireLockHandler(() => ({
      store: h.store,
      clock: h.clock,
      registry: h.registry,
      leaseSeconds: 60,
      tokens: h.tokens,
    }));
    const first = await acquire({ deploymentId: 'd-dup' });
    const second = await acquire({ deploymentId: 'd-dup' });
    expect(second).toEqual(first);
    expect(await types(h, 'd-dup')).toEqual(['REQUESTED', 'VALIDATED', 'LOCK_ACQUIRED']);
  });

  it('in reject mode runs one of two concurrent requests and refuses the other', async () => {
    const h = await createWorkflowHarness();
    const a = h.start({ application: 'hello-world', environment: 'sandbox' });
    const b = h.start({ application: 'hello-world', environment: 'sandbox' });
    await Promise.all([a.settled, b.settled]);
    const statuses = await Promise.all(
      [a, b].map(async (r) => (await h.store.getDeployment(r.deploymentId))!),
    );
    expect(statuses.map((d) => d.status).sort()).toEqual(['REJECTED', 'SUCCEEDED']);
    expect(statuses.find((d) => d.status === 'REJECTED')?.errorCode).toBe('ENVIRONMENT_BUSY');
    expect(h.codebuild.starts.filter((s) => s.projectName === 'crossdeploy-deploy')).toHaveLength(1);
    expect(await h.store.getLock('hello-world', 'sandbox')).toBeUndefined();
  });

  it('in queued mode runs every concurrent request, one deploy at a time, in request order', async () => {
    const h = await createWorkflowHarness();
    // Later requests finish their builds first: order must still be request order.
    const runs = [];
    for (let i = 0; i < 6; i++) {
      runs.push(h.start({ application: 'hello-world', environment: 'staging', reason: `request ${i}` }));
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await Promise.all(runs.map((r) => r.settled));
    const deployments = await Promise.all(
      runs.map(async (r) => (await h.store.getDeployment(r.deploymentId))!),
    );
    expect(deployments.map((d) => d.status)).toEqual(Array(6).fill('SUCCEEDED'));
    const deployStarts = h.codebuild.starts
      .filter((s) => s.projectName === 'crossdeploy-deploy')
      .map((s) => s.environmentVariablesOverride?.find((v) => v.name === 'DEPLOYMENT_ID')?.value);
    expect(deployStarts).toEqual(runs.map((r) => r.deploymentId));
    // Never two deploys at once: each lock is acquired after the previous one was released.
    const spans = await Promise.all(
      runs.map(async (r) => {
        const events = await h.store.listEvents(r.deploymentId);
        const at = (type: string) => events.find((e) => e.type === type)!.at;
        return [at('LOCK_ACQUIRED'), at('LOCK_RELEASED')] as const;
      }),
    );
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0] >= spans[i - 1]![1]).toBe(true);
    expect(await h.store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
  });

  it('skips a queued request whose execution died, and the next one runs', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const first = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, first.deploymentId)).includes('DEPLOY_STARTED'),
      'the first deploy',
    );
    const dying = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, dying.deploymentId)).includes('LOCK_WAITING'),
      'the second to wait',
    );
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const third = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, third.deploymentId)).includes('LOCK_WAITING'),
      'the third to wait',
    );

    dying.abort();
    await dying.settled;
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
    await reconcile(event);
    const held = [...h.codebuild.builds.values()].find((b) => !b.buildComplete)!;
    await h.codebuild.finish(held.id!, { status: 'SUCCEEDED' });

    await Promise.all([first.settled, third.settled]);
    expect((await h.store.getDeployment(dying.deploymentId))?.status).toBe('CANCELLED');
    expect((await h.store.getDeployment(third.deploymentId))?.status).toBe('SUCCEEDED');
    // It first queued behind the request that died, then behind the holder, then ran.
    const waiting = (await h.store.listEvents(third.deploymentId)).find((e) => e.type === 'LOCK_WAITING');
    expect(waiting?.detail).toEqual({ behind: dying.deploymentId, reason: 'EARLIER_REQUEST' });
  });

  it('fails a waiter that outwaits lockWaitTimeoutSeconds (LOCK_WAIT_TIMEOUT), and the holder is not disturbed', async () => {
    let offset = 0;
    const h = await createWorkflowHarness({ clock: { now: () => new Date(Date.now() + offset) } });
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const first = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, first.deploymentId)).includes('DEPLOY_STARTED'),
      'the first deploy',
    );
    const waiter = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, waiter.deploymentId)).includes('LOCK_WAITING'),
      'the second to wait',
    );
    await waitUntil(
      async () =>
        (await h.store.listTickets('hello-world', 'staging', { limit: 5 })).some(
          (t) => t.deploymentId === waiter.deploymentId && t.taskToken !== undefined,
        ),
      'the second to park',
    );
    // staging waits at most the default 21,600 s. In AWS the parked Task's timeout (the deadline) or the
    // scheduled sweep wakes it; the local engine cannot shorten a Task timeout, so the sweep runs here.
    offset = 21_601_000;
    const sweep = reconcileHandler(() => ({
      store: h.store,
      clock: h.clock,
      tokens: h.tokens,
      ...h.settleDeps,
      executions: h.executions,
      sleep: async () => {},
    }));
    // Woken by the sweep, or by its own park if that was still running when the clock moved: either way
    // Acquire Lock runs again past the deadline (test/unit/lock-handoff.test.ts covers the sweep alone).
    await sweep(
      JSON.parse(
        readFileSync(new URL('../events/eventbridge/scheduled-event.json', import.meta.url), 'utf8'),
      ),
    );
    const outcome = await waiter.settled;
    expect(outcome.ok).toBe(false);
    // The Fail state's Error and Cause, as the engine reports them (ExecutionError wraps them).
    const failure = outcome.ok ? undefined : (outcome.error.cause as Error);
    expect(failure?.name).toBe('DeploymentFailed');
    expect(failure?.message).toMatch(
      new RegExp(
        `^LOCK_WAIT_TIMEOUT: waited more than 21600 s for hello-world/staging \\(behind ${first.deploymentId}\\)$`,
      ),
    );
    expect(await h.store.getDeployment(waiter.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'LOCK_WAIT_TIMEOUT',
    });
    expect(await types(h, waiter.deploymentId)).not.toContain('LOCK_ACQUIRED');
    expect(await h.store.listTickets('hello-world', 'staging', { limit: 10 })).toEqual([]);
    expect((await h.store.getLock('hello-world', 'staging'))?.owner).toBe(first.deploymentId);

    const held = [...h.codebuild.builds.values()].find((b) => !b.buildComplete)!;
    await h.codebuild.finish(held.id!, { status: 'SUCCEEDED' });
    await first.settled;
    expect((await h.store.getDeployment(first.deploymentId))?.status).toBe('SUCCEEDED');
    expect(h.codebuild.starts.filter((s) => s.projectName === 'crossdeploy-deploy')).toHaveLength(1);
  });

  it('in superseded mode runs the first and the last of three rapid requests and supersedes the middle one', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const first = h.start({ application: 'hello-world', environment: 'preview' });
    await waitUntil(
      async () => (await types(h, first.deploymentId)).includes('DEPLOY_STARTED'),
      'the first deploy',
    );
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const second = h.start({ application: 'hello-world', environment: 'preview' });
    await new Promise((resolve) => setTimeout(resolve, 3));
    const third = h.start({ application: 'hello-world', environment: 'preview' });
    await Promise.all([second.settled]);
    const held = [...h.codebuild.builds.values()].find((b) => !b.buildComplete)!;
    await h.codebuild.finish(held.id!, { status: 'SUCCEEDED' });
    await Promise.all([first.settled, third.settled]);
    expect((await h.store.getDeployment(first.deploymentId))?.status).toBe('SUCCEEDED');
    expect(await h.store.getDeployment(second.deploymentId)).toMatchObject({
      status: 'SUPERSEDED',
      supersededBy: third.deploymentId,
    });
    expect((await h.store.getDeployment(third.deploymentId))?.status).toBe('SUCCEEDED');
    expect(await types(h, second.deploymentId)).not.toContain('DEPLOY_STARTED');
  });

  it('skips the Build step for an input that names a recorded build output', async () => {
    const h = await createWorkflowHarness();
    const first = h.start({ application: 'hello-world', environment: 'staging' });
    await first.settled;
    const recorded = (await h.store.getDeployment(first.deploymentId))!.buildOutput;
    const again = h.start({
      application: 'hello-world',
      environment: 'staging',
      buildOutputFrom: first.deploymentId,
    });
    await again.settled;
    const deployment = await h.store.getDeployment(again.deploymentId);
    expect(deployment).toMatchObject({ status: 'SUCCEEDED', buildOutput: recorded });
    expect(await types(h, again.deploymentId)).not.toContain('BUILD_STARTED');
    expect(h.codebuild.starts.filter((s) => s.projectName === 'crossdeploy-build')).toHaveLength(1);
    const entered = again.events
      .filter((e) => e.type === 'StateEntered')
      .map((e) => (e as { state: { name: string } }).state.name);
    expect(entered).not.toContain('Build');
  });

  it('settles, cancels and releases through the reconciler when an execution is aborted mid-deploy', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, run.deploymentId)).includes('DEPLOY_STARTED'),
      'the deploy job',
    );
    run.abort();
    await run.settled;
    expect(await h.store.getLock('hello-world', 'staging')).toBeDefined();

    const reconcile = reconcileHandler(() => ({
      store: h.store,
      clock: h.clock,
      tokens: h.tokens,
      ...h.settleDeps,
      executions: h.executions,
      sleep: async () => {},
    }));
    const event = structuredClone(executionEvent);
    event.detail.name = run.deploymentId;
    event.detail.status = 'ABORTED';
    await reconcile(event);

    expect(h.codebuild.running()).toEqual([]);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'CANCELLED',
      errorCode: 'EXECUTION_ABORTED',
    });
    expect((await types(h, run.deploymentId)).slice(-3)).toEqual(['SETTLED', 'LOCK_RELEASED', 'CANCELLED']);
    expect(await h.store.getLock('hello-world', 'staging')).toBeUndefined();
  });

  it('the scheduled sweep reconciles an aborted execution whose event never arrived, and the queue moves on', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const dead = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, dead.deploymentId)).includes('DEPLOY_STARTED'),
      'the deploy job',
    );
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED' };
    const next = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, next.deploymentId)).includes('LOCK_WAITING'),
      'the next one to wait',
    );
    dead.abort();
    await dead.settled;

    const reconcile = reconcileHandler(() => ({
      store: h.store,
      clock: h.clock,
      tokens: h.tokens,
      ...h.settleDeps,
      executions: h.executions,
      sleep: async () => {},
    }));
    const sweep = JSON.parse(
      readFileSync(new URL('../events/eventbridge/scheduled-event.json', import.meta.url), 'utf8'),
    );
    // The running one is left alone; only the execution that ended without its record is reconciled.
    expect(await reconcile(sweep, { getRemainingTimeInMillis: () => 870_000 })).toEqual({
      delivered: 0,
      reconciled: [dead.deploymentId],
      pending: [],
      // The reconciler's own hand-over gave the lock to the parked one: nothing left for the safety net.
      handedOver: [],
      woken: [],
    });
    expect(await h.store.getDeployment(dead.deploymentId)).toMatchObject({
      status: 'CANCELLED',
      errorCode: 'EXECUTION_ABORTED',
    });
    expect((await types(h, dead.deploymentId)).slice(-3)).toEqual(['SETTLED', 'LOCK_RELEASED', 'CANCELLED']);

    expect(await next.settled).toMatchObject({ ok: true });
    expect((await h.store.getDeployment(next.deploymentId))?.status).toBe('SUCCEEDED');
    expect(await reconcile(sweep)).toEqual({
      delivered: 0,
      reconciled: [],
      pending: [],
      handedOver: [],
      woken: [],
    });
  });

  it('the sweep leaves a deployment it cannot settle within the function’s time for the next sweep', async () => {
    const h = await createWorkflowHarness({ stackStatus: () => 'UPDATE_IN_PROGRESS' });
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', hold: true };
    const dead = h.start({ application: 'hello-world', environment: 'staging' });
    await waitUntil(
      async () => (await types(h, dead.deploymentId)).includes('DEPLOY_STARTED'),
      'the deploy job',
    );
    dead.abort();
    await dead.settled;
    // The deploy job has ended; only the stack, still UPDATE_IN_PROGRESS, keeps it from being settled.
    const job = h.codebuild.running()[0]!;
    await h.codebuild.finish(job.id!, { status: 'SUCCEEDED' });
    expect(h.codebuild.running()).toEqual([]);
    const reconcile = reconcileHandler(() => ({
      store: h.store,
      clock: h.clock,
      tokens: h.tokens,
      ...h.settleDeps,
      executions: h.executions,
      sleep: async () => {},
    }));
    const sweep = JSON.parse(
      readFileSync(new URL('../events/eventbridge/scheduled-event.json', import.meta.url), 'utf8'),
    );
    h.cfn.resetHistory();
    // 45 s left: the margin leaves 15 s, one poll of 15 s does not fit.
    expect(await reconcile(sweep, { getRemainingTimeInMillis: () => 45_000 })).toEqual({
      delivered: 0,
      reconciled: [],
      pending: [dead.deploymentId],
      handedOver: [],
      woken: [],
    });
    // The stack was looked at, and it is what held the deployment back.
    expect(h.cfn).toReceiveCommandWith(DescribeStacksCommand, { StackName: 'hello-world-staging' });
    expect((await h.store.getDeployment(dead.deploymentId))?.status).toBe('RUNNING');
    expect((await h.store.getLock('hello-world', 'staging'))?.owner).toBe(dead.deploymentId);
  });
});
