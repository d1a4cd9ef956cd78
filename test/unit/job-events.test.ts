import { readFileSync } from 'node:fs';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { CodeBuildJobRunner } from '#shared/aws/codebuild.ts';
import { newDeployment } from '#shared/deployments/record.ts';
import type { JobInfo, JobRunner, TaskTokens } from '#shared/ports.ts';
import { PUBLISHED_BUILDSPECS } from '#test/support/job-specs.ts';
import { createTestStore } from '#test/support/store.ts';
import { testRegistry } from '#test/support/workflow.ts';
import { onJobStateChange } from '../../functions/job-events/core.ts';
import {
  type BuildStateChange,
  createHandler as createJobEventsHandler,
} from '../../functions/job-events/handler.ts';
import { sweepDeadExecutions, sweepLostJobEvents } from '../../functions/reconcile/core.ts';

const clock = { now: () => new Date('2026-11-28T10:00:00.000Z') };
const OUTPUT = { OUTPUT_BUCKET: 'bucket', OUTPUT_KEY: 'builds/hello-world/d1.zip' };
const EXPORTED = {
  BUILD_OUTPUT_VERSION_ID: 'v1',
  BUILD_OUTPUT_SHA256: 'c'.repeat(64),
  RESOLVED_COMMIT: 'd'.repeat(40),
};

function runnerWith(infos: JobInfo[]): JobRunner {
  return {
    start: async () => ({ buildId: 'x' }),
    describe: async (ids) => infos.filter((i) => ids.includes(i.buildId)),
    stop: async () => {},
  };
}

function recordingTokens(answer: 'delivered' | 'gone' = 'delivered') {
  const calls: unknown[][] = [];
  const tokens: TaskTokens = {
    succeed: async (...args) => {
      calls.push(['succeed', ...args]);
      return answer;
    },
    fail: async (...args) => {
      calls.push(['fail', ...args]);
      return answer;
    },
  };
  return { tokens, calls };
}

async function seeded(phase: 'BUILDING' | 'DEPLOYING', buildId = 'proj:1') {
  const { store } = await createTestStore();
  await store.createDeployment(
    newDeployment({
      deploymentId: 'd1',
      application: 'hello-world',
      environment: 'staging',
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt: '2026-11-28T09:00:00.000Z',
    }),
  );
  const job = phase === 'BUILDING' ? 'build' : 'deploy';
  await store.updateDeployment('d1', {
    status: 'RUNNING',
    phase,
    jobs: { [job]: { buildId, startedAt: 'x' } },
  });
  await store.putTaskToken('d1', job, 'token-1');
  return store;
}

const buildInfo = (overrides: Partial<JobInfo> = {}): JobInfo => ({
  buildId: 'proj:1',
  deploymentId: 'd1',
  job: 'build',
  status: 'SUCCEEDED',
  complete: true,
  exportedVariables: EXPORTED,
  environmentVariables: OUTPUT,
  ...overrides,
});

describe('job state changes', () => {
  it('records the build output read back from the job, then completes the token', async () => {
    const store = await seeded('BUILDING');
    const { tokens, calls } = recordingTokens();
    await onJobStateChange('proj:1', { store, runner: runnerWith([buildInfo()]), tokens, clock });
    expect((await store.getDeployment('d1'))?.buildOutput).toEqual({
      bucket: 'bucket',
      key: 'builds/hello-world/d1.zip',
      versionId: 'v1',
      sha256: 'c'.repeat(64),
      resolvedCommit: 'd'.repeat(40),
    });
    expect(calls).toEqual([
      ['succeed', 'token-1', { buildId: 'proj:1', status: 'SUCCEEDED', resolvedCommit: 'd'.repeat(40) }],
    ]);
  });

  it('records the commit time the build exported, as UTC ISO-8601', async () => {
    const store = await seeded('BUILDING');
    const { tokens } = recordingTokens();
    const info = buildInfo({
      exportedVariables: { ...EXPORTED, BUILD_COMMIT_TIME: '2026-11-28T10:30:00+02:00' },
    });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    expect((await store.getDeployment('d1'))?.buildOutput?.commitTime).toBe('2026-11-28T08:30:00.000Z');
  });

  it.each([
    '2026-01-01T00:00:00Z; rm -rf /',
    '2026-01-01T00:00:00',
    '2026-02-30T00:00:00Z',
    '2099-01-01T00:00:00Z',
    'yesterday',
    '<script>alert(1)</script>',
    '2026-13-01T00:00:00Z',
  ])('ignores a hostile or malformed BUILD_COMMIT_TIME (%s) and still records the build', async (value) => {
    const store = await seeded('BUILDING');
    const { tokens, calls } = recordingTokens();
    const info = buildInfo({ exportedVariables: { ...EXPORTED, BUILD_COMMIT_TIME: value } });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    const recorded = await store.getDeployment('d1');
    expect(recorded?.buildOutput?.sha256).toBe('c'.repeat(64));
    expect(recorded?.buildOutput).not.toHaveProperty('commitTime');
    expect(calls[0]?.[0]).toBe('succeed');
  });

  it('fails the token with BUILD_FAILED when the build exported no digest', async () => {
    const store = await seeded('BUILDING');
    const { tokens, calls } = recordingTokens();
    const info = buildInfo({ exportedVariables: { ...EXPORTED, BUILD_OUTPUT_SHA256: '' } });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    expect(calls[0]?.[0]).toBe('fail');
    expect(JSON.parse(String(calls[0]?.[3]))).toMatchObject({ code: 'BUILD_FAILED' });
  });

  it("fails the token with the job's own reason (CROSSDEPLOY_FAILURE), and with DEPLOY_FAILED for anything else", async () => {
    for (const [reason, code] of [
      ['CHECKSUM_MISMATCH', 'CHECKSUM_MISMATCH'],
      ['WRONG_TARGET_ACCOUNT', 'WRONG_TARGET_ACCOUNT'],
      ['INTERNAL', 'DEPLOY_FAILED'],
      ['', 'DEPLOY_FAILED'],
    ] as const) {
      const store = await seeded('DEPLOYING');
      const { tokens, calls } = recordingTokens();
      const info = buildInfo({
        job: 'deploy',
        status: 'FAILED',
        exportedVariables: reason ? { CROSSDEPLOY_FAILURE: reason } : {},
      });
      await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
      expect(calls[0]?.[0]).toBe('fail');
      expect(JSON.parse(String(calls[0]?.[3]))).toMatchObject({ code });
    }
  });

  it('ignores a job that is not complete, and a stale job the deployment no longer records', async () => {
    const store = await seeded('BUILDING', 'proj:2');
    const { tokens, calls } = recordingTokens();
    const runner = runnerWith([
      buildInfo({ buildId: 'proj:1' }),
      buildInfo({ buildId: 'proj:3', complete: false }),
    ]);
    expect(await onJobStateChange('proj:1', { store, runner, tokens, clock })).toBe('ignored');
    expect(await onJobStateChange('proj:3', { store, runner, tokens, clock })).toBe('ignored');
    expect(calls).toEqual([]);
  });

  it('treats a token whose task is gone as already handled', async () => {
    const store = await seeded('DEPLOYING');
    const { tokens } = recordingTokens('gone');
    const info = buildInfo({ job: 'deploy', status: 'FAILED' });
    expect(await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock })).toBe(
      'delivered',
    );
    expect((await store.listEvents('d1')).map((e) => e.type)).toEqual(['DEPLOY_FINISHED']);
  });

  it('delivers a finished job whose event was lost, once', async () => {
    const store = await seeded('DEPLOYING');
    const { tokens, calls } = recordingTokens();
    const deps = {
      store,
      clock,
      tokens,
      runner: runnerWith([buildInfo({ job: 'deploy' })]),
      stacks: { stackStatus: async () => undefined },
      registry: testRegistry(),
      leaseSeconds: 600,
      sleep: async () => {},
    };
    expect(await sweepLostJobEvents(deps)).toBe(1);
    // The job record now has a status, so a second sweep leaves it alone.
    expect(await sweepLostJobEvents(deps)).toBe(0);
    expect(calls).toHaveLength(1);
  });

  it('ends a record whose execution never started, once it is 15 minutes old, and leaves a young one', async () => {
    const { store } = await createTestStore();
    for (const [id, requestedAt] of [
      ['old', '2026-11-28T09:44:00.000Z'],
      ['young', '2026-11-28T09:50:00.000Z'],
      ['running', '2026-11-28T09:00:00.000Z'],
    ] as const) {
      await store.createDeployment(
        newDeployment({
          deploymentId: id,
          application: 'hello-world',
          environment: 'staging',
          requester: { type: 'local', user: 'alice' },
          trigger: 'local',
          requestedAt,
        }),
      );
    }
    const asked: string[] = [];
    const deps = {
      store,
      clock,
      tokens: recordingTokens().tokens,
      runner: runnerWith([]),
      stacks: { stackStatus: async () => undefined },
      registry: testRegistry(),
      leaseSeconds: 600,
      sleep: async () => {},
      executions: {
        status: async (id: string) => {
          asked.push(id);
          return id === 'running' ? 'RUNNING' : undefined;
        },
      },
    };
    expect(await sweepDeadExecutions(deps, { budgetMs: 60_000, pollMs: 15_000 })).toEqual({
      reconciled: ['old'],
      pending: [],
    });
    expect(asked.sort()).toEqual(['old', 'running', 'young']);
    expect(await store.getDeployment('old')).toMatchObject({
      status: 'FAILED',
      errorCode: 'EXECUTION_NOT_FOUND',
    });
    expect((await store.getDeployment('young'))?.status).toBe('QUEUED');
    expect((await store.getDeployment('running'))?.status).toBe('QUEUED');
  });
});

describe('the deploy job template policy outcome', () => {
  const deployInfo = (status: 'SUCCEEDED' | 'FAILED', exported: Record<string, string>): JobInfo =>
    buildInfo({ job: 'deploy', status, exportedVariables: exported, environmentVariables: {} });
  const exceptions = [
    {
      kind: 'allowedTrustPrincipals',
      value: 'arn:aws:iam::999999999999:role/partner',
      resource: 'PartnerRole',
    },
  ];

  it('fails the token with TEMPLATE_POLICY_VIOLATION and the refusal when the policy refused the template', async () => {
    const store = await seeded('DEPLOYING');
    const { tokens, calls } = recordingTokens();
    const info = deployInfo('FAILED', {
      TEMPLATE_POLICY_REFUSED:
        'BackdoorRole: role BackdoorRole trusts AWS principal arn:aws:iam::999999999999:root',
    });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    expect(calls).toHaveLength(1);
    const [kind, token, name, cause] = calls[0] as string[];
    expect([kind, token, name]).toEqual(['fail', 'token-1', 'JobFailedError']);
    expect(JSON.parse(cause!)).toEqual({
      errorType: 'JobFailedError',
      code: 'TEMPLATE_POLICY_VIOLATION',
      errorMessage:
        'the template policy refuses BackdoorRole: role BackdoorRole trusts AWS principal arn:aws:iam::999999999999:root',
    });
  });

  it('keeps DEPLOY_FAILED for a deploy job that failed for another reason', async () => {
    const store = await seeded('DEPLOYING');
    const { tokens, calls } = recordingTokens();
    await onJobStateChange('proj:1', {
      store,
      runner: runnerWith([deployInfo('FAILED', {})]),
      tokens,
      clock,
    });
    expect(JSON.parse((calls[0] as string[])[3]!).code).toBe('DEPLOY_FAILED');
  });

  it('records the registry exceptions the policy let through, on the deployment and as an event', async () => {
    const store = await seeded('DEPLOYING');
    const { tokens } = recordingTokens();
    const info = deployInfo('SUCCEEDED', { TEMPLATE_POLICY_EXCEPTIONS: JSON.stringify(exceptions) });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    expect((await store.getDeployment('d1'))?.templatePolicyExceptions).toEqual(exceptions);
    const events = await store.listEvents('d1');
    expect(events.find((e) => e.type === 'TEMPLATE_POLICY_EXCEPTIONS_USED')?.detail).toEqual({ exceptions });
  });

  it('records an unreadable exceptions export as unreadable rather than dropping it', async () => {
    const store = await seeded('DEPLOYING');
    const { tokens } = recordingTokens();
    const info = deployInfo('SUCCEEDED', { TEMPLATE_POLICY_EXCEPTIONS: '[{"kind":"everything"}]' });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    const events = await store.listEvents('d1');
    expect(events.find((e) => e.type === 'TEMPLATE_POLICY_EXCEPTIONS_USED')?.detail).toEqual({
      exceptions: [],
      unreadable: true,
    });
  });

  const one = {
    kind: 'allowedManagedPolicies',
    value: 'arn:aws:iam::aws:policy/ReadOnlyAccess',
    resource: 'R',
  };
  it.each([
    ['an extra key', [{ ...one, note: 'x' }]],
    ['an over-long value', [{ ...one, value: 'a'.repeat(2049) }]],
    ['an over-long resource', [{ ...one, resource: 'r'.repeat(513) }]],
    ['more than 100 entries', Array.from({ length: 101 }, () => one)],
  ])('records an exceptions export with %s as unreadable', async (_what, value) => {
    const store = await seeded('DEPLOYING');
    const { tokens } = recordingTokens();
    const info = deployInfo('SUCCEEDED', { TEMPLATE_POLICY_EXCEPTIONS: JSON.stringify(value) });
    await onJobStateChange('proj:1', { store, runner: runnerWith([info]), tokens, clock });
    const events = await store.listEvents('d1');
    expect(events.find((e) => e.type === 'TEMPLATE_POLICY_EXCEPTIONS_USED')?.detail).toEqual({
      exceptions: [],
      unreadable: true,
    });
  });
});

describe('CodeBuild state change events for jobs that did not succeed', () => {
  const fixture = (name: string) =>
    JSON.parse(
      readFileSync(new URL(`../events/codebuild/${name}.json`, import.meta.url), 'utf8'),
    ) as BuildStateChange;

  it.each([
    ['TIMED_OUT', 'deploy', 'DEPLOY_FAILED', 'build-state-change-timed-out'],
    ['FAULT', 'deploy', 'DEPLOY_FAILED', 'build-state-change-fault'],
    ['TIMED_OUT', 'build', 'BUILD_FAILED', 'build-state-change-timed-out'],
    ['FAULT', 'build', 'BUILD_FAILED', 'build-state-change-fault'],
  ] as const)(
    'a %s event for the %s job fails the waiting task with %s and records the job as it ended',
    async (status, job, code, name) => {
      const event = structuredClone(fixture(name));
      expect(event.detail['build-status']).toBe(status);
      // CodeBuild names a build `<project>:<uuid>`; the event carries its ARN.
      const buildId = event.detail['build-id'].split('/').pop()!;
      const store = await seeded(job === 'build' ? 'BUILDING' : 'DEPLOYING', buildId);
      const codebuild = mockClient(CodeBuildClient);
      codebuild.on(BatchGetBuildsCommand).resolves({
        builds: [
          {
            id: buildId,
            buildStatus: status,
            buildComplete: true,
            // A build that timed out or faulted may still have exported something: it must not count.
            exportedEnvironmentVariables: Object.entries(EXPORTED).map(([n, value]) => ({ name: n, value })),
            environment: {
              type: 'ARM_CONTAINER',
              image: 'x',
              computeType: 'BUILD_GENERAL1_SMALL',
              environmentVariables: Object.entries({
                ...OUTPUT,
                DEPLOYMENT_ID: 'd1',
                CROSSDEPLOY_JOB: job,
              }).map(([n, value]) => ({ name: n, value })),
            },
          },
        ],
      });
      const runner = new CodeBuildJobRunner({
        client: new CodeBuildClient({
          region: 'eu-west-1',
          credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        }),
        buildProject: 'my-sample-project',
        deployProject: 'my-sample-project',
        buildspecs: PUBLISHED_BUILDSPECS,
        region: 'eu-west-1',
      });
      const { tokens, calls } = recordingTokens();
      const handler = createJobEventsHandler(() => ({ store, runner, tokens, clock }));

      expect(await handler(event)).toEqual({ outcome: 'delivered' });
      expect(codebuild).toReceiveCommandWith(BatchGetBuildsCommand, { ids: [event.detail['build-id']] });
      expect(calls).toHaveLength(1);
      const [verb, token, error, cause] = calls[0] as [string, string, string, string];
      expect([verb, token, error]).toEqual(['fail', 'token-1', 'JobFailedError']);
      expect(JSON.parse(cause)).toEqual({
        errorType: 'JobFailedError',
        errorMessage: `the ${job} job ended ${status}`,
        code,
      });
      const deployment = await store.getDeployment('d1');
      expect(deployment?.jobs?.[job]).toMatchObject({ buildId, status });
      expect(deployment?.buildOutput).toBeUndefined();
      const finished = (await store.listEvents('d1')).find((e) => e.type.endsWith('_FINISHED'));
      expect(finished).toMatchObject({
        type: job === 'build' ? 'BUILD_FINISHED' : 'DEPLOY_FINISHED',
        detail: { buildId, status },
      });
    },
  );
});
