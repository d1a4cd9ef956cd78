import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DynamoChatStore } from '#shared/aws/slack-store.ts';
import { sweepDeadExecutions, sweepLostJobEvents, sweepParkedWaiters } from '../functions/reconcile/core.ts';
import { sweepExpiredReplies } from '../functions/slack/notifier.ts';
import type { EventLog } from '../local/workflow-engine.ts';
import { loadTemplate } from '../scripts/cfn-yaml.ts';
import {
  ASSUMPTIONS,
  type InitSource,
  type Invocation,
  initOf,
  type MonthlyRow,
  monthlyFixed,
  PRICES,
  priceRun,
  type RunUsd,
  type StandingResource,
  stateMachineLogBytes,
  type TemplateCostSettings,
  templateCostSettings,
  tracesOf,
} from './cost-model.ts';
import type { DynamoMeter, Projections } from './dynamo-meter.ts';
import { executionOf, postDeployment, type Stack, TABLE } from './harness.ts';
import { round, sleep } from './stats.ts';

export { ASSUMPTIONS, PRICE_SOURCES, PRICES } from './cost-model.ts';

/**
 * Cost per deployment: one happy-path deployment (build, lock, assume role, deploy, record, release) after a
 * warm-up deployment of the same environment, counted as AWS would bill it: state transitions from the
 * engine's events, DynamoDB calls and request units from the meter (GSIs included), Lambda invocations from
 * the Task states, the job-event rule and the API. Local-mode-only store reads are taken out: the runner
 * lookup before each target access (LocalTargetAccess) and the wait for the starter's record of a finished
 * job (one read per job, since the stand-in ends only once it is recorded). What the execution does after it
 * ended (local mode's own reconcile check) is not counted: in AWS only a failed execution triggers that.
 */

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

/** What the model reads from the repository: template.yaml's settings, the ASL's Task states, init per function. */
export interface CostContext {
  settings: TemplateCostSettings;
  init: InitSource;
  /** Task state -> the function it invokes (its `${XArn}` substitution). */
  stateFunctions: Record<string, string>;
  /** Task states that hand out a task token (their Lambda returns at once; the wait is not billed). */
  tokenTasks: Set<string>;
}

export function costContext(
  root: URL,
  coldStart: readonly { function: string; bundleMs: number; bundleSourceMapsMs?: number }[] | undefined,
): CostContext {
  const settings = templateCostSettings(loadTemplate(new URL('template.yaml', root).pathname));
  const asl = JSON.parse(readFileSync(new URL('statemachine/deploy.asl.json', root), 'utf8')) as AslStates;
  const stateFunctions: Record<string, string> = {};
  const tokenTasks = new Set<string>();
  const walk = (states: AslStates) => {
    for (const [name, state] of Object.entries(states.States)) {
      const fn = /^\$\{(\w+)Arn\}$/.exec(String(state.Parameters?.FunctionName ?? state.Resource ?? ''))?.[1];
      if (state.Type === 'Task' && fn) stateFunctions[name] = fn;
      if (state.Type === 'Task' && String(state.Resource).endsWith('.waitForTaskToken')) tokenTasks.add(name);
      for (const branch of state.Branches ?? []) walk(branch);
    }
  };
  walk(asl);
  return { settings, init: initOf(coldStart, settings), stateFunctions, tokenTasks };
}

interface AslStates {
  States: Record<
    string,
    { Type: string; Resource?: string; Parameters?: { FunctionName?: string }; Branches?: AslStates[] }
  >;
}

/**
 * The Lambda invocations of executions, from the engine's events: one per Task entry and retry. A Task that
 * returns its result is timed from its StateEntered to its StateExited (the local engine and dynalite included:
 * an over-estimate); a task-token Task's Lambda returns at once and the wait is the job, so it gets
 * ASSUMPTIONS.handlerMs.
 */
export function taskInvocations(
  executions: readonly { events: EventLog[] }[],
  context: CostContext,
): Invocation[] {
  const byKey = new Map<string, { function: string; count: number; totalMs: number; measured: boolean }>();
  for (const { events } of executions) {
    const entered = new Map<string, number>();
    for (const e of events) {
      const name = e.state?.name;
      if (!name) continue;
      const fn = context.stateFunctions[name];
      if (!fn) continue;
      const measured = !context.tokenTasks.has(name);
      const key = `${fn}:${measured}`;
      const row = byKey.get(key) ?? { function: fn, count: 0, totalMs: 0, measured };
      byKey.set(key, row);
      if (e.type === 'StateEntered' || e.type === 'StateRetried') {
        row.count++;
        entered.set(name, Number(e.timestamp));
        if (!measured) row.totalMs += ASSUMPTIONS.handlerMs;
      } else if (e.type === 'StateExited' && measured) {
        row.totalMs += Number(e.timestamp) - (entered.get(name) ?? Number(e.timestamp));
      }
    }
  }
  return [...byKey.values()].map((r) => ({
    function: r.function,
    count: r.count,
    handlerMs: r.count === 0 ? 0 : round(r.totalMs / r.count, 1),
    measured: r.measured,
  }));
}

/** The invocations events start (not the workflow): the API request, job events, Slack progress. Not timed. */
const eventInvocations = (deployments: number, jobEvents: number): Invocation[] => [
  { function: 'ApiFunction', count: deployments, handlerMs: ASSUMPTIONS.handlerMs, measured: false },
  { function: 'JobEventsFunction', count: jobEvents, handlerMs: ASSUMPTIONS.handlerMs, measured: false },
  {
    function: 'SlackFunction',
    count: deployments * ASSUMPTIONS.slackInvocations,
    handlerMs: ASSUMPTIONS.handlerMs,
    measured: false,
  },
];

const logBytesOf = (
  executions: readonly { events: EventLog[] }[],
  context: CostContext,
  invocations: number,
) =>
  executions.reduce(
    (sum, x) =>
      sum +
      stateMachineLogBytes(
        x.events,
        context.settings.stateMachine.logLevel,
        context.settings.stateMachine.includeExecutionData,
        context.tokenTasks,
      ),
    0,
  ) +
  invocations * ASSUMPTIONS.lambdaLogBytesPerInvocation;

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
  /** Per function: invocations and handler ms (measured, or ASSUMPTIONS.handlerMs). */
  invocations: Invocation[];
  traces: number;
  /** CloudWatch Logs bytes: the state machine's records at its configured level, plus the functions' lines. */
  logBytes: { stateMachine: number; lambda: number };
  usd: RunUsd;
  pipeline: { name: string; actionMinutes: number; usd: number; ratio: number }[];
}

export async function measureCost(stack: Stack, context: CostContext): Promise<CostResult> {
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
  const fromTasks = taskInvocations([execution], context);
  const fromEvents = eventInvocations(1, jobEvents);
  const invocations = [...fromTasks, ...fromEvents];
  const traces = tracesOf(context.settings, fromTasks, fromEvents);
  const stateMachineBytes = logBytesOf([execution], context, 0);
  const lambdaLogBytes = lambda.total * ASSUMPTIONS.lambdaLogBytesPerInvocation;
  const usd = priceRun(
    {
      transitions,
      writeUnits,
      readUnits,
      invocations,
      apiRequests: 1,
      traces,
      logBytes: stateMachineBytes + lambdaLogBytes,
    },
    context.settings,
    context.init,
    ASSUMPTIONS.coldShare.deployment,
  );
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
    invocations,
    traces,
    logBytes: { stateMachine: stateMachineBytes, lambda: lambdaLogBytes },
    usd,
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
  context: CostContext,
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
  const waits = ids.map((_, i) => i * options.deployMinutes * 60);
  const recheckTransitions = waits.reduce((sum, w) => sum + 3 * Math.floor(w / options.recheckSeconds), 0);
  const recheckInvocations = (recheckTransitions / 3) * 2;
  // The Wait loop: per poll a Wait, Acquire Lock and its Choice; the first answer WAITING is measured above.
  const polls = waits.reduce((sum, w) => sum + Math.ceil(w / options.pollSeconds), 0);
  const acquire = (count: number): Invocation => ({
    function: context.stateFunctions['Acquire Lock'] ?? 'AcquireLockFunction',
    count,
    handlerMs: ASSUMPTIONS.handlerMs,
    measured: false,
  });
  const fromTasks = taskInvocations(executions, context);
  const fromEvents = eventInvocations(ids.length, jobEvents);
  const traces = tracesOf(context.settings, fromTasks, fromEvents);
  const logBytes = logBytesOf(executions, context, lambdaInvocations);
  // Same cold share as the uncontended figure, so that the ratio measures the waiting protocol only.
  const price = (extra: { transitions: number; invocations: Invocation[]; readUnits: number }) =>
    priceRun(
      {
        transitions: transitions + extra.transitions,
        writeUnits,
        readUnits: readUnits + extra.readUnits,
        invocations: [...fromTasks, ...fromEvents, ...extra.invocations],
        apiRequests: ids.length,
        traces,
        logBytes:
          logBytes +
          (extra.transitions / Math.max(1, transitions)) *
            (logBytes - lambdaInvocations * ASSUMPTIONS.lambdaLogBytesPerInvocation),
      },
      context.settings,
      context.init,
      ASSUMPTIONS.coldShare.deployment,
    ).total;
  const total = price({
    transitions: recheckTransitions,
    invocations: [acquire(recheckInvocations)],
    readUnits: 0,
  });
  // Polling instead of parking: the park and the hand-over's Acquire Lock round are replaced by polls.
  const pollingTransitions = transitions - 3 * parks + 3 * polls;
  const totalPolling = price({
    transitions: pollingTransitions - transitions,
    invocations: [acquire(polls - 2 * parks)],
    readUnits: polls * 2,
  });
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
 * The reads each scheduled function makes on every run with nothing deployed, measured on the bench's table
 * after the cost section (no deployment active, no chat reply stored): the reconcile handler's three sweeps
 * (lost job events, dead executions, parked waiters) and the Slack reply sweep, run through their own cores.
 * Anything else they would touch fails the measurement rather than going uncounted.
 */
export async function measureIdleSweeps(stack: Stack): Promise<Record<string, number>> {
  const untouched = new Proxy(
    {},
    {
      get: (_, key) => {
        if (key === 'then') return undefined;
        throw new Error(`an idle sweep used ${String(key)}, which the cost model does not price`);
      },
    },
  );
  const clock = { now: () => new Date() };
  const deps = new Proxy({ store: stack.store, clock } as Record<string, unknown>, {
    get: (target, key) =>
      key in target ? target[key as string] : (untouched as Record<string, unknown>)[key as string],
  }) as unknown as Parameters<typeof sweepDeadExecutions>[0];
  const chat = new DynamoChatStore({ client: stack.doc, tableName: TABLE });
  const { meter } = stack;
  const measure = async (run: () => Promise<unknown>) => {
    meter.reset();
    meter.detailed = true;
    meter.paused = false;
    await run();
    meter.detailed = false;
    return meter.reads.reduce((sum, r) => sum + r.units, 0);
  };
  return {
    ReconcileFunction: await measure(async () => {
      await sweepLostJobEvents(deps);
      await sweepDeadExecutions(deps, { budgetMs: 60_000, pollMs: 1_000 });
      await sweepParkedWaiters(deps);
    }),
    SlackFunction: await measure(() => sweepExpiredReplies({ chat, clock, store: stack.store })),
  };
}

export interface MonthlyResult {
  rows: MonthlyRow[];
  /** Resources priced per month by existing (absent from results made before they were counted). */
  standing?: StandingResource[];
  total: number;
  /** What one scheduled promotion's run is priced at: one uncontended deployment. */
  deploymentUsd: number;
  coldStartRows: boolean;
  initAssumed: string[];
}

export function measureMonthly(
  context: CostContext,
  readUnitsPerRun: Record<string, number>,
  uncontended: CostResult,
): MonthlyResult {
  const { rows, standing, total } = monthlyFixed(
    context.settings,
    context.init,
    readUnitsPerRun,
    uncontended.usd.total,
  );
  return {
    rows,
    standing,
    total,
    deploymentUsd: uncontended.usd.total,
    coldStartRows: context.init.assumed.length < Object.keys(context.settings.functions).length,
    initAssumed: context.init.assumed,
  };
}
