import { describe, expect, it } from 'vitest';
import type { Deployment } from '#shared/types.ts';
import type { ReconcileDeps } from '../../functions/reconcile/core.ts';
import { LostEventSweep } from '../../local/sweep.ts';

/** The timer around the reconciler's sweepLostJobEvents in local mode. */

function deps(onList: () => void, fail = false): ReconcileDeps {
  return {
    store: {
      listActive: async () => {
        onList();
        if (fail) throw new Error('store down');
        return [] as Deployment[];
      },
    } as never,
    clock: { now: () => new Date() },
    registry: { applications: {} } as never,
    runner: { describe: async () => [] } as never,
    stacks: { stackStatus: async () => undefined },
    leaseSeconds: 600,
    tokens: { succeed: async () => 'gone' as const, fail: async () => 'gone' as const },
    sleep: async () => {},
  };
}

describe('the lost-event sweep of local mode', () => {
  it('sweeps again and again once started, and no more once stopped', async () => {
    let sweeps = 0;
    const { promise: thrice, resolve } = Promise.withResolvers<void>();
    const sweep = new LostEventSweep(
      deps(() => {
        if (++sweeps === 3) resolve();
      }),
      5,
    );
    sweep.start();
    await thrice;
    await sweep.stop();
    const after = sweeps;
    await new Promise((r) => setTimeout(r, 50));
    expect(sweeps).toBe(after);
  });

  it('survives a sweep the store fails, reporting nothing delivered', async () => {
    const sweep = new LostEventSweep(deps(() => {}, true));
    expect(await sweep.runOnce()).toBe(0);
  });
});
