import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readLocalConfig } from '#local/config.ts';
import {
  LocalScheduler,
  MAX_TICK_AGE_SECONDS,
  MAX_WAIT_MS,
  nextTick,
  type Schedule,
  type scheduleTickInput,
  type Timer,
} from '#local/scheduler.ts';
import { logger } from '#shared/logger.ts';
import type { WorkflowStarter } from '#shared/ports.ts';
import { parseRegistry, type Registry } from '#shared/registry/registry.ts';

/** A clock and a timer in one: time moves only when the test advances it, firing due timers in order. */
class FakeTime implements Timer {
  at: number;
  private readonly pending = new Map<number, { due: number; callback: () => void }>();
  private nextId = 1;
  readonly waits: number[] = [];

  constructor(start: string) {
    this.at = Date.parse(start);
  }

  now = () => new Date(this.at);

  set(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.waits.push(ms);
    this.pending.set(id, { due: this.at + ms, callback });
    return id;
  }

  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get armed(): number {
    return this.pending.size;
  }

  /** Moves the clock to `time`, firing every timer due on the way at its due time. */
  async advanceTo(time: string): Promise<void> {
    const target = Date.parse(time);
    for (;;) {
      const [id, next] = [...this.pending.entries()].sort(([, a], [, b]) => a.due - b.due)[0] ?? [];
      if (id === undefined || !next || next.due > target) break;
      this.pending.delete(id);
      this.at = Math.max(this.at, next.due);
      next.callback();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.at = target;
  }

  /** The machine sleeps: the wall clock jumps, timers fire only afterwards. */
  sleepUntil(time: string): void {
    this.at = Date.parse(time);
  }
}

class RecordingStarter implements WorkflowStarter {
  readonly starts: { deploymentId: string; input: ReturnType<typeof scheduleTickInput> }[] = [];
  failNext = false;

  async start(deploymentId: string, input: unknown): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('the local server is shutting down');
    }
    this.starts.push({ deploymentId, input: input as ReturnType<typeof scheduleTickInput> });
  }

  get times(): string[] {
    return this.starts.map((s) => s.input.schedule.scheduledTime);
  }
}

function registryWith(schedules: Partial<Schedule>[]): Registry {
  const environment = (account: string, extra: Record<string, unknown> = {}) => ({
    accountId: account,
    region: 'eu-west-1',
    deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-deploy`,
    executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-cfn-exec`,
    stackName: `hello-world-${account}`,
    artifactsBucket: `crossdeploy-artifacts-${account}-eu-west-1`,
    allowedRequesters: { schedule: ['promote-*'] },
    ...extra,
  });
  return parseRegistry({
    applications: {
      'hello-world': {
        source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
        environments: {
          staging: environment('111111111111'),
          prod: environment('222222222222', { promoteFrom: ['staging'] }),
        },
        schedules: schedules.map((schedule) => ({
          name: 'promote-staging-to-prod',
          from: 'staging',
          to: 'prod',
          schedule: 'cron(0 10 ? * MON-FRI *)',
          timezone: 'Europe/Berlin',
          ...schedule,
        })),
      },
    },
  });
}

function setUp(start: string, schedules: Partial<Schedule>[] = [{}]) {
  const time = new FakeTime(start);
  const workflow = new RecordingStarter();
  let n = 0;
  const scheduler = new LocalScheduler({
    registry: registryWith(schedules),
    workflow,
    clock: time,
    timer: time,
    newId: () => `01SCHEDULED${String(++n).padStart(4, '0')}`,
  });
  return { time, workflow, scheduler };
}

beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation((() => true) as never);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('LocalScheduler', () => {
  it('fires a weekday 10:00 Europe/Berlin schedule at 08:00Z before the October clock change and 09:00Z after', async () => {
    // Friday 2026-10-23 is summer time (UTC+2); the clocks go back on Sunday 2026-10-25; Monday is UTC+1.
    const { time, workflow, scheduler } = setUp('2026-10-23T06:00:00Z');
    scheduler.start();
    expect(scheduler.upcoming().map((u) => u.at.toISOString())).toEqual(['2026-10-23T08:00:00.000Z']);

    await time.advanceTo('2026-10-23T07:59:59Z');
    expect(workflow.starts).toEqual([]);
    await time.advanceTo('2026-10-23T08:00:00Z');
    expect(workflow.times).toEqual(['2026-10-23T08:00:00Z']);
    expect(scheduler.upcoming().map((u) => u.at.toISOString())).toEqual(['2026-10-26T09:00:00.000Z']);

    await time.advanceTo('2026-10-26T08:59:59Z'); // the weekend passes without a tick
    expect(workflow.times).toEqual(['2026-10-23T08:00:00Z']);
    await time.advanceTo('2026-10-27T12:00:00Z');
    expect(workflow.times).toEqual(['2026-10-23T08:00:00Z', '2026-10-26T09:00:00Z', '2026-10-27T09:00:00Z']);
    scheduler.stop();
  });

  it('starts the workflow with exactly the input the AWS schedule sends, under a fresh execution name each time', async () => {
    const { time, workflow, scheduler } = setUp('2026-11-30T08:30:00Z');
    scheduler.start();
    await time.advanceTo('2026-12-01T09:00:00Z');
    expect(workflow.starts).toEqual([
      {
        deploymentId: '01SCHEDULED0001',
        input: {
          application: 'hello-world',
          environment: 'prod',
          promoteFrom: 'staging',
          schedule: { name: 'promote-staging-to-prod', scheduledTime: '2026-11-30T09:00:00Z' },
          requester: { type: 'schedule', scheduleName: 'promote-staging-to-prod' },
          trigger: 'schedule',
          reason: 'scheduled promotion promote-staging-to-prod',
        },
      },
      expect.objectContaining({ deploymentId: '01SCHEDULED0002' }),
    ]);
    scheduler.stop();
  });

  it('logs each scheduled start with its deployment id and tick', async () => {
    const info = vi.spyOn(logger, 'info');
    const { time, scheduler } = setUp('2026-11-30T08:30:00Z');
    scheduler.start();
    await time.advanceTo('2026-11-30T09:00:00Z');
    expect(info).toHaveBeenCalledWith('scheduled promotion started', {
      deploymentId: '01SCHEDULED0001',
      application: 'hello-world',
      schedule: 'promote-staging-to-prod',
      from: 'staging',
      to: 'prod',
      scheduledTime: '2026-11-30T09:00:00Z',
    });
    scheduler.stop();
  });

  it('counts a rate schedule from its start, in whole seconds', async () => {
    const { time, workflow, scheduler } = setUp('2026-11-30T08:00:00.750Z', [
      { name: 'promote-hourly', schedule: 'rate(1 hour)', timezone: 'UTC' },
    ]);
    scheduler.start();
    await time.advanceTo('2026-11-30T10:30:00Z');
    expect(workflow.times).toEqual(['2026-11-30T09:00:00Z', '2026-11-30T10:00:00Z']);
    scheduler.stop();
  });

  it('runs only enabled schedules', async () => {
    const { time, workflow, scheduler } = setUp('2026-11-30T08:00:00Z', [
      { name: 'promote-paused', enabled: false },
      { name: 'promote-live', schedule: 'cron(0 12 ? * MON-FRI *)' },
    ]);
    scheduler.start();
    expect(scheduler.upcoming().map((u) => u.schedule.name)).toEqual(['promote-live']);
    await time.advanceTo('2026-11-30T12:00:00Z');
    expect(workflow.starts.map((s) => s.input.schedule.name)).toEqual(['promote-live']);
    scheduler.stop();
  });

  it('re-reads the wall clock at least every 10 minutes, starting nothing before the tick is due', async () => {
    const { time, workflow, scheduler } = setUp('2026-11-30T06:00:00Z');
    scheduler.start();
    await time.advanceTo('2026-11-30T08:59:00Z');
    expect(workflow.starts).toEqual([]);
    expect(Math.max(...time.waits)).toBe(MAX_WAIT_MS);
    expect(time.armed).toBe(1);
    scheduler.stop();
  });

  it('skips a tick the machine slept through for more than an hour, and arms the next one', async () => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => {});
    const { time, workflow, scheduler } = setUp('2026-11-30T08:55:00Z');
    scheduler.start();
    expect(MAX_TICK_AGE_SECONDS).toBe(3600);
    time.sleepUntil('2026-11-30T10:00:01Z');
    await time.advanceTo('2026-11-30T12:00:00Z');
    expect(workflow.starts).toEqual([]);
    expect(warn).toHaveBeenCalledWith(
      'scheduled promotion missed: the tick is too old to start',
      expect.objectContaining({ schedule: 'promote-staging-to-prod', scheduledTime: '2026-11-30T09:00:00Z' }),
    );
    expect(scheduler.upcoming()[0]?.at.toISOString()).toBe('2026-12-01T09:00:00.000Z');
    scheduler.stop();
  });

  it('still starts a tick the machine slept through for less than an hour', async () => {
    const { time, workflow, scheduler } = setUp('2026-11-30T08:55:00Z');
    scheduler.start();
    time.sleepUntil('2026-11-30T09:40:00Z');
    await time.advanceTo('2026-11-30T09:45:00Z');
    expect(workflow.times).toEqual(['2026-11-30T09:00:00Z']);
    scheduler.stop();
  });

  it('logs a start the workflow refused and keeps the schedule armed', async () => {
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const { time, workflow, scheduler } = setUp('2026-11-30T08:30:00Z');
    scheduler.start();
    workflow.failNext = true;
    await time.advanceTo('2026-11-30T09:00:00Z');
    expect(error).toHaveBeenCalledWith(
      'scheduled promotion could not start',
      expect.objectContaining({ schedule: 'promote-staging-to-prod', scheduledTime: '2026-11-30T09:00:00Z' }),
    );
    await time.advanceTo('2026-12-01T09:00:00Z');
    expect(workflow.times).toEqual(['2026-12-01T09:00:00Z']);
    scheduler.stop();
  });

  it('starts nothing once stopped, and leaves no timer behind', async () => {
    const { time, workflow, scheduler } = setUp('2026-11-30T08:30:00Z');
    scheduler.start();
    expect(time.armed).toBe(1);
    scheduler.stop();
    expect(time.armed).toBe(0);
    await time.advanceTo('2026-12-02T09:00:00Z');
    expect(workflow.starts).toEqual([]);
    expect(scheduler.upcoming()).toEqual([]);
  });
});

describe('nextTick across daylight-saving changes (EventBridge Scheduler semantics)', () => {
  const berlin = (schedule: string): Schedule => ({
    name: 'promote-nightly',
    from: 'staging',
    to: 'prod',
    schedule,
    timezone: 'Europe/Berlin',
    enabled: true,
  });
  const ticks = (schedule: Schedule, from: string, count: number) => {
    const out: string[] = [];
    let at = new Date(from);
    for (let i = 0; i < count; i++) {
      at = nextTick(schedule, at, new Date(from));
      out.push(at.toISOString());
    }
    return out;
  };

  it('skips a time that does not exist when the clocks go forward', () => {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not happen that day.
    expect(ticks(berlin('cron(30 2 * * ? *)'), '2026-03-27T12:00:00Z', 3)).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-30T00:30:00.000Z',
      '2026-03-31T00:30:00.000Z',
    ]);
  });

  it('runs a time that happens twice when the clocks go back only once', () => {
    expect(ticks(berlin('cron(30 2 * * ? *)'), '2026-10-24T12:00:00Z', 2)).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('keeps a rate a fixed duration through the change', () => {
    const daily = { ...berlin('rate(1 day)') };
    expect(ticks(daily, '2026-10-24T08:00:00Z', 2)).toEqual([
      '2026-10-25T08:00:00.000Z',
      '2026-10-26T08:00:00.000Z',
    ]);
  });
});

describe('CROSSDEPLOY_SCHEDULES', () => {
  it('runs schedules unless it is off', () => {
    expect(readLocalConfig({}).schedules).toBe(true);
    expect(readLocalConfig({ CROSSDEPLOY_SCHEDULES: 'on' }).schedules).toBe(true);
    expect(readLocalConfig({ CROSSDEPLOY_SCHEDULES: 'off' }).schedules).toBe(false);
  });

  it('refuses any other value, naming the variable', () => {
    expect(() => readLocalConfig({ CROSSDEPLOY_SCHEDULES: 'false' })).toThrow(
      /CROSSDEPLOY_SCHEDULES: must be on or off/,
    );
  });
});
