/**
 * `npm run bench`: cold start, orchestration overhead, ack latency, cost per deployment, scale and history, in
 * one run. Prints a markdown table and writes bench/results.json. Exits 1 on a correctness violation (a lost
 * record, two deployments in one environment at once), 2 if a measurement could not run, never on a slow
 * number. `--only=cold,overhead,ack,cost,scale,history` runs a subset; `--quick` runs small numbers to try
 * the bench out (not the numbers to quote). Those write their results to the temporary directory instead,
 * so that bench/results.json always holds a full run (the one README quotes).
 */

// The handlers' structured logs would bury the table. Set before anything imports the logger.
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Section } from './merge.ts';
import type { Results, ResultsFile } from './report.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const SECTIONS = ['cold', 'overhead', 'ack', 'cost', 'scale', 'history'] as const;

const { values } = parseArgs({
  options: { only: { type: 'string' }, quick: { type: 'boolean' }, merge: { type: 'boolean' } },
});
const only = new Set((values.only ?? SECTIONS.join(',')).split(',').map((s) => s.trim()));
const unknown = [...only].filter((s) => !(SECTIONS as readonly string[]).includes(s));
if (unknown.length > 0) {
  console.error(`bench: unknown section(s) ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
  process.exit(2);
}
const quick = values.quick === true;
const partial = quick || values.only !== undefined;
// --merge: the sections of --only replace theirs in bench/results.json, the rest of the full run stays.
const merge = values.merge === true;
if (merge && (quick || values.only === undefined)) {
  console.error('bench: --merge needs --only=<sections> and no --quick');
  process.exit(2);
}
const resultsFile = partial && !merge ? join(tmpdir(), 'crossdeploy-bench-results.json') : RESULTS;
const startedAt = Date.now();
const want = (section: (typeof SECTIONS)[number]) => only.has(section);

/** The numbers of the issue; --quick shrinks them. */
const PLAN = {
  coldSamples: quick ? 2 : 10,
  overhead: { count: quick ? 20 : 200, warmup: quick ? 2 : 10 },
  ack: { clients: 50, seconds: quick ? 3 : 10 },
  scale: { deployments: quick ? 100 : 1000, pairs: quick ? 10 : 100, concurrency: 50, seed: 8 },
  history: { big: quick ? 5_000 : 100_000, small: 100, samples: 30 },
  /** Wait states (settling) last 250 ms here; a waiting deployment parks (Wait For Lock) instead of polling. */
  lockPollMs: 250,
  /** The 10-waiter burst, modeled for 5-minute deploys; the old protocol polled every 15 s. */
  burst: { requests: 10, deployMinutes: 5, pollSeconds: 15 },
  /** A watched deployment: 7 minutes, 3 of them building. */
  watch: { deploymentSeconds: 420, buildSeconds: 180 },
};

const { measureColdStart } = await import('./cold-start.ts');
const { measureOverhead } = await import('./overhead.ts');
const { measureAck } = await import('./ack.ts');
const {
  ASSUMPTIONS,
  costContext,
  measureBurst,
  measureCost,
  measureIdleSweeps,
  measureMonthly,
  PRICE_SOURCES,
  PRICES,
  WHAT_IF_PROJECTIONS,
} = await import('./cost.ts');
const { RECHECK_SECONDS } = await import('../functions/acquire-lock/core.ts');
const { measureWatch } = await import('./watch.ts');
const { measureScale } = await import('./scale.ts');
const { measureHistory } = await import('./history.ts');
const { benchPairs, startStack } = await import('./harness.ts');
const { renderMarkdown, summarize } = await import('./report.ts');

const cpuModel = (() => {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
const previous = (() => {
  try {
    return JSON.parse(readFileSync(RESULTS, 'utf8')) as ResultsFile & { complete?: boolean };
  } catch {
    return undefined;
  }
})();
const load = () => loadavg().map((n) => Math.round(n * 100) / 100);
const results: Results = {
  machine: {
    cpus: availableParallelism(),
    cpuModel,
    node: process.versions.node,
    os: `${type()} ${release()}`,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    loadAverage: { start: load(), end: [] },
    date: new Date().toISOString(),
  },
};
const log = (message: string) => console.error(`bench: ${message}`);
const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  log(`${name}...`);
  const value = await run();
  log(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return value;
};

let failed = false;
try {
  // Cold start first: nothing of the bench itself runs beside its fresh processes.
  if (want('cold'))
    results.coldStart = await timed('cold start', () => measureColdStart(ROOT, PLAN.coldSamples));
  if (want('overhead') || want('cost')) {
    const stack = await startStack({ pairs: benchPairs(100), waitMs: PLAN.lockPollMs });
    try {
      if (want('cost')) {
        // Init per function from this run's cold-start rows, else from the committed full run's.
        const context = costContext(new URL(`file://${ROOT}`), results.coldStart ?? previous?.coldStart);
        const cost = await timed('cost', () => measureCost(stack, context));
        results.cost = cost;
        const sweeps = await timed('idle sweeps', () => measureIdleSweeps(stack));
        results.monthly = measureMonthly(context, sweeps, cost);
        results.burst = await timed('burst', () =>
          measureBurst(stack, cost, context, { ...PLAN.burst, recheckSeconds: RECHECK_SECONDS }),
        );
        results.watch = measureWatch(PLAN.watch, cost.usd.total, context);
      }
      if (want('overhead')) {
        results.overhead = await timed('overhead', () =>
          measureOverhead(stack, PLAN.overhead.count, PLAN.overhead.warmup),
        );
      }
    } finally {
      await stack.close();
    }
  }
  if (want('ack')) {
    results.ack = [];
    for (const mode of ['api-only', 'full'] as const) {
      results.ack.push(
        await timed(`ack (${mode})`, () => measureAck(mode, { ...PLAN.ack, lockPollMs: PLAN.lockPollMs })),
      );
    }
  }
  if (want('scale')) {
    const stack = await startStack({ pairs: benchPairs(PLAN.scale.pairs), waitMs: PLAN.lockPollMs });
    try {
      results.scale = await timed('scale', () =>
        measureScale(stack, { ...PLAN.scale, lockPollMs: PLAN.lockPollMs }),
      );
    } finally {
      await stack.close();
    }
  }
  if (want('history')) {
    const stack = await startStack({ pairs: benchPairs(5), waitMs: PLAN.lockPollMs });
    try {
      results.history = await timed('history', () => measureHistory(stack, PLAN.history));
    } finally {
      await stack.close();
    }
  }
} catch (error) {
  console.error('bench: a measurement could not run:', error);
  failed = true;
}
results.machine.loadAverage.end = load();
results.machine.durationSeconds = Math.round((Date.now() - startedAt) / 100) / 10;

if (merge && previous?.complete !== true) {
  console.error('bench: --merge: bench/results.json holds no complete full run to merge into');
  process.exit(2);
}
const { mergeResults } = await import('./merge.ts');
const final: ResultsFile & { complete?: boolean } =
  merge && previous
    ? mergeResults(
        previous,
        results,
        [...only] as Section[],
        `npm run bench -- --only=${[...only].join(',')} --merge`,
        !failed,
      )
    : results;

const rows = summarize(final);
const violations = [
  ...(final.scale && final.scale.lost > 0 ? [`${final.scale.lost} lost record(s)`] : []),
  ...(final.scale && final.scale.overlaps > 0 ? [`${final.scale.overlaps} overlapping deploy(s)`] : []),
  ...(final.scale && final.scale.lockOverlaps > 0
    ? [`${final.scale.lockOverlaps} overlapping lock hold(s)`]
    : []),
  ...(final.burst && final.burst.overlaps > 0
    ? [`${final.burst.overlaps} overlapping deploy(s) in the burst`]
    : []),
  ...(final.burst && final.burst.orderInversions > 0
    ? [`${final.burst.orderInversions} order inversion(s) in the burst`]
    : []),
];
writeFileSync(
  resultsFile,
  `${JSON.stringify(
    {
      ...final,
      // A merge keeps the full run's sections; --merge refuses --quick, so PLAN is the full plan.
      plan: { ...PLAN, quick, sections: merge ? (previous?.plan?.sections ?? [...only]) : [...only] },
      prices: PRICES,
      priceSources: PRICE_SOURCES,
      assumptions: ASSUMPTIONS,
      whatIfProjections: WHAT_IF_PROJECTIONS,
      summary: rows,
      violations,
      complete: merge ? final.complete === true : !failed,
    },
    null,
    2,
  )}\n`,
);
console.log(renderMarkdown(final, rows));
log(`results written to ${resultsFile}`);
if (violations.length > 0) console.error(`bench: correctness violated: ${violations.join(', ')}`);
process.exitCode = failed ? 2 : violations.length > 0 ? 1 : 0;
// Keep-alive sockets of the HTTP clients would hold the process open for a while.
setTimeout(() => process.exit(), 100).unref();
