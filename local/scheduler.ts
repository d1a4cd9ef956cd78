import { ulid } from 'ulid';
import { logger } from '#shared/logger.ts';
import type { Clock, WorkflowStarter } from '#shared/ports.ts';
import { cronOf, nextRun } from '#shared/registry/calendar.ts';
import type { ApplicationConfig, Registry } from '#shared/registry/registry.ts';

/**
 * Local mode's stand-in for EventBridge Scheduler: each enabled schedule of the registry starts the deploy
 * workflow at its times, in its time zone, with exactly the input template.yaml gives the AWS schedule
 * (scheduleTickInput). The workflow's first step claims the tick, so a tick started twice deploys once.
 */

export type Schedule = ApplicationConfig['schedules'][number];

/** The execution input of one tick, in AWS and locally (`scheduledTime` is the tick, not the start). */
export function scheduleTickInput(application: string, schedule: Schedule, scheduledTime: string) {
  return {
    application,
    environment: schedule.to,
    promoteFrom: schedule.from,
    schedule: { name: schedule.name, scheduledTime },
    requester: { type: 'schedule', scheduleName: schedule.name },
    trigger: 'schedule',
    reason: `scheduled promotion ${schedule.name}`,
  };
}

/**
 * How long a tick may be late and still start. template.yaml gives EventBridge Scheduler the same age in
 * its RetryPolicy; locally a tick is late when the machine slept through it.
 */
export const MAX_TICK_AGE_SECONDS = 3600;

/**
 * Timers run on a monotonic clock that stops while the machine sleeps: waits are capped so the wall clock is
 * looked at again at least this often (and Node's setTimeout overflows beyond ~24.8 days anyway).
 */
export const MAX_WAIT_MS = 10 * 60_000;

export interface Timer {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const systemTimer: Timer = {
  set: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    // The HTTP server keeps the process alive; a pending tick must not.
    handle.unref();
    return handle;
  },
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface ScheduledPromotion {
  application: string;
  schedule: Schedule;
}

/** The registry's enabled schedules, in registry order. */
export function enabledSchedules(registry: Registry): ScheduledPromotion[] {
  return Object.entries(registry.applications).flatMap(([application, app]) =>
    app.schedules.filter((schedule) => schedule.enabled).map((schedule) => ({ application, schedule })),
  );
}

/** EventBridge Scheduler's `<aws.scheduler.scheduled-time>` form: whole seconds, `Z`. */
export const formatScheduledTime = (time: Date): string => time.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The next tick strictly after `after`. As in EventBridge Scheduler, a cron time that does not exist on the
 * day the clocks go forward is skipped (the cron parser would move it an hour later), and a time that
 * occurs twice when they go back runs once. Rates are fixed durations counted from `origin`.
 */
export function nextTick(schedule: Schedule, after: Date, origin: Date): Date {
  const expression = schedule.schedule.trim();
  if (!expression.startsWith('cron(')) return nextRun(expression, schedule.timezone, after, origin);
  const cron = cronOf(expression, schedule.timezone);
  let candidate = nextRun(expression, schedule.timezone, after);
  // A shifted time matches no field of the expression in local time; a year of skips cannot happen.
  for (let i = 0; i < 366 && !cron.match(candidate); i++) {
    candidate = nextRun(expression, schedule.timezone, candidate);
  }
  return candidate;
}

interface Armed extends ScheduledPromotion {
  due: Date;
  handle?: unknown;
}

export interface LocalSchedulerOptions {
  registry: Registry;
  workflow: WorkflowStarter;
  clock?: Clock;
  timer?: Timer;
  newId?: () => string;
}

export class LocalScheduler {
  private readonly workflow: WorkflowStarter;
  private readonly clock: Clock;
  private readonly timer: Timer;
  private readonly newId: () => string;
  private readonly schedules: ScheduledPromotion[];
  private readonly armed: Armed[] = [];
  private readonly starting = new Set<Promise<unknown>>();
  private origin = new Date(0);
  private running = false;

  constructor(options: LocalSchedulerOptions) {
    this.workflow = options.workflow;
    this.clock = options.clock ?? { now: () => new Date() };
    this.timer = options.timer ?? systemTimer;
    this.newId = options.newId ?? ulid;
    this.schedules = enabledSchedules(options.registry);
  }

  /** Arms every enabled schedule for its next tick after now. Rates count from now. */
  start(): void {
    if (this.running) return;
    this.running = true;
    // Whole seconds, so a rate schedule's ticks have the form AWS gives them.
    this.origin = new Date(Math.floor(this.clock.now().getTime() / 1000) * 1000);
    for (const promotion of this.schedules) {
      const entry: Armed = { ...promotion, due: nextTick(promotion.schedule, this.origin, this.origin) };
      this.armed.push(entry);
      this.arm(entry);
    }
  }

  /** No more ticks. Starts already handed to the workflow are not undone. */
  stop(): void {
    this.running = false;
    for (const entry of this.armed) this.timer.clear(entry.handle);
    this.armed.length = 0;
  }

  /** Each armed schedule's next tick (for the banner and tests). */
  upcoming(): { application: string; schedule: Schedule; at: Date }[] {
    return this.armed.map(({ application, schedule, due }) => ({ application, schedule, at: due }));
  }

  /** Resolves when every start begun so far has been handed to the workflow (tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.starting]);
  }

  /**
   * Starts the workflow for one tick with a fresh execution name, as EventBridge Scheduler does on every
   * delivery. Starting the same tick twice is harmless: the second execution ends DUPLICATE_TICK.
   */
  async fire(application: string, schedule: Schedule, scheduledTime: Date): Promise<string> {
    const deploymentId = this.newId();
    const input = scheduleTickInput(application, schedule, formatScheduledTime(scheduledTime));
    const started = this.workflow.start(deploymentId, input);
    this.starting.add(started);
    try {
      await started;
      logger.info('scheduled promotion started', {
        deploymentId,
        application,
        schedule: schedule.name,
        from: schedule.from,
        to: schedule.to,
        scheduledTime: input.schedule.scheduledTime,
      });
      return deploymentId;
    } finally {
      this.starting.delete(started);
    }
  }

  private arm(entry: Armed): void {
    const wait = entry.due.getTime() - this.clock.now().getTime();
    entry.handle = this.timer.set(() => this.wake(entry), Math.min(Math.max(wait, 0), MAX_WAIT_MS));
  }

  private wake(entry: Armed): void {
    if (!this.running) return;
    const now = this.clock.now();
    if (now.getTime() < entry.due.getTime()) {
      this.arm(entry);
      return;
    }
    const due = entry.due;
    // The next tick is armed before this one starts, so a slow start cannot delay it.
    entry.due = nextTick(entry.schedule, now, this.origin);
    this.arm(entry);
    const context = { application: entry.application, schedule: entry.schedule.name };
    if (now.getTime() - due.getTime() > MAX_TICK_AGE_SECONDS * 1000) {
      logger.warn('scheduled promotion missed: the tick is too old to start', {
        ...context,
        scheduledTime: formatScheduledTime(due),
        now: now.toISOString(),
      });
      return;
    }
    this.fire(entry.application, entry.schedule, due).catch((error: unknown) => {
      logger.error('scheduled promotion could not start', {
        ...context,
        scheduledTime: formatScheduledTime(due),
        error,
      });
    });
  }
}
