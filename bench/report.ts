import type { AckResult } from './ack.ts';
import { BUNDLE_LIMIT_BYTES, type ColdStartRow } from './cold-start.ts';
import type { BurstResult, CostResult, MonthlyResult } from './cost.ts';
import { PRICES } from './cost-model.ts';
import type { HistoryResult } from './history.ts';
import type { OverheadResult } from './overhead.ts';
import type { ScaleResult } from './scale.ts';
import type { WatchResult } from './watch.ts';

/** The markdown the bench prints (and README quotes): one summary table, then the detail behind it. */

export interface Machine {
  cpus: number;
  cpuModel: string;
  node: string;
  os: string;
  memoryGb: number;
  loadAverage: { start: number[]; end: number[] };
  date: string;
  /** Wall time of the whole run. */
  durationSeconds?: number;
}

export interface Results {
  machine: Machine;
  coldStart?: ColdRow[];
  overhead?: OverheadResult;
  ack?: AckResult[];
  cost?: CostResult;
  burst?: BurstResult;
  monthly?: MonthlyResult;
  watch?: WatchResult;
  scale?: ScaleResult;
  history?: HistoryResult;
}

/**
 * A cold-start row as results.json has it: `unbundledJsMs` (the handler transpiled to JavaScript, unbundled;
 * ratio = source maps on ÷ that) in newer runs, `sourceMs` (TypeScript source, ratio = bundle ÷ that) in older.
 */
export type ColdRow = ColdStartRow & { unbundledJsMs?: number; sourceMs?: number };
export const coldBaseline = (r: ColdRow): { ms: number; label: string; ratioOf: string } =>
  r.unbundledJsMs !== undefined
    ? { ms: r.unbundledJsMs, label: 'unbundled JS', ratioOf: 'source maps on ÷ unbundled JS' }
    : { ms: r.sourceMs ?? Number.NaN, label: 'TypeScript source', ratioOf: 'bundle ÷ TypeScript source' };

export interface SummaryRow {
  measurement: string;
  result: string;
  target: string;
  met: boolean | undefined;
}

const kB = (bytes: number) => `${(bytes / 1024).toFixed(0)} kB`;
const ms = (value: number) => `${value} ms`;
const usd = (value: number) => `$${value < 0.01 ? value.toFixed(6) : value.toFixed(4)}`;
const span = (values: number[], format: (n: number) => string) =>
  `${format(Math.min(...values))}–${format(Math.max(...values))}`;

export function summarize(results: Results): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const { coldStart, overhead, ack, cost, burst, monthly, watch, scale, history } = results;
  if (coldStart) {
    const worst = coldStart.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    rows.push({
      measurement: `1. Cold start: ${coldBaseline(worst).ratioOf} (median of ${worst.samples} fresh processes)`,
      result: `${span(
        coldStart.map((r) => r.ratio),
        (n) => n.toFixed(2),
      )} (${worst.unbundledJsMs === undefined ? 'bundles' : 'bundles with source maps'} ${span(
        coldStart.map((r) => (r.unbundledJsMs === undefined ? r.bundleMs : r.bundleSourceMapsMs)),
        ms,
      )}, ${coldBaseline(worst).label} ${span(
        coldStart.map((r) => coldBaseline(r).ms),
        ms,
      )}); worst ${worst.function}`,
      target: '≤ 0.40 each',
      met: coldStart.every((r) => r.ratio <= 0.4),
    });
    rows.push({
      measurement: '1. Bundle size',
      result: `${span(
        coldStart.map((r) => r.bytes),
        kB,
      )} (gzip ${span(
        coldStart.map((r) => r.gzipBytes),
        kB,
      )}); ${coldStart.filter((r) => r.bytes > BUNDLE_LIMIT_BYTES).length} of ${coldStart.length} over`,
      target: '≤ 400 kB each',
      met: coldStart.every((r) => r.bytes <= BUNDLE_LIMIT_BYTES),
    });
  }
  if (overhead) {
    rows.push({
      measurement: `2. POST → deploy job start (${overhead.deployments} sequential, stand-in jobs)`,
      result: `p50 ${ms(overhead.toDeployStartMs.p50)}, p99 ${ms(overhead.toDeployStartMs.p99)}`,
      target: 'p99 ≤ 250 ms',
      met: overhead.toDeployStartMs.p99 <= 250,
    });
    rows.push({
      measurement: '2. POST → terminal status',
      result: `p50 ${ms(overhead.toTerminalMs.p50)}, p99 ${ms(overhead.toTerminalMs.p99)}`,
      target: '—',
      met: undefined,
    });
  }
  for (const a of ack ?? []) {
    rows.push({
      measurement: `3. Ack, ${a.clients} clients × ${a.seconds} s, ${a.mode === 'api-only' ? 'API only (as the API Lambda)' : 'full local mode (workflows in the same process)'}`,
      result: `p50 ${ms(a.p50Ms)}, p99 ${ms(a.p99Ms)}, ${a.errors} errors, ${a.requests} requests (${a.perSecond}/s)`,
      target: 'p99 ≤ 100 ms, 0 errors',
      met: a.p99Ms <= 100 && a.errors === 0,
    });
  }
  if (overhead) {
    rows.push({
      measurement: '3. Ack, 1 client (the sequential POSTs of 2)',
      result: `p50 ${ms(overhead.ackMs.p50)}, p99 ${ms(overhead.ackMs.p99)}`,
      target: '—',
      met: undefined,
    });
  }
  if (cost) {
    rows.push({
      measurement: '4. State transitions per happy-path deployment',
      result: `${cost.transitions}`,
      target: '≤ 14',
      met: cost.transitions <= 14,
    });
    rows.push({
      measurement: '4. DynamoDB Scans',
      result: `${cost.scans}`,
      target: '0',
      met: cost.scans === 0,
    });
    rows.push({
      measurement: '4. DynamoDB write units per deployment (GSIs included)',
      result: `${cost.writeUnits} WRU (${cost.writeUnitsTableOnly} table + ${cost.writeUnits - cost.writeUnitsTableOnly} GSI)`,
      target: `≤ ${cost.writeUnitsWhatIf} WRU (narrower GSI projections)`,
      met: cost.writeUnits <= cost.writeUnitsWhatIf,
    });
    const pipelines = cost.pipeline.map((p) => `${usd(p.usd)} (${p.actionMinutes} action-min, ${p.ratio}×)`);
    rows.push({
      measurement:
        '4. USD per deployment, uncontended (orchestration, Lambda billed duration with init, X-Ray, logs; CodeBuild excluded, same both ways)',
      result: `${usd(cost.usd.total)} vs CodePipeline V2 ${pipelines.join(' / ')}`,
      target: '—',
      met: undefined,
    });
  }
  if (burst) {
    rows.push({
      measurement: `4. Lock wait: transitions a waiter adds (${burst.requests} requests at once, ${burst.waited} waited)`,
      result: `${burst.maxAddedTransitions} at most (${burst.parks} parks; ${burst.modeled.recheckTransitions} more for safety-net re-checks with ${burst.deployMinutes}-minute deploys)`,
      target: '≤ 4',
      met: burst.maxAddedTransitions + burst.modeled.recheckTransitions / Math.max(1, burst.waited) <= 4,
    });
    rows.push({
      measurement: `4. ${burst.requests} requests at once, ${burst.deployMinutes}-minute deploys: USD per deployment ÷ uncontended`,
      result: `${burst.modeled.ratio}× (${usd(burst.modeled.usdPerDeployment)} vs ${usd(burst.modeled.uncontendedUsdPerDeployment)}); polling every 15 s was ${burst.modeled.ratioPolling}× (${usd(burst.modeled.usdPerDeploymentPolling)})`,
      target: '≤ 1.3×',
      met: burst.modeled.ratio <= 1.3,
    });
    rows.push({
      measurement: `4. Burst: overlapping deploys / order inversions`,
      result: `${burst.overlaps} / ${burst.orderInversions}`,
      target: '0 / 0',
      met: burst.overlaps === 0 && burst.orderInversions === 0,
    });
  }
  if (monthly) {
    rows.push({
      measurement: `4. Fixed cost per month, nothing deployed (every schedule in template.yaml: ${monthly.rows.length}${monthly.standing ? `; resources priced per month: ${monthly.standing.length}` : ''})`,
      result: `${usd(monthly.total)} (${[
        ...monthly.rows.map((r) => `${r.schedule} ${usd(r.usd)}`),
        ...(monthly.standing ?? []).map((r) => `${r.resource} ${usd(r.usdPerMonth)}`),
      ].join(', ')})`,
      target: '—',
      met: undefined,
    });
  }
  if (watch) {
    rows.push({
      measurement: `4. A ${watch.deploymentSeconds / 60}-minute deployment watched with --wait: API requests in AWS (computed from the CLI's back-off)`,
      result: `${watch.requests} (${usd(watch.usd)}; was ${watch.requestsBefore}, ${usd(watch.usdBefore)}; the orchestration itself ${usd(watch.usdOrchestration)})`,
      target: '≤ 100',
      met: watch.requests <= 100,
    });
  }
  if (scale) {
    rows.push({
      measurement: `5. Scale: ${scale.deployments} deployments, ${scale.pairs} pairs, concurrency ${scale.concurrency}`,
      result: `${scale.totalSeconds} s (${scale.perSecond}/s); ${scale.lockWaits.deployments} waited for the lock (${
        // Runs before the hand-over recorded polls, not parks.
        scale.lockWaits.parks ??
        `${(scale.lockWaits as { polls?: number }).polls} polls, before the hand-over`
      }${scale.lockWaits.parks === undefined ? '' : ' parks'})`,
      target: '≤ 60 s',
      met: scale.totalSeconds <= 60,
    });
    rows.push({
      measurement: '5. Lost records / overlapping deploys / overlapping lock holds',
      result: `${scale.lost} / ${scale.overlaps} / ${scale.lockOverlaps ?? 'not measured in this run'}`,
      target: '0 / 0 / 0',
      met: scale.lost === 0 && scale.overlaps === 0 && (scale.lockOverlaps ?? 0) === 0,
    });
  }
  if (history) {
    rows.push({
      measurement: `6. History page of ${history.pageSize}: ${history.big.records.toLocaleString('en-US')} vs ${history.small.records} records`,
      result: `p50 ${ms(history.big.p50Ms)} vs ${ms(history.small.p50Ms)}: ratio ${history.ratio}; ${history.scans} Scans`,
      target: 'ratio ≈ 1 (≤ 1.5), 0 Scans',
      met: history.ratio <= 1.5 && history.scans === 0,
    });
  }
  return rows;
}

const table = (header: string[], rows: (string | number)[][]) =>
  [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');

/** What results.json records beside the measurements (the prices and assumptions the run used). */
export interface ResultsFile extends Results {
  plan?: Record<string, unknown>;
  prices?: Record<string, number | string>;
  priceSources?: Record<string, string>;
  assumptions?: Record<string, unknown>;
  runs?: { sections: string[]; command: string; machine: Machine }[];
}

const missing = (what: string) => `_Not in bench/results.json: ${what} (run \`npm run bench\`)._`;

export function machineLine(m: Machine): string {
  const took = m.durationSeconds === undefined ? '' : `; the run took ${Math.round(m.durationSeconds)} s`;
  return `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.os}, Node ${m.node}; load average ${m.loadAverage.start.join(' ')} at start, ${m.loadAverage.end.join(' ')} at end; ${m.date}${took}.`;
}

/** The machine of the full run, and of each section re-run on top of it (`npm run bench -- --only=... --merge`). */
export function machineBlock(results: ResultsFile): string {
  const lines = [machineLine(results.machine)];
  for (const run of results.runs ?? []) {
    lines.push(
      '',
      `Sections ${run.sections.join(', ')} re-run with \`${run.command}\`: ${machineLine(run.machine)}`,
    );
  }
  return lines.join('\n');
}

export function summaryTable(rows: SummaryRow[]): string {
  return table(
    ['Measurement', 'Result', 'Target', 'Met'],
    rows.map((r) => [
      r.measurement,
      r.result,
      r.target,
      r.met === undefined ? '—' : r.met ? 'yes' : '**no**',
    ]),
  );
}

export function coldStartTable(results: Results): string {
  const rows = results.coldStart;
  if (!rows || rows.length === 0) return missing('cold start');
  const parts = [
    table(
      [
        'Function',
        'Bundle',
        'gzip',
        'Init, source maps on (as template.yaml runs)',
        'Init, no source maps',
        `Init, ${coldBaseline(rows[0]!).label}`,
        `Ratio (${coldBaseline(rows[0]!).ratioOf})`,
        'Largest parts',
      ],
      rows.map((r) => [
        r.function,
        kB(r.bytes),
        kB(r.gzipBytes),
        ms(r.bundleSourceMapsMs),
        ms(r.bundleMs),
        ms(coldBaseline(r).ms),
        r.ratio.toFixed(2),
        Object.entries(r.composition)
          .slice(0, 3)
          .map(([name, bytes]) => `${name} ${kB(bytes)}`)
          .join(', '),
      ]),
    ),
  ];
  const probeErrors = rows.flatMap((r) => (r.errors ?? []).map((e) => `${r.function}: ${e}`));
  if (probeErrors.length > 0) parts.push('', `Imports that failed: ${probeErrors.join('; ')}`);
  return parts.join('\n');
}

export function writesTable(cost: CostResult): string {
  return table(
    ['Item', 'Writes', 'Failed conditions', 'Table WRU', 'GSI1 WRU', 'GSI2 WRU', 'Total WRU', 'What-if WRU'],
    [
      ...cost.writes.map((w) => [
        w.item,
        w.writes,
        w.conditionFailed,
        w.tableUnits,
        w.gsi1Units,
        w.gsi2Units,
        w.totalUnits,
        w.whatIfUnits,
      ]),
      [
        '**total**',
        cost.writes.reduce((s, w) => s + w.writes, 0),
        cost.writes.reduce((s, w) => s + w.conditionFailed, 0),
        cost.writeUnitsTableOnly,
        cost.writes.reduce((s, w) => s + w.gsi1Units, 0),
        cost.writes.reduce((s, w) => s + w.gsi2Units, 0),
        cost.writeUnits,
        cost.writeUnitsWhatIf,
      ],
    ],
  );
}

/** One deployment's counts and its bill by service (older results have no init, X-Ray or logs lines). */
export function perDeploymentLine(cost: CostResult, pricesDate: string): string {
  const u = cost.usd as Partial<CostResult['usd']> & { total: number };
  const extras = [
    u.lambdaInit === undefined ? '' : ` (of which init ${usd(u.lambdaInit)})`,
    u.xray === undefined ? '' : `, X-Ray ${usd(u.xray)}`,
    u.logs === undefined ? '' : `, CloudWatch Logs ${usd(u.logs)}`,
  ];
  const invocations = (cost.invocations ?? [])
    .map((i) => `${i.function} ${i.count}× ${i.handlerMs} ms${i.measured ? '' : ' (assumed)'}`)
    .join(', ');
  return (
    `Per deployment: ${cost.transitions} state transitions, ${cost.lambda.total} Lambda invocations (${cost.lambda.tasks} Task states, ${cost.lambda.jobEvents} job events, ${cost.lambda.api} API, ${cost.lambda.slack} Slack progress rules), DynamoDB calls ${Object.entries(
      cost.dynamoCalls,
    )
      .map(([op, n]) => `${op} ${n}`)
      .join(', ')} (${cost.localOnlyReads} local-mode-only GetItems left out), ${cost.readUnits} RRU` +
    (cost.traces === undefined ? '' : `, ${cost.traces} X-Ray traces`) +
    (cost.logBytes === undefined
      ? ''
      : `, ${cost.logBytes.stateMachine} bytes of Step Functions log records and ${cost.logBytes.lambda} of function logs`) +
    '. ' +
    (invocations ? `Handler time per invocation: ${invocations}. ` : '') +
    `USD: Step Functions ${usd(u.stepFunctions ?? 0)}, DynamoDB ${usd((u.dynamoWrites ?? 0) + (u.dynamoReads ?? 0))}, Lambda ${usd(u.lambda ?? 0)}${extras[0]}, HTTP API ${usd(u.httpApi ?? 0)}${extras[1]}${extras[2]} = ${usd(u.total)} (us-east-1 list prices of ${pricesDate}).`
  );
}

/** The four cost scenarios side by side, and what a CodePipeline V2 pipeline would cost for the same deployment. */
export function scenarioTable(results: Results): string {
  const { cost, burst, watch, monthly } = results;
  const rows: (string | number)[][] = [];
  if (cost) {
    rows.push([
      'Uncontended deployment',
      usd(cost.usd.total),
      `measured: one deployment; CodePipeline V2 ${cost.pipeline.map((p) => `${usd(p.usd)} for ${p.actionMinutes} action-min (${p.ratio}×)`).join(', ')}`,
    ]);
  } else rows.push(['Uncontended deployment', '—', missing('cost')]);
  if (burst) {
    rows.push([
      `${burst.requests} requests at once, ${burst.deployMinutes}-minute deploys`,
      `${usd(burst.modeled.usdPerDeployment)} per deployment (${burst.modeled.ratio}× uncontended)`,
      `measured: the ${burst.requests} executions (${burst.parks} parks); modeled: ${burst.modeled.recheckTransitions} safety-net re-check transitions for the waits; polling every 15 s was ${usd(burst.modeled.usdPerDeploymentPolling)} (${burst.modeled.ratioPolling}×)`,
    ]);
  } else rows.push(['10 requests at once', '—', missing('burst')]);
  if (watch) {
    rows.push([
      `A ${watch.deploymentSeconds / 60}-minute deployment watched with \`--wait\``,
      `${usd(watch.usd)} on top of the deployment`,
      `computed: ${watch.requests} API requests from the CLI's back-off (was ${watch.requestsBefore}, ${usd(watch.usdBefore)}); the orchestration itself ${usd(watch.usdOrchestration)}`,
    ]);
  } else rows.push(['A watched deployment', '—', missing('watch')]);
  if (monthly) {
    rows.push([
      'Fixed cost per month, nothing deployed',
      usd(monthly.total),
      `modeled from template.yaml's ${monthly.rows.length} schedules, reads measured on an idle table${monthly.standing ? `, and its ${monthly.standing.length} resources priced per month` : ' (resources priced per month not counted in this run)'} (below)`,
    ]);
  } else rows.push(['Fixed cost per month', '—', missing('monthly')]);
  return table(['Scenario', 'USD', 'How'], rows);
}

export function monthlyTable(monthly: MonthlyResult | undefined): string {
  if (!monthly) return missing('monthly');
  return table(
    ['Schedule', 'Kind', 'Expression', 'Starts', 'Runs / month', 'RRU / run', 'USD / month'],
    monthly.rows.map((r) => [
      r.schedule,
      r.kind === 'rule' ? 'EventBridge rule' : 'EventBridge Scheduler',
      `\`${r.expression}\`${r.timezone === 'UTC' ? '' : ` (${r.timezone})`}`,
      r.target,
      r.runsPerMonth,
      r.readsAssumed
        ? `${r.readUnitsPerRun} (assumed)`
        : r.kind === 'scheduler' && r.readUnitsPerRun === 0
          ? 'a deployment per run'
          : r.readUnitsPerRun,
      usd(r.usd),
    ]),
  );
}

export function standingTable(monthly: MonthlyResult | undefined): string {
  if (!monthly?.standing) return missing('monthly (resources priced per month)');
  if (monthly.standing.length === 0) return 'No resource in template.yaml is priced per month.';
  return table(
    ['Resource', 'Type', 'USD / month'],
    monthly.standing.map((r) => [r.resource, `\`${r.type}\``, usd(r.usdPerMonth)]),
  );
}

export function costBlock(results: ResultsFile): string {
  const pricesDate = String(results.prices?.date ?? PRICES.date);
  const parts = [scenarioTable(results)];
  if (results.cost)
    parts.push('', writesTable(results.cost), '', perDeploymentLine(results.cost, pricesDate));
  parts.push('', monthlyTable(results.monthly), '', standingTable(results.monthly));
  if (results.monthly && results.monthly.initAssumed.length > 0) {
    parts.push('', `Init assumed (no cold-start row): ${results.monthly.initAssumed.join(', ')}.`);
  }
  return parts.join('\n');
}

/** A unit price as the pricing pages write it: per million below a tenth of a cent. */
const dollars = (value: number) =>
  value < 0.001
    ? `$${Number((value * 1_000_000).toPrecision(6))} per million`
    : `$${Number(value.toPrecision(6))}`;

/** The prices and assumptions the run used, as results.json recorded them. */
export function pricesBlock(results: ResultsFile): string {
  const prices = results.prices ?? {};
  const lines = Object.entries(prices)
    .filter(([name]) => name !== 'date')
    .map(([name, value]) => `- \`${name}\`: ${typeof value === 'number' ? dollars(value) : value}`);
  const sources = Object.entries(results.priceSources ?? {}).map(([name, url]) => `- ${name}: <${url}>`);
  const assumptions = Object.entries(results.assumptions ?? {}).map(
    ([name, value]) => `- \`${name}\`: \`${JSON.stringify(value)}\``,
  );
  return [
    `Prices (us-east-1, dated ${String(prices.date ?? '—')}, free tiers ignored):`,
    '',
    ...lines,
    '',
    sources.length > 0 ? 'Sources:' : 'Sources: not recorded by this run.',
    ...(sources.length > 0 ? ['', ...sources] : []),
    '',
    'Assumptions (bench/cost-model.ts says why for each):',
    '',
    ...assumptions,
  ].join('\n');
}

/** The plan the run followed (sample sizes, clients, records). */
export function planBlock(results: ResultsFile): string {
  const plan = results.plan;
  if (!plan) return missing('plan');
  return Object.entries(plan)
    .filter(([name]) => name !== 'sections' && name !== 'quick')
    .map(([name, value]) => `- \`${name}\`: \`${JSON.stringify(value)}\``)
    .join('\n');
}

/** What `npm run bench` prints. */
export function renderMarkdown(results: ResultsFile, rows: SummaryRow[]): string {
  return [
    machineBlock(results),
    '',
    summaryTable(rows),
    '',
    results.coldStart ? coldStartTable(results) : '',
    '',
    costBlock(results),
  ].join('\n');
}
