import { Cron } from 'croner';

/**
 * Time rules: EventBridge Scheduler expressions (the syntax template.yaml passes to AWS, and local mode
 * evaluates the same way) and freeze windows, always in a declared IANA time zone so daylight-saving
 * changes move the wall-clock time, not the UTC one.
 */

const EVENTBRIDGE_CRON = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/;
const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/**
 * EventBridge `cron(min hour day-of-month month day-of-week year)` as a five-field cron. EventBridge numbers
 * the days of the week 1–7 from Sunday, classic cron 0–6: numbers are written as names to avoid the trap.
 */
export function toFiveFieldCron(expression: string): string {
  const match = EVENTBRIDGE_CRON.exec(expression.trim());
  if (!match) throw new Error('expected cron(minutes hours day-of-month month day-of-week year)');
  const [, minute, hour, dom, month, dow, year] = match as unknown as string[];
  if (year !== '*') throw new Error('the year field must be *');
  if (dom !== '?' && dow !== '?') throw new Error('one of day-of-month and day-of-week must be ?');
  const days = dow!.replace(/\d+/g, (n) => {
    const name = DAY_NAMES[Number(n) - 1];
    if (!name) throw new Error(`day-of-week ${n} is not 1-7`);
    return name;
  });
  return [minute, hour, dom === '?' ? '*' : dom, month, dow === '?' ? '*' : days].join(' ');
}

export function cronProblem(expression: string): string | undefined {
  try {
    new Cron(toFiveFieldCron(expression));
    return undefined;
  } catch (error) {
    return `"${expression}" is not a valid EventBridge cron expression: ${(error as Error).message}`;
  }
}

export function scheduleProblem(expression: string): string | undefined {
  if (RATE.test(expression.trim())) return undefined;
  if (expression.trim().startsWith('cron(')) return cronProblem(expression);
  return `"${expression}" is neither cron(...) nor rate(n minutes|hours|days)`;
}

export function timezoneProblem(timezone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
    return undefined;
  } catch {
    return `"${timezone}" is not an IANA time zone`;
  }
}

/** The next fire time of a schedule after `after` (rate schedules count from `origin`). */
export function nextRun(expression: string, timezone: string, after: Date, origin: Date = after): Date {
  const rate = RATE.exec(expression.trim());
  if (rate) {
    const unit = rate[2]!.startsWith('minute')
      ? 60_000
      : rate[2]!.startsWith('hour')
        ? 3_600_000
        : 86_400_000;
    const period = Number(rate[1]) * unit;
    const elapsed = Math.max(0, after.getTime() - origin.getTime());
    return new Date(origin.getTime() + (Math.floor(elapsed / period) + 1) * period);
  }
  const next = cronOf(expression, timezone).nextRun(after);
  if (!next) throw new Error(`"${expression}" has no run after ${after.toISOString()}`);
  return next;
}

/** A pattern only: croner schedules nothing without a callback. */
export const cronOf = (expression: string, timezone: string): Cron =>
  new Cron(toFiveFieldCron(expression), { timezone });

export type FreezeWindow =
  | { name: string; cron: string; timezone: string; durationMinutes: number }
  | { name: string; start: string; end: string };

/** The freeze window `now` falls in, and when it ends; undefined when deployments may proceed. */
export function activeFreeze(
  windows: readonly FreezeWindow[],
  now: Date,
): { name: string; endsAt: string } | undefined {
  for (const window of windows) {
    if ('cron' in window) {
      // The latest opening at or before now (previousRuns is strictly before its reference).
      const [opened] = cronOf(window.cron, window.timezone).previousRuns(1, new Date(now.getTime() + 1000));
      if (!opened) continue;
      const ends = opened.getTime() + window.durationMinutes * 60_000;
      if (opened.getTime() <= now.getTime() && now.getTime() < ends) {
        return { name: window.name, endsAt: new Date(ends).toISOString() };
      }
    } else if (Date.parse(window.start) <= now.getTime() && now.getTime() < Date.parse(window.end)) {
      return { name: window.name, endsAt: new Date(window.end).toISOString() };
    }
  }
  return undefined;
}
