import type { Deployment } from '#shared/types.ts';

/**
 * The DORA four for one application+environment over a window, from its deployment records alone. The
 * definitions are in docs/metrics.md; this file and that page change together.
 */

export interface MetricsWindow {
  from: string;
  to: string;
}

export interface Metrics {
  application: string;
  environment: string;
  from: string;
  to: string;
  /** Deployments counted (requested in the window, real, ended SUCCEEDED or FAILED). */
  deployments: number;
  deploymentFrequency: { succeeded: number; days: number; perDay: number };
  leadTime: {
    /** Successful deployments whose commit time is known. */
    samples: number;
    medianSeconds: number | null;
    meanSeconds: number | null;
    /** Why there are no samples, when commit times cannot be known where this runs. */
    unavailable?: string;
  };
  changeFailureRate: { failed: number; total: number; rate: number | null };
  timeToRestore: {
    restored: number;
    /** Failures with no later success yet. */
    unrestored: number;
    medianSeconds: number | null;
    meanSeconds: number | null;
  };
  /** One bucket per UTC day of the window, for charts. */
  daily: { day: string; succeeded: number; failed: number }[];
}

/**
 * `inWindow`: the environment's deployments requested in [from, to), oldest first. `after`: those requested
 * later (oldest first), read only to find the success that restored a failure near the window's end.
 * `commitTimes`: commit -> ISO commit time, for the commits known.
 */
export function computeMetrics(input: {
  application: string;
  environment: string;
  window: MetricsWindow;
  inWindow: Deployment[];
  after: Deployment[];
  commitTimes: ReadonlyMap<string, string>;
  leadTimeUnavailable?: string;
}): Metrics {
  const { window } = input;
  const counted = input.inWindow.filter(counts);
  const succeeded = counted.filter((d) => d.status === 'SUCCEEDED');
  const failed = counted.filter((d) => d.status === 'FAILED');
  const days = (Date.parse(window.to) - Date.parse(window.from)) / DAY_MS;

  const leadTimes: number[] = [];
  for (const d of succeeded) {
    const commit = d.buildOutput?.resolvedCommit ?? d.resolvedCommit;
    // The commit time the build job recorded; else the local git lookup (deployments from before it did).
    const committedAt = d.buildOutput?.commitTime ?? (commit ? input.commitTimes.get(commit) : undefined);
    if (committedAt && d.finishedAt) leadTimes.push(seconds(committedAt, d.finishedAt));
  }

  // A restore episode starts at the first FAILED after a success (or the window's start) and ends when the
  // next real deployment SUCCEEDS; further failures in between belong to the same episode.
  const restores: number[] = [];
  let unrestored = 0;
  let failedSince: string | undefined;
  for (const d of [...counted, ...input.after.filter(counts)]) {
    const inside = d.requestedAt < window.to;
    if (d.status === 'FAILED' && inside && failedSince === undefined) failedSince = d.finishedAt;
    else if (d.status === 'SUCCEEDED' && failedSince !== undefined && d.finishedAt) {
      restores.push(seconds(failedSince, d.finishedAt));
      failedSince = undefined;
    }
  }
  if (failedSince !== undefined) unrestored = 1;

  return {
    application: input.application,
    environment: input.environment,
    from: window.from,
    to: window.to,
    deployments: counted.length,
    deploymentFrequency: { succeeded: succeeded.length, days, perDay: round(succeeded.length / days) },
    leadTime: {
      samples: leadTimes.length,
      medianSeconds: median(leadTimes),
      meanSeconds: mean(leadTimes),
      ...(leadTimes.length === 0 && input.leadTimeUnavailable
        ? { unavailable: input.leadTimeUnavailable }
        : {}),
    },
    changeFailureRate: {
      failed: failed.length,
      total: counted.length,
      rate: counted.length === 0 ? null : round(failed.length / counted.length),
    },
    timeToRestore: {
      restored: restores.length,
      unrestored,
      medianSeconds: median(restores),
      meanSeconds: mean(restores),
    },
    daily: dailyBuckets(window, counted),
  };
}

/** Real changes that ended: dry runs, refusals, cancellations and superseded requests changed nothing. */
function counts(d: Deployment): boolean {
  return !d.dryRun && (d.status === 'SUCCEEDED' || d.status === 'FAILED') && d.finishedAt !== undefined;
}

const DAY_MS = 86_400_000;
const seconds = (from: string, to: string) => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
const round = (n: number) => Math.round(n * 1000) / 1000;

/** The middle value; for an even count, the mean of the two middle values. */
function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return round(value ?? 0);
}

function mean(values: number[]): number | null {
  return values.length === 0 ? null : round(values.reduce((a, b) => a + b, 0) / values.length);
}

function dailyBuckets(window: MetricsWindow, counted: Deployment[]) {
  const buckets = new Map<string, { day: string; succeeded: number; failed: number }>();
  const first = new Date(window.from.slice(0, 10));
  for (let t = first.getTime(); t < Date.parse(window.to); t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    buckets.set(day, { day, succeeded: 0, failed: 0 });
  }
  for (const d of counted) {
    const bucket = buckets.get(d.requestedAt.slice(0, 10));
    if (!bucket) continue;
    if (d.status === 'SUCCEEDED') bucket.succeeded++;
    else bucket.failed++;
  }
  return [...buckets.values()];
}
