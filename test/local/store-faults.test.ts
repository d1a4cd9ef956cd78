import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '#shared/errors.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import { type Deployment, isTerminal } from '#shared/types.ts';
import { BUILD_OUTPUT, type LocalMode, startLocalMode } from '#test/support/local-mode.ts';
import type { JobExecutor } from '../../local/job-runner.ts';
import { LostEventSweep } from '../../local/sweep.ts';

/**
 * Local mode (in-process, the `npm start` wiring) while its store drops connections: a proxy in front of
 * the store resets every connection for a couple of seconds, longer than the SDK's own quick retries.
 */

const OUTAGE_MS = 2_000;

let mode: LocalMode | undefined;
afterEach(async () => {
  await mode?.close();
  mode = undefined;
});

/** A job that takes the store down for OUTAGE_MS as soon as it starts, then succeeds once it is back. */
function jobThatTakesTheStoreDown(which: 'build' | 'deploy'): {
  execute: JobExecutor;
  outages: () => number;
} {
  let outages = 0;
  const execute: JobExecutor = async (job) => {
    if (job.job === which && mode) {
      outages++;
      mode.proxy.down();
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      mode.proxy.up();
    }
    return job.job === 'build' ? BUILD_OUTPUT : { status: 'SUCCEEDED' };
  };
  return { execute, outages: () => outages };
}

describe('local mode while its store resets connections', () => {
  it('does not fail a deployment whose store drops just after its job started (the job runs on)', async () => {
    const job = jobThatTakesTheStoreDown('build');
    mode = await startLocalMode({ executeJob: job.execute });
    const id = await mode.deploy();
    const done = await mode.waitUntil(id, (d) => isTerminal(d.status));
    expect(job.outages()).toBe(1);
    expect(done).toMatchObject({ status: 'SUCCEEDED', jobs: { build: { status: 'SUCCEEDED' } } });
  });

  it('delivers the end of a job even when the store is down as the job ends', async () => {
    let mode_: LocalMode | undefined;
    const execute: JobExecutor = async (job) => {
      if (job.job === 'deploy' && mode_) {
        // The job ends while the store is down: its report meets ECONNRESET.
        mode_.proxy.down();
        setTimeout(() => mode_?.proxy.up(), OUTAGE_MS);
      }
      return job.job === 'build' ? BUILD_OUTPUT : { status: 'SUCCEEDED' };
    };
    mode = mode_ = await startLocalMode({ executeJob: execute });
    const id = await mode.deploy();
    const done = await mode.waitUntil(id, (d) => isTerminal(d.status));
    expect(done).toMatchObject({ status: 'SUCCEEDED', jobs: { deploy: { status: 'SUCCEEDED' } } });
  });

  it('delivers a job end that was never reported through the lost-event sweep', async () => {
    mode = await startLocalMode();
    const { orchestrator } = mode;
    // Every report is lost (as if the store had been down for all of the report's retries).
    let lost = 0;
    orchestrator.runner.onFinished = async () => {
      lost++;
      throw new Error('lost');
    };
    const id = await mode.deploy();
    const building = await mode.waitUntil(id, (d) => d.jobs?.build !== undefined);
    const buildId = building.jobs?.build?.buildId ?? '';
    await mode.waitUntil(id, () => lost > 0);
    expect(await orchestrator.runner.describe([buildId])).toMatchObject([{ complete: true }]);
    expect(await mode.get(id)).toMatchObject({ status: 'RUNNING', phase: 'BUILDING' });

    const sweep = new LostEventSweep(orchestrator.reconcileDeps);
    expect(await sweep.runOnce()).toBe(1);
    const built = await mode.waitUntil(id, (d) => d.phase !== 'BUILDING');
    expect(built.jobs?.build?.status).toBe('SUCCEEDED');
  });

  it('stops a job whose start it could not record before it fails the deployment', async () => {
    const stopped: string[] = [];
    let release: (status: 'STOPPED') => void = () => {};
    const execute: JobExecutor = (job) =>
      job.job === 'build'
        ? new Promise((resolve) => {
            release = (status) => resolve({ status });
          })
        : Promise.resolve({ status: 'SUCCEEDED' });
    // The store keeps refusing to record the started build (its retries already used up).
    const refuseJobRecord = (store: DeploymentStore): DeploymentStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (property !== 'updateDeployment') return value;
          return async (id: string, patch: Partial<Deployment>) => {
            if (patch.jobs?.build && !patch.jobs.build.status) {
              throw new TransientError('the store did not answer updateDeployment');
            }
            return value.call(target, id, patch);
          };
        },
      });
    mode = await startLocalMode({ executeJob: execute, wrapStore: refuseJobRecord });
    const { runner } = mode.orchestrator;
    const stop = runner.stop.bind(runner);
    runner.stop = async (buildId) => {
      stopped.push(buildId);
      await stop(buildId);
      release('STOPPED');
    };
    const id = await mode.deploy();
    const done = await mode.waitUntil(id, (d) => isTerminal(d.status));
    expect(done.status).toBe('FAILED');
    expect(stopped).toHaveLength(1);
    // The job had ended before the deployment was recorded FAILED and its lock released.
    const [job] = await runner.describe(stopped);
    expect(job).toMatchObject({ complete: true, status: 'STOPPED' });
    expect(await mode.orchestrator.store.getLock('hello-world', 'staging')).toBeUndefined();
  });
});
