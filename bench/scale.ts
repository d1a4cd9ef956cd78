import type { Deployment } from '#shared/types.ts';
import { benchPairs, executionOf, type Pair, postDeployment, type Stack } from './harness.ts';
import { nowMs, percentile, pool, round, seededRandom, shuffle } from './stats.ts';

/**
 * Scale: `deployments` requests spread evenly over `pairs` application+environment pairs, in a seeded random
 * order, by `concurrency` clients that each send one and wait for it to end. Then the checks that make the
 * bench fail: every accepted deployment is in the store and in its environment's history (none lost), and in
 * no environment did two deployments hold it at once (from the deploy job's start to Record Result, the span
 * the lock protects, both by Date.now(), the clock of the engine's event timestamps).
 */

export interface ScaleResult {
  deployments: number;
  pairs: number;
  concurrency: number;
  lockPollMs: number;
  totalSeconds: number;
  perSecond: number;
  accepted: number;
  refused: number;
  lost: number;
  notSucceeded: Record<string, number>;
  overlaps: number;
  /** The same check on the lock itself: LOCK_ACQUIRED to LOCK_RELEASED, by the store's audit times. */
  lockOverlaps: number;
  /** Deploys that ran before an older request of the same environment (ticket order). */
  orderInversions: number;
  /** Deployments that waited for their environment at least once, and how often they parked (Wait For Lock). */
  lockWaits: { deployments: number; parks: number };
  postToTerminalMs: { p50: number; p99: number };
}

export async function measureScale(
  stack: Stack,
  options: { deployments: number; pairs: number; concurrency: number; lockPollMs: number; seed: number },
): Promise<ScaleResult> {
  const pairs = benchPairs(options.pairs);
  const perPair = Math.ceil(options.deployments / pairs.length);
  const order = shuffle(
    pairs.flatMap((pair) => Array.from({ length: perPair }, () => pair)).slice(0, options.deployments),
    seededRandom(options.seed),
  );
  const accepted = new Map<string, Pair>();
  const durations: number[] = [];
  let refused = 0;
  const started = nowMs();
  await pool(order, options.concurrency, async (pair) => {
    const posted = await postDeployment(stack.url, pair, 'bench: scale');
    const id = posted.body.deploymentId;
    if (posted.status !== 202 || !id) {
      refused++;
      return;
    }
    accepted.set(id, pair);
    await executionOf(stack, id);
    durations.push(nowMs() - posted.started);
  });
  const totalSeconds = (nowMs() - started) / 1000;

  // Checks, after the fact: the store, the history API, the engine's events and the jobs' start times.
  const records = new Map<string, Deployment>();
  for (const id of accepted.keys()) {
    const record = await stack.store.getDeployment(id);
    if (record) records.set(id, record);
  }
  const inHistory = new Set<string>();
  for (const pair of pairs) for (const id of await historyIds(stack.url, pair)) inHistory.add(id);
  const lost = [...accepted.keys()].filter((id) => !records.has(id) || !inHistory.has(id)).length;

  const notSucceeded: Record<string, number> = {};
  for (const record of records.values()) {
    if (record.status !== 'SUCCEEDED') {
      const key = `${record.status}${record.errorCode ? ` ${record.errorCode}` : ''}`;
      notSucceeded[key] = (notSucceeded[key] ?? 0) + 1;
    }
  }

  let lockWaitDeployments = 0;
  let lockPolls = 0;
  const spans = new Map<string, { id: string; start: number; end: number; ticket: string }[]>();
  for (const [id, pair] of accepted) {
    const execution = stack.executions.get(id);
    const polls = execution?.events.filter(
      (e) => e.type === 'StateEntered' && e.state?.name === 'Wait For Lock',
    ).length;
    if (polls) {
      lockWaitDeployments++;
      lockPolls += polls;
    }
    const deployStart = stack.jobStarts.find((j) => j.deploymentId === id && j.job === 'deploy');
    // Record Result releases the lock (and hands it on) before the Release Lock state: a span ends when
    // it is entered, by which time the deploy job is over and the lock is still held.
    const release = execution?.events.find(
      (e) => e.type === 'StateEntered' && e.state?.name === 'Record Result',
    );
    const record = records.get(id);
    if (!deployStart || !release || !record) continue;
    const key = `${pair.application}/${pair.environment}`;
    const list = spans.get(key) ?? [];
    list.push({
      id,
      start: deployStart.wallAt,
      end: Number(release.timestamp),
      ticket: `${record.requestedAt}#${id}`,
    });
    spans.set(key, list);
  }
  let overlaps = 0;
  let orderInversions = 0;
  for (const list of spans.values()) {
    list.sort((a, b) => a.start - b.start);
    let heldUntil = Number.NEGATIVE_INFINITY;
    for (const span of list) {
      // Record Result is entered after the deploy job's span; the next holder can only start after it.
      if (span.start < heldUntil) overlaps++;
      heldUntil = Math.max(heldUntil, span.end);
    }
    for (let i = 1; i < list.length; i++) if (list[i]!.ticket < list[i - 1]!.ticket) orderInversions++;
  }

  let lockOverlaps = 0;
  const held = new Map<string, { acquired: string; released: string }[]>();
  for (const [id, pair] of accepted) {
    const events = await stack.store.listEvents(id);
    const acquired = events.find((e) => e.type === 'LOCK_ACQUIRED' || e.type === 'LOCK_TAKEN_OVER')?.at;
    const released = events.find((e) => e.type === 'LOCK_RELEASED')?.at;
    if (!acquired || !released) continue;
    const key = `${pair.application}/${pair.environment}`;
    held.set(key, [...(held.get(key) ?? []), { acquired, released }]);
  }
  for (const list of held.values()) {
    list.sort((a, b) => a.acquired.localeCompare(b.acquired));
    for (let i = 1; i < list.length; i++) if (list[i]!.acquired < list[i - 1]!.released) lockOverlaps++;
  }

  return {
    deployments: options.deployments,
    pairs: pairs.length,
    concurrency: options.concurrency,
    lockPollMs: options.lockPollMs,
    totalSeconds: round(totalSeconds),
    perSecond: round(accepted.size / totalSeconds),
    accepted: accepted.size,
    refused,
    lost,
    notSucceeded,
    overlaps,
    lockOverlaps,
    orderInversions,
    lockWaits: { deployments: lockWaitDeployments, parks: lockPolls },
    postToTerminalMs: { p50: round(percentile(durations, 50)), p99: round(percentile(durations, 99)) },
  };
}

/** Every deployment id in an environment's history, page by page through GET /deployments. */
async function historyIds(url: string, pair: Pair): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ ...pair, limit: '100', ...(cursor ? { cursor } : {}) });
    const response = await fetch(`${url}/deployments?${query}`);
    if (response.status !== 200) throw new Error(`GET /deployments answered ${response.status}`);
    const page = (await response.json()) as { items: { deploymentId: string }[]; nextCursor?: string };
    ids.push(...page.items.map((item) => item.deploymentId));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}
