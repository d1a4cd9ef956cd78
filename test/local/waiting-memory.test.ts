import { afterEach, describe, expect, it } from 'vitest';
import type { DeploymentStore } from '#shared/ports.ts';
import { BUILD_OUTPUT, type LocalMode, startLocalMode } from '#test/support/local-mode.ts';
import type { JobExecutor } from '../../local/job-runner.ts';
import type { RunningExecution } from '../../local/workflow-engine.ts';

let mode: LocalMode | undefined;
afterEach(async () => {
  await mode?.close();
  mode = undefined;
});

/**
 * Memory of a deployment waiting for its environment: its execution loops through Acquire Lock and Wait For
 * Lock for as long as it waits. The count of engine events the server retains for it must not grow per round
 * (they used to be kept for the whole execution: about 1.5 kB of heap per round here, measured with gc).
 */

describe('a deployment waiting for its environment in local mode', () => {
  it('retains no more of its execution with each round of waiting', async () => {
    let releaseDeploy: () => void = () => {};
    let deploys = 0;
    // The first deployment's deploy job holds the environment until the test releases it.
    const execute: JobExecutor = (job) =>
      job.job === 'build'
        ? Promise.resolve(BUILD_OUTPUT)
        : deploys++ > 0
          ? Promise.resolve({ status: 'SUCCEEDED' })
          : new Promise((resolve) => {
              releaseDeploy = () => resolve({ status: 'SUCCEEDED' });
            });
    let acquireCalls = 0;
    const rounds: (() => void)[] = [];
    const countAcquires = (store: DeploymentStore): DeploymentStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (property !== 'acquireLock') return value;
          return async (...args: unknown[]) => {
            acquireCalls++;
            for (const round of rounds.splice(0)) round();
            return value.apply(target, args);
          };
        },
      });
    mode = await startLocalMode({ executeJob: execute, wrapStore: countAcquires });
    const executions = new Map<string, RunningExecution>();
    const { engine } = mode.orchestrator;
    const start = engine.start.bind(engine);
    engine.start = (name, input) => {
      const running = start(name, input);
      executions.set(name, running);
      return running;
    };
    const holder = await mode.deploy();
    await mode.waitUntil(holder, (d) => d.phase === 'DEPLOYING');
    const waiter = await mode.deploy();
    const atRound = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (acquireCalls >= n ? resolve() : rounds.push(check));
        check();
      });
    const base = acquireCalls;
    await atRound(base + 10);
    const earlyCount = executions.get(waiter)?.events.length;
    await atRound(base + 50);
    const lateCount = executions.get(waiter)?.events.length;
    releaseDeploy();
    // Forty more rounds of Acquire Lock and Wait For Lock, and not one more event held.
    expect(earlyCount).toBeDefined();
    expect(lateCount).toBe(earlyCount);
    await mode.waitUntil(waiter, (d) => d.status === 'SUCCEEDED');
  });
});
