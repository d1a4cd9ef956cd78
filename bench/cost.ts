import { randomUUID } from 'node:crypto';
import type { DynamoMeter, Projections } from './dynamo-meter.ts';
import { executionOf, postDeployment, type Stack } from './harness.ts';
import { round, sleep } from './stats.ts';

/**
 * Cost per deployment: one happy-path deployment (build, lock, assume role, deploy, record, release) after a
 * warm-up deployment of the same environment, counted as AWS would bill it: state transitions from the
 * engine's events, DynamoDB calls and request units from the meter (GSIs included), Lambda invocations from
 * the Task states, the job-event rule and the API. Local-mode-only store reads are taken out: the runner
 * lookup before each target access (LocalTargetAccess) and the wait for the starter's record of a finished
 * job (one read per job, since the stand-in ends only once it is recorded). What the execution does after it
 * ended (local mode's own reconcile check) is not counted: in AWS only a failed execution triggers that.
 */

/** us-east-1 list prices, as published on the AWS pricing pages on PRICES.date. */
export const PRICES = {
  date: '2026-11-28',
  stepFunctionsPerTransition: 0.025 / 1_000,
  dynamoPerWriteUnit: 0.625 / 1_000_000,
  dynamoPerReadUnit: 0.125 / 1_000_000,
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaPerGbSecondArm: 0.0000133334,
  httpApiPerRequest: 1.0 / 1_000_000,
  codePipelineV2PerActionMinute: 0.002,
} as const;

/** Assumptions that no local run can measure. */
export const ASSUMPTIONS = {
  /** template.yaml Globals MemorySize. */
  lambdaMemoryGb: 0.5,
  /** Billed duration per invocation: a few single-digit-ms DynamoDB calls, rounded up generously. */
  lambdaBilledSeconds: 0.1,
  /**
   * SlackFunction runs on every execution's RUNNING and terminal status and on each job's IN_PROGRESS event
   * (template.yaml rules), chat-started or not; each looks up the reply item (a consistent GetItem). Local
   * mode keeps chat in memory, so these are added here rather than measured.
   */
  slackInvocations: 4,
  slackReadUnits: 4,
  /** A CodePipeline V2 pipeline doing the same: Source (connection), Build and Deploy (CodeBuild) actions. */
  pipelineScenarios: [
    { name: 'short jobs', sourceMin: 1, buildMin: 2, deployMin: 3 },
    { name: 'typical SAM app', sourceMin: 1, buildMin: 4, deployMin: 6 },
  ],
};

/**
 * The write target's what-if: the same writes with GSI1 (history) projecting the fields a history page shows
 * instead of ALL (not jobs, buildOutput, parameters, change set, phase and wait bookkeeping), and GSI2
 * (active deployments, last success per environment) projecting keys only (its two readers then GetItem the
 * record: the reconcile sweep and a promotion's source lookup, rare next to writes).
 */
export const WHAT_IF_PROJECTIONS: Projections = {
  GSI1: [
    'deploymentId',
    'application',
    'environment',
    'ref',
    'resolvedCommit',
    'targetAccount',
    'requester',
    'reason',
    'trigger',
    'dryRun',
    'status',
    'requestedAt',
    'updatedAt',
    'finishedAt',
    'errorCode',
    'errorMessage',
    'supersededBy',
    'release',
    'kind',
    'source',
    'rollbackOf',
    'freezeOverride',
  ],
  GSI2: [],
};

export interface WriteRow {
  item: string;
  writes: number;
  conditionFailed: number;
  tableUnits: number;
  gsi1Units: number;
  gsi2Units: number;
  totalUnits: number;
  /** The same writes under WHAT_IF_PROJECTIONS. */
  whatIfUnits: number;
}

export interface CostResult {
  transitions: number;
  transitionsByState: Record<string, number>;
  retries: number;
  scans: number;
  dynamoCalls: Record<string, number>;
  localOnlyReads: number;
  writes: WriteRow[];
  writeUnits: number;
  writeUnitsTableOnly: number;
  writeUnitsWhatIf: number;
  readUnits: number;
  lambda: { tasks: number; jobEvents: number; api: number; slack: number; total: number };
  usd: {
    stepFunctions: number;
    dynamoWrites: number;
    dynamoReads: number;
    lambda: number;
    httpApi: number;
    total: number;
  };
  pipeline: { name: string; actionMinutes: number; usd: number; ratio: number }[];
}

export async function measureCost(stack: Stack): Promise<CostResult> {
  const pair = { application: 'app-01', environment: 'dev' };
  const warm = await postDeployment(stack.url, pair, 'bench: cost warm-up');
  await executionOf(stack, warm.body.deploymentId ?? '');
  await sleep(200);

  const { meter } = stack;
  meter.reset();
  meter.detailed = true;
  meter.paused = false;
  meter.alternative = WHAT_IF_PROJECTIONS;
  const jobEventsBefore = stack.jobEvents;
  const lookupsBefore = stack.targetLookups;
  let measured = '';
  stack.onExecutionEnd = (id) => {
    if (id === measured) meter.paused = true;
  };
  // As the CLI sends it: with an Idempotency-Key (one more conditional write, the key's claim).
  const posted = await postDeployment(stack.url, pair, 'bench: cost', { 'idempotency-key': randomUUID() });
  measured = posted.body.deploymentId ?? '';
  const execution = await executionOf(stack, measured);
  stack.onExecutionEnd = undefined;
  meter.detailed = false;
  const deployment = await stack.store.getDeployment(measured);
  meter.paused = false;
  if (deployment?.status !== 'SUCCEEDED') {
    throw new Error(`the measured deployment ended ${deployment?.status} (${deployment?.errorCode})`);
  }

  const entered = execution.events.filter((e) => e.type === 'StateEntered');
  const retries = execution.events.filter((e) => e.type === 'StateRetried').length;
  const transitionsByState: Record<string, number> = {};
  for (const e of entered) {
    const name = e.state?.name ?? '?';
    transitionsByState[name] = (transitionsByState[name] ?? 0) + 1;
  }
  const tasks =
    entered.filter((e) => (e.state as { type?: string } | undefined)?.type === 'Task').length + retries;
  const jobEvents = stack.jobEvents - jobEventsBefore;
  // One GetItem of the deployment per target access and per finished job (see above): 1 RRU each.
  const localOnlyReads = stack.targetLookups - lookupsBefore + jobEvents;

  const writes = writeRows(meter);
  const writeUnits = writes.reduce((sum, row) => sum + row.totalUnits, 0);
  const writeUnitsTableOnly = writes.reduce((sum, row) => sum + row.tableUnits, 0);
  const writeUnitsWhatIf = writes.reduce((sum, row) => sum + row.whatIfUnits, 0);
  const readUnits =
    meter.reads.reduce((sum, r) => sum + r.units, 0) - localOnlyReads + ASSUMPTIONS.slackReadUnits;
  const dynamoCalls = Object.fromEntries([...meter.calls].sort(([a], [b]) => a.localeCompare(b)));
  if (dynamoCalls.GetItem !== undefined) dynamoCalls.GetItem -= localOnlyReads;

  const lambda = { tasks, jobEvents, api: 1, slack: ASSUMPTIONS.slackInvocations, total: 0 };
  lambda.total = lambda.tasks + lambda.jobEvents + lambda.api + lambda.slack;
  const transitions = entered.length + retries;
  const usd = {
    stepFunctions: transitions * PRICES.stepFunctionsPerTransition,
    dynamoWrites: writeUnits * PRICES.dynamoPerWriteUnit,
    dynamoReads: readUnits * PRICES.dynamoPerReadUnit,
    lambda:
      lambda.total *
      (PRICES.lambdaPerRequest +
        ASSUMPTIONS.lambdaMemoryGb * ASSUMPTIONS.lambdaBilledSeconds * PRICES.lambdaPerGbSecondArm),
    httpApi: PRICES.httpApiPerRequest,
    total: 0,
  };
  usd.total = usd.stepFunctions + usd.dynamoWrites + usd.dynamoReads + usd.lambda + usd.httpApi;
  const pipeline = ASSUMPTIONS.pipelineScenarios.map((s) => {
    const actionMinutes = s.sourceMin + s.buildMin + s.deployMin;
    const cost = actionMinutes * PRICES.codePipelineV2PerActionMinute;
    return { name: s.name, actionMinutes, usd: cost, ratio: round(cost / usd.total, 0) };
  });

  return {
    transitions,
    transitionsByState,
    retries,
    scans: meter.callCount('Scan'),
    dynamoCalls,
    localOnlyReads,
    writes,
    writeUnits,
    writeUnitsTableOnly,
    writeUnitsWhatIf,
    readUnits,
    lambda,
    usd: Object.fromEntries(Object.entries(usd).map(([k, v]) => [k, round(v, 8)])) as CostResult['usd'],
    pipeline,
  };
}

function writeRows(meter: DynamoMeter): WriteRow[] {
  const rows = new Map<string, WriteRow>();
  for (const w of meter.writes) {
    const row = rows.get(w.kind) ?? {
      item: w.kind,
      writes: 0,
      conditionFailed: 0,
      tableUnits: 0,
      gsi1Units: 0,
      gsi2Units: 0,
      totalUnits: 0,
      whatIfUnits: 0,
    };
    row.writes++;
    if (w.conditionFailed) row.conditionFailed++;
    row.tableUnits += w.tableUnits;
    row.gsi1Units += w.indexUnits.GSI1;
    row.gsi2Units += w.indexUnits.GSI2;
    row.totalUnits += w.tableUnits + w.indexUnits.GSI1 + w.indexUnits.GSI2;
    row.whatIfUnits += w.tableUnits + w.alternativeIndexUnits.GSI1 + w.alternativeIndexUnits.GSI2;
    rows.set(w.kind, row);
  }
  return [...rows.values()].sort((a, b) => b.totalUnits - a.totalUnits);
}

/**
 * Ten requests at once on one environment (the "10-waiter burst"): each waits behind the ones
 * before it. Measured: every state transition, Lambda invocation and DynamoDB request unit of the ten
 * executions, which (parked, not polling) do not depend on how long each waits. Modeled for deploys of
 * `deployMinutes`: waiter i waits i × deployMinutes, so its parked Task times out (the safety-net
 * re-check, 3 transitions and 2 invocations) floor(wait / RECHECK_SECONDS) times; and, for comparison,
 * what the old 15-second Wait loop would have added for the same waits (3 transitions, 1 invocation each).
 */
export interface BurstResult {
  requests: number;
  deployMinutes: number;
  waited: number;
  parks: number;
  transitions: number;
  /** The most transitions one waiter added to an uncontended deployment's count. */
  maxAddedTransitions: number;
  lambdaInvocations: number;
  writeUnits: number;
  readUnits: number;
  overlaps: number;
  orderInversions: number;
  modeled: {
    recheckTransitions: number;
    pollingTransitions: number;
    usdPerDeployment: number;
    usdPerDeploymentPolling: number;
    uncontendedUsdPerDeployment: number;
    ratio: number;
    ratioPolling: number;
  };
}

export async function measureBurst(
  stack: Stack,
  uncontended: CostResult,
  options: { requests: number; deployMinutes: number; recheckSeconds: number; pollSeconds: number },
): Promise<BurstResult> {
  const pair = { application: 'app-02', environment: 'dev' };
  const warm = await postDeployment(stack.url, pair, 'bench: burst warm-up');
  await executionOf(stack, warm.body.deploymentId ?? '');
  await sleep(200);
  const { meter } = stack;
  meter.reset();
  meter.detailed = true;
  meter.paused = false;
  const jobEventsBefore = stack.jobEvents;
  const lookupsBefore = stack.targetLookups;
  const ids: string[] = [];
  for (let i = 0; i < options.requests; i++) {
    const posted = await postDeployment(stack.url, pair, `bench: burst ${i}`, {
      'idempotency-key': randomUUID(),
    });
    ids.push(posted.body.deploymentId ?? '');
  }
  const executions = await Promise.all(ids.map((id) => executionOf(stack, id)));
  meter.detailed = false;
  const records = await Promise.all(ids.map((id) => stack.store.getDeployment(id)));
  const notOk = records.filter((r) => r?.status !== 'SUCCEEDED');
  if (notOk.length > 0) throw new Error(`${notOk.length} burst deployment(s) did not succeed`);

  let transitions = 0;
  let tasks = 0;
  let parks = 0;
  let waited = 0;
  let maxAdded = 0;
  for (const execution of executions) {
    const entered = execution.events.filter((e) => e.type === 'StateEntered');
    const retries = execution.events.filter((e) => e.type === 'StateRetried').length;
    const count = entered.length + retries;
    transitions += count;
    tasks +=
      entered.filter((e) => (e.state as { type?: string } | undefined)?.type === 'Task').length + retries;
    const parked = entered.filter((e) => e.state?.name === 'Wait For Lock').length;
    parks += parked;
    if (parked > 0) waited++;
    maxAdded = Math.max(maxAdded, count - uncontended.transitions);
  }
  const jobEvents = stack.jobEvents - jobEventsBefore;
  const localOnlyReads = stack.targetLookups - lookupsBefore + jobEvents;
  const writeUnits = writeRows(meter).reduce((sum, row) => sum + row.totalUnits, 0);
  const readUnits =
    meter.reads.reduce((sum, r) => sum + r.units, 0) -
    localOnlyReads +
    ASSUMPTIONS.slackReadUnits * ids.length;
  meter.paused = false;

  // Never two deploys at once, and the lock in request order: deploy job starts against Record Result
  // (entered once the deploy job is over, while the lock is still held: it releases and hands over).
  const spans = ids.map((id, i) => ({
    order: i,
    start: stack.jobStarts.find((j) => j.deploymentId === id && j.job === 'deploy')?.wallAt ?? 0,
    end: Number(
      executions[i]?.events.find((e) => e.type === 'StateEntered' && e.state?.name === 'Record Result')
        ?.timestamp ?? 0,
    ),
  }));
  spans.sort((a, b) => a.start - b.start);
  let overlaps = 0;
  let orderInversions = 0;
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.start < spans[i - 1]!.end) overlaps++;
    if (spans[i]!.order < spans[i - 1]!.order) orderInversions++;
  }

  const lambdaInvocations = tasks + jobEvents + ids.length * (1 + ASSUMPTIONS.slackInvocations);
  const perInvocation =
    PRICES.lambdaPerRequest +
    ASSUMPTIONS.lambdaMemoryGb * ASSUMPTIONS.lambdaBilledSeconds * PRICES.lambdaPerGbSecondArm;
  const waits = ids.map((_, i) => i * options.deployMinutes * 60);
  const recheckTransitions = waits.reduce((sum, w) => sum + 3 * Math.floor(w / options.recheckSeconds), 0);
  const recheckInvocations = (recheckTransitions / 3) * 2;
  // The Wait loop: per poll a Wait, Acquire Lock and its Choice; the first answer WAITING is measured above.
  const polls = waits.reduce((sum, w) => sum + Math.ceil(w / options.pollSeconds), 0);
  const base =
    writeUnits * PRICES.dynamoPerWriteUnit +
    readUnits * PRICES.dynamoPerReadUnit +
    ids.length * PRICES.httpApiPerRequest;
  const total =
    base +
    (transitions + recheckTransitions) * PRICES.stepFunctionsPerTransition +
    (lambdaInvocations + recheckInvocations) * perInvocation;
  // Polling instead of parking: the park and the hand-over's Acquire Lock round are replaced by polls.
  const pollingTransitions = transitions - 3 * parks + 3 * polls;
  const pollingInvocations = lambdaInvocations - 2 * parks + polls;
  const totalPolling =
    base +
    pollingTransitions * PRICES.stepFunctionsPerTransition +
    pollingInvocations * perInvocation +
    polls * 2 * PRICES.dynamoPerReadUnit;
  const perDeployment = total / ids.length;
  const perDeploymentPolling = totalPolling / ids.length;
  return {
    requests: ids.length,
    deployMinutes: options.deployMinutes,
    waited,
    parks,
    transitions,
    maxAddedTransitions: maxAdded,
    lambdaInvocations,
    writeUnits,
    readUnits,
    overlaps,
    orderInversions,
    modeled: {
      recheckTransitions,
      pollingTransitions,
      usdPerDeployment: round(perDeployment, 8),
      usdPerDeploymentPolling: round(perDeploymentPolling, 8),
      uncontendedUsdPerDeployment: uncontended.usd.total,
      ratio: round(perDeployment / uncontended.usd.total, 2),
      ratioPolling: round(perDeploymentPolling / uncontended.usd.total, 2),
    },
  };
}

/**
 * What the per-deployment figure above leaves out, modeled from template.yaml's settings (no local run can
 * measure these): Lambda INIT billed on cold starts (every invocation cold: an upper bound for an idle
 * orchestrator), X-Ray (Tracing: Active on every function, Enabled on the state machine), CloudWatch Logs
 * ingestion (the state machine logs at Level ALL without execution data; each function logs JSON), and the
 * fixed monthly cost of the two schedules (the reconcile sweep every 5 minutes, the Slack reply sweep every
 * 10 minutes), which run whether anything deploys or not.
 */
export const EXTRA_PRICES = {
  date: '2026-11-28',
  xrayPerTraceRecorded: 5.0 / 1_000_000,
  logsPerGbIngested: 0.5,
} as const;

export const EXTRA_ASSUMPTIONS = {
  /** Bundle init with --enable-source-maps, rounded up (bench cold start: 76–107 ms on 2026-12-03). */
  lambdaInitSeconds: 0.11,
  /** History events a transition logs at Level ALL (entered/exited, scheduled/started/succeeded for Tasks). */
  stateMachineLogEventsPerTransition: 3,
  stateMachineLogEventBytes: 400,
  /** Powertools lines plus START/END/REPORT per invocation. */
  lambdaLogBytesPerInvocation: 1500,
  scheduledRunsPerMonth: { reconcileSweep: (30 * 24 * 60) / 5, slackSweep: (30 * 24 * 60) / 10 },
  /** Each sweep run: one Query of GSI2 plus the reads of what it finds (none on an idle orchestrator). */
  readUnitsPerSweepRun: 1,
};

export interface CostExtras {
  perDeployment: { lambdaInit: number; xray: number; logs: number; total: number; withExtras: number };
  monthlyFixed: { lambda: number; dynamo: number; xray: number; logs: number; total: number };
}

export function costExtras(cost: CostResult): CostExtras {
  const a = EXTRA_ASSUMPTIONS;
  const gbSecond = ASSUMPTIONS.lambdaMemoryGb * PRICES.lambdaPerGbSecondArm;
  const lambdaInit = cost.lambda.total * a.lambdaInitSeconds * gbSecond;
  // The execution's trace, the API request's, and one per EventBridge-started invocation (job events, Slack).
  const traces = 1 + cost.lambda.api + cost.lambda.jobEvents + cost.lambda.slack;
  const xray = traces * EXTRA_PRICES.xrayPerTraceRecorded;
  const logBytes =
    cost.transitions * a.stateMachineLogEventsPerTransition * a.stateMachineLogEventBytes +
    cost.lambda.total * a.lambdaLogBytesPerInvocation;
  const logs = (logBytes / 2 ** 30) * EXTRA_PRICES.logsPerGbIngested;
  const total = lambdaInit + xray + logs;
  const runs = a.scheduledRunsPerMonth.reconcileSweep + a.scheduledRunsPerMonth.slackSweep;
  const monthly = {
    lambda:
      runs * (PRICES.lambdaPerRequest + (ASSUMPTIONS.lambdaBilledSeconds + a.lambdaInitSeconds) * gbSecond),
    dynamo: runs * a.readUnitsPerSweepRun * PRICES.dynamoPerReadUnit,
    xray: runs * EXTRA_PRICES.xrayPerTraceRecorded,
    logs: ((runs * a.lambdaLogBytesPerInvocation) / 2 ** 30) * EXTRA_PRICES.logsPerGbIngested,
    total: 0,
  };
  monthly.total = monthly.lambda + monthly.dynamo + monthly.xray + monthly.logs;
  const r = (v: number) => round(v, 8);
  return {
    perDeployment: {
      lambdaInit: r(lambdaInit),
      xray: r(xray),
      logs: r(logs),
      total: r(total),
      withExtras: r(cost.usd.total + total),
    },
    monthlyFixed: {
      lambda: r(monthly.lambda),
      dynamo: r(monthly.dynamo),
      xray: r(monthly.xray),
      logs: r(monthly.logs),
      total: r(monthly.total),
    },
  };
}
