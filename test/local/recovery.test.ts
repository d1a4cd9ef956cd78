import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import { createTestStore } from '#test/support/store.ts';
import { testRegistry } from '#test/support/workflow.ts';
import type { ReconcileDeps } from '../../functions/reconcile/core.ts';
import { type LocalJobRecord, LocalJobRunner } from '../../local/job-runner.ts';
import { LocalLogWriter } from '../../local/logs.ts';
import { recoverOnStart } from '../../local/recover.ts';
import { LocalTaskTokens } from '../../local/workflow-engine.ts';

/** Recovery at start-up with the real local job runner and a job record an earlier server left behind. */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const clock = { now: () => new Date('2026-11-30T09:00:00Z') };

describe('recovery of a deployment whose job an earlier server was running', () => {
  it('records the job as it ended (stopped at start-up) on the deployment, which ends FAILED', async () => {
    const { store } = await createTestStore();
    const registry = testRegistry();
    const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-recover-'));
    dirs.push(dataDir);
    const deploymentId = '01JNRECOVERJOB';
    const buildId = 'crossdeploy-local-build:survivor';
    await store.createDeployment(
      newDeployment({
        deploymentId,
        application: 'hello-world',
        environment: 'staging',
        ref: 'main',
        requester: { type: 'local', user: 'me' },
        trigger: 'local',
        requestedAt: clock.now().toISOString(),
      }),
    );
    await store.updateDeployment(deploymentId, {
      status: 'RUNNING',
      phase: 'BUILDING',
      jobs: { build: { buildId, startedAt: clock.now().toISOString() } },
    });
    // The killed server's record of its build: unfinished, its process group never recorded.
    const survivor: LocalJobRecord = {
      buildId,
      deploymentId,
      job: 'build',
      runner: 'simulate',
      idempotencyToken: `${deploymentId}-build`,
      status: 'IN_PROGRESS',
      complete: false,
      startedAt: clock.now().toISOString(),
      environmentVariables: { APPLICATION: 'hello-world', ENVIRONMENT: 'staging' },
      exportedVariables: {},
      workspace: join(dataDir, 'workspaces', deploymentId, 'build'),
    };
    mkdirSync(join(dataDir, 'jobs'), { recursive: true });
    writeFileSync(join(dataDir, 'jobs', 'crossdeploy-local-build_survivor.json'), JSON.stringify(survivor));

    const runner = new LocalJobRunner({
      dataDir,
      registry,
      registryDir: dataDir,
      logs: new LocalLogWriter(join(dataDir, 'logs')),
      simulateBin: dataDir,
      stopGraceMs: 10,
    });
    const reconcileDeps: ReconcileDeps = {
      store,
      clock,
      registry,
      runner,
      stacks: { stackStatus: async () => undefined },
      tokens: new LocalTaskTokens(),
      leaseSeconds: 600,
      sleep: async () => {},
    };
    const report = await recoverOnStart({
      store,
      registry,
      runner,
      reconcileDeps,
      ownsStore: true,
      budget: { budgetMs: 1_000, pollMs: 1 },
    });
    expect(report.stoppedJobs).toMatchObject([{ buildId }]);
    expect(report.reconciled).toEqual([deploymentId]);
    expect(await store.getDeployment(deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'ORCHESTRATOR_RESTARTED',
      jobs: { build: { buildId, status: 'STOPPED' } },
    });
  });
});
