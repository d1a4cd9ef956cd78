import { logger } from '#shared/logger.ts';
import { type ReconcileDeps, sweepLostJobEvents, sweepParkedWaiters } from '../functions/reconcile/core.ts';

/** How often local mode looks for lost job ends (the deployed sweep runs every 5 minutes). */
export const SWEEP_INTERVAL_MS = 60_000;

/**
 * Local mode's lost-event sweep: the deployed reconciler's own core (sweepLostJobEvents) on a timer. A job
 * whose end could not be reported (the store down for longer than the report's retries) is found complete
 * here and its result delivered, so its deployment and the queue behind it do not wait for a restart.
 * The same timer is the safety net under the lock hand-over (sweepParkedWaiters), as the deployed sweep is:
 * the local engine cannot give a parked Task its lock-wait deadline as timeout.
 */
export class LostEventSweep {
  private readonly deps: ReconcileDeps;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<number> | undefined;

  constructor(deps: ReconcileDeps, intervalMs = SWEEP_INTERVAL_MS) {
    this.deps = deps;
    this.intervalMs = intervalMs;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  /** One sweep (never two at once); a store that fails it is logged and tried again next time. */
  runOnce(): Promise<number> {
    this.current ??= sweepLostJobEvents(this.deps)
      .then(async (delivered) => {
        if (delivered > 0) logger.info('lost job ends delivered', { delivered });
        const waiters = await sweepParkedWaiters(this.deps);
        if (waiters.handedOver.length + waiters.woken.length > 0)
          logger.info('parked waiters moved', waiters);
        return delivered;
      })
      .catch((error: unknown) => {
        logger.warn('the lost-event sweep failed; it runs again later', { error });
        return 0;
      })
      .finally(() => {
        this.current = undefined;
      });
    return this.current;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.current;
  }
}
