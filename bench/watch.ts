import { createFollowBackoff } from '../local/cli/commands.ts';
import type { CostContext } from './cost.ts';
import { ASSUMPTIONS, priceRun } from './cost-model.ts';
import { round } from './stats.ts';

/**
 * A watched deployment (`crossdeploy deploy --wait`), priced in AWS: the CLI's own back-off policy run
 * against a timeline of the moments a deployment changes, counting the API requests it makes. Computed,
 * not timed: a 7-minute deployment cannot be waited for in a bench run, and the count depends only on the
 * policy and the timeline. The timeline: the request, validation and build start at once; the build job
 * runs `buildSeconds`; the lock, the role check and the deploy start follow at once; the deploy job runs
 * the rest; the result, release and lock release come together.
 */

export interface WatchResult {
  deploymentSeconds: number;
  buildSeconds: number;
  requests: number;
  /** The same deployment watched as before: two GETs (record and events) every 500 ms. */
  requestsBefore: number;
  usd: number;
  usdBefore: number;
  /** The orchestration of one uncontended deployment, for scale. */
  usdOrchestration: number;
}

/** Each follow request: the API function, one GetItem of the record and one Query of the events (1 RRU each). */
const READ_UNITS_PER_FOLLOW = 2;
/** Before: a GET of the record (1 GetItem) and a GET of the events (GetItem for the read check + Query). */
const READ_UNITS_PER_OLD_POLL = 3;

export function measureWatch(
  options: { deploymentSeconds: number; buildSeconds: number },
  usdOrchestration: number,
  context: CostContext,
): WatchResult {
  const end = options.deploymentSeconds * 1000;
  const changes = [0, options.buildSeconds * 1000, end];
  const backoff = createFollowBackoff(0);
  let now = 0;
  let lastPoll = Number.NEGATIVE_INFINITY;
  let polls = 0;
  for (;;) {
    polls++;
    const changed = changes.some((t) => t > lastPoll && t <= now);
    lastPoll = now;
    if (now >= end) break;
    now += backoff.next(now, changed);
  }
  // The POST that started it, and the polls.
  const requests = 1 + polls;
  const requestsBefore = 1 + 2 * (Math.floor(end / 500) + 1);
  // Each request: the HTTP API, the API function (the first cold, the rest warm: polls 1–5 s apart), its
  // reads, its trace when the function is traced, and its log lines.
  const api = context.settings.functions.ApiFunction;
  const priceRequests = (count: number, readUnitsEach: number) =>
    priceRun(
      {
        transitions: 0,
        writeUnits: 0,
        readUnits: count * readUnitsEach,
        invocations: [{ function: 'ApiFunction', count, handlerMs: ASSUMPTIONS.handlerMs, measured: false }],
        apiRequests: count,
        traces: api?.tracing ? count : 0,
        logBytes: count * ASSUMPTIONS.lambdaLogBytesPerInvocation,
      },
      context.settings,
      context.init,
      1 / count,
    ).total;
  const usd = priceRequests(polls, READ_UNITS_PER_FOLLOW);
  const oldPolls = (requestsBefore - 1) / 2;
  const usdBefore = priceRequests(2 * oldPolls, READ_UNITS_PER_OLD_POLL / 2);
  return {
    ...options,
    requests,
    requestsBefore,
    usd: round(usd, 8),
    usdBefore: round(usdBefore, 8),
    usdOrchestration,
  };
}
