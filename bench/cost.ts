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
