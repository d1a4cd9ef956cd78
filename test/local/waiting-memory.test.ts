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
 * Memory and work of a deployment waiting for its environment: it used to loop through Acquire Lock and a
 * Wait state for as long as it waited (and each round's engine events were kept). Now it parks at "Wait For
 * Lock" with its token on its ticket: no rounds at all until the release hands it the lock.
 */

describe('a deployment waiting for its environment in local mode', () => {
  it('parks: no Acquire Lock rounds and no new engine events while the holder deploys', async () => {
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
    const countAcquires = (store: DeploymentStore): DeploymentStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (property !== 'acquireLock') return value;
          return async (...args: unknown[]) => {
            acquireCalls++;
            return value.apply(target, args);
          };
        },
      });
    mode = await startLocalMode({ executeJob: execute, wrapStore: countAcquires });
    const executions = new Map<string, RunningExecution>();
    const { engine, store } = mode.orchestrator;
    const start = engine.start.bind(engine);
    engine.start = (name, input) => {
      const running = start(name, input);
      executions.set(name, running);
      return running;
    };
    const holder = await mode.deploy();
    await mode.waitUntil(holder, (d) => d.phase === 'DEPLOYING');
    const waiter = await mode.deploy();
    await mode.waitUntil(waiter, (d) => d.phase === 'WAITING_FOR_LOCK');
    for (;;) {
      const tickets = await store.listTickets('hello-world', 'staging', { limit: 5 });
      if (tickets.some((t) => t.deploymentId === waiter && t.taskToken)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The token is stored before the waiter's one re-check of the lock (so that a release in between is not
    // missed): that re-check may still be on its way when the token shows.
    const callsAtPark = acquireCalls;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(acquireCalls - callsAtPark).toBeLessThanOrEqual(1);
    const callsParked = acquireCalls;
    const eventsParked = executions.get(waiter)?.events.length;
    // Local Wait states last 10 ms here: the old loop would have run dozens of rounds in this time.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(acquireCalls).toBe(callsParked);
    expect(executions.get(waiter)?.events.length).toBe(eventsParked);
    releaseDeploy();
    await mode.waitUntil(waiter, (d) => d.status === 'SUCCEEDED');
  });
});
