import { afterEach, describe, expect, it } from 'vitest';
import type { DeploymentStore } from '#shared/ports.ts';
import { type LocalMode, startLocalMode } from '#test/support/local-mode.ts';

let mode: LocalMode | undefined;
afterEach(async () => {
  await mode?.close();
  mode = undefined;
});

/**
 * Local mode end to end (HTTP API, the real ASL on the local engine, the local store on dynalite): a burst
 * of requests on one environment is served one at a time in request order, with the lock handed from each
 * deployment to the next through parked task tokens.
 */
describe('a burst of 30 requests on one environment in local mode', () => {
  it('runs every one, in request order, never two at once, each waiter parking instead of polling', async () => {
    const calls = { parkTicket: 0 };
    const countParks = (store: DeploymentStore): DeploymentStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (property !== 'parkTicket') return value;
          return async (...args: unknown[]) => {
            calls[property]++;
            return value.apply(target, args);
          };
        },
      });
    mode = await startLocalMode({ wrapStore: countParks });
    const local = mode;
    // Posted one after another (request order is the order of acceptance), running concurrently.
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await local.deploy());
    const finished = await Promise.all(
      ids.map((id) => local.waitUntil(id, (d) => d.status !== 'RUNNING' && d.status !== 'QUEUED')),
    );
    expect(finished.map((d) => d.status)).toEqual(Array(30).fill('SUCCEEDED'));

    const spans = await Promise.all(
      ids.map(async (id) => {
        const events = await local.orchestrator.store.listEvents(id);
        const at = (type: string) => events.find((e) => e.type === type)?.at ?? '';
        return { id, acquired: at('LOCK_ACQUIRED'), released: at('LOCK_RELEASED') };
      }),
    );
    // Request order: the lock went to them in the order they were accepted.
    const byAcquisition = [...spans].sort((a, b) => a.acquired.localeCompare(b.acquired));
    expect(byAcquisition.map((s) => s.id)).toEqual(ids);
    for (let i = 1; i < byAcquisition.length; i++) {
      expect(byAcquisition[i]!.acquired >= byAcquisition[i - 1]!.released).toBe(true);
    }
    // Every deployment that had to wait parked exactly once (no polling rounds, no spurious wake-up).
    const waited = (
      await Promise.all(
        ids.map(async (id) => (await local.orchestrator.store.listEvents(id)).map((e) => e.type)),
      )
    ).filter((types) => types.includes('LOCK_WAITING')).length;
    expect(waited).toBeGreaterThan(0);
    expect(calls.parkTicket).toBe(waited);
    expect(await local.orchestrator.store.listTickets('hello-world', 'staging', { limit: 50 })).toEqual([]);
    expect(await local.orchestrator.store.getLock('hello-world', 'staging')).toBeUndefined();
  }, 120_000);
});
