import { nextRun } from '../functions/shared/registry/calendar.ts';
import type { EventLog } from '../local/workflow-engine.ts';
import { type CfnTemplate, getAtt, isRecord, refName, resourcesOfType } from '../scripts/cfn-yaml.ts';

/**
 * The parts of the cost model that need no running stack: prices, assumptions, what template.yaml configures
 * (memory, tracing, Step Functions logging, every schedule), and the arithmetic that turns measured counts
 * into dollars. Kept apart from bench/cost.ts (which drives a local stack) so tests can price fixtures.
 */

/** us-east-1 list prices; each has its source in PRICE_SOURCES. Free tiers are ignored throughout. */
export const PRICES = {
  /** Step Functions, DynamoDB, Lambda, HTTP API and CodePipeline as checked on 2026-11-28; the rest 2026-12-04. */
  date: '2026-12-04',
  stepFunctionsPerTransition: 0.025 / 1_000,
  dynamoPerWriteUnit: 0.625 / 1_000_000,
  dynamoPerReadUnit: 0.125 / 1_000_000,
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaPerGbSecondArm: 0.0000133334,
  httpApiPerRequest: 1.0 / 1_000_000,
  codePipelineV2PerActionMinute: 0.002,
  xrayPerTraceRecorded: 5.0 / 1_000_000,
  xrayPerTraceRetrieved: 0.5 / 1_000_000,
  /** Vended logs (Step Functions) and Lambda logs, first tier. */
  logsPerGbIngested: 0.5,
  /** EventBridge Scheduler (the registry's promotion schedules); SAM `Schedule` events are EventBridge rules, free. */
  schedulerPerInvocation: 1.0 / 1_000_000,
  /** Per secret and month, whether or not it is read (reads: $0.05 per 10,000 API calls). */
  secretsManagerPerSecretMonth: 0.4,
  /** A customer managed key per month (none in template.yaml; a table key is passed in as a parameter). */
  kmsPerKeyMonth: 1.0,
  /** A standard-resolution metric alarm per month. */
  cloudWatchPerAlarmMonth: 0.1,
} as const;

export const PRICE_SOURCES: Record<string, string> = {
  'Step Functions': 'https://aws.amazon.com/step-functions/pricing/',
  DynamoDB: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
  Lambda: 'https://aws.amazon.com/lambda/pricing/',
  'Lambda INIT billing (since 2025-08-01)':
    'https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/',
  'API Gateway HTTP API': 'https://aws.amazon.com/api-gateway/pricing/',
  'CodePipeline V2': 'https://aws.amazon.com/codepipeline/pricing/',
  'X-Ray': 'https://aws.amazon.com/xray/pricing/',
  'CloudWatch Logs': 'https://aws.amazon.com/cloudwatch/pricing/',
  'EventBridge Scheduler': 'https://aws.amazon.com/eventbridge/pricing/',
  'Secrets Manager': 'https://aws.amazon.com/secrets-manager/pricing/',
  KMS: 'https://aws.amazon.com/kms/pricing/',
  'CloudWatch alarms': 'https://aws.amazon.com/cloudwatch/pricing/',
};

/** Resource types that cost a fixed amount per month just by existing, whatever runs. */
export const STANDING_PRICES: Record<string, number> = {
  'AWS::SecretsManager::Secret': PRICES.secretsManagerPerSecretMonth,
  'AWS::KMS::Key': PRICES.kmsPerKeyMonth,
  'AWS::CloudWatch::Alarm': PRICES.cloudWatchPerAlarmMonth,
};

/**
 * Resource types that cost nothing while nothing runs (free, or priced per use, which the per-deployment and
 * schedule figures cover; storage is left out: S3, DynamoDB and log storage grow with use, not with time).
 * A test fails on a type in template.yaml that is in neither list, so a new one gets a decision.
 */
export const USAGE_PRICED_TYPES = new Set([
  'AWS::Serverless::Function',
  'AWS::Serverless::StateMachine',
  'AWS::Serverless::HttpApi',
  'AWS::Logs::LogGroup',
  'AWS::IAM::Role',
  'AWS::IAM::ManagedPolicy',
  'AWS::S3::Bucket',
  'AWS::S3::BucketPolicy',
  'AWS::CodeBuild::Project',
  'AWS::Scheduler::Schedule',
  'AWS::Scheduler::ScheduleGroup',
  // On-demand only (a test checks BillingMode): provisioned capacity would be standing.
  'AWS::DynamoDB::Table',
  // Backed by a function of the stack, run when the stack deploys.
  'Custom::JobSpecs',
]);

/** What no local run measures; each says why it has the value it has. */
export const ASSUMPTIONS = {
  /**
   * Handler time of an invocation the bench does not time (the API, job events, Slack, the Tasks that hand
   * out a task token, the sweeps): a few single-digit-ms DynamoDB calls, rounded up generously.
   */
  handlerMs: 100,
  /** Init when results.json has no cold-start row for a function: the slowest measured bundle, rounded up. */
  initMsFallback: 110,
  /**
   * Share of invocations that start cold. A deployment: every function cold (deployments of one team are
   * further apart than Lambda keeps an idle instance; an upper bound), and the burst priced the same so that
   * its ratio measures the waiting protocol only. A watched deployment: the first request cold, the polls
   * 1–5 s apart keep the API warm. Schedules: every run cold (an upper bound; a 5-minute rate is often warm).
   */
  coldShare: { deployment: 1, schedule: 1 },
  /**
   * SlackFunction runs on every execution's RUNNING and terminal status and on each job's IN_PROGRESS event
   * (template.yaml rules), chat-started or not; each looks up the reply item (a consistent GetItem). Local
   * mode keeps chat in memory, so these are added here rather than measured.
   */
  slackInvocations: 4,
  slackReadUnits: 4,
  /** Powertools lines at INFO plus the platform's JSON start/report records, per invocation. Not measured. */
  lambdaLogBytesPerInvocation: 1500,
  /** Traces someone opens in the console or API: none routinely. */
  xrayRetrievedPerTraceRecorded: 0,
  /** A CodePipeline V2 pipeline doing the same: Source (connection), Build and Deploy (CodeBuild) actions. */
  pipelineScenarios: [
    { name: 'short jobs', sourceMin: 1, buildMin: 2, deployMin: 3 },
    { name: 'typical SAM app', sourceMin: 1, buildMin: 4, deployMin: 6 },
  ],
};

// --- What template.yaml configures -----------------------------------------------------------------------

export interface FunctionSettings {
  memoryGb: number;
  tracing: boolean;
  sourceMaps: boolean;
}

export interface ScheduleSetting {
  /** Logical id of the schedule (`Function/Event` for a SAM event, the resource id for a Scheduler schedule). */
  name: string;
  kind: 'rule' | 'scheduler';
  expression: string;
  timezone: string;
  /** Logical id of what it starts: a function or the state machine. */
  target: string;
  runsPerMonth: number;
}

export type StepFunctionsLogLevel = 'ALL' | 'ERROR' | 'FATAL' | 'OFF';

export interface TemplateCostSettings {
  functions: Record<string, FunctionSettings>;
  stateMachine: {
    name: string;
    logLevel: StepFunctionsLogLevel;
    includeExecutionData: boolean;
    tracing: boolean;
  };
  schedules: ScheduleSetting[];
  /** Resources with a monthly price of their own (STANDING_PRICES), by logical id. */
  standing: StandingResource[];
}

export interface StandingResource {
  resource: string;
  type: string;
  usdPerMonth: number;
}

/** Average runs in a month: the runs in the 365 days after a fixed Monday (start excluded, end included), ÷ 12. */
export function runsPerMonth(expression: string, timezone: string): number {
  const start = new Date('2027-01-04T00:00:00Z');
  const end = new Date(start.getTime() + 365 * 86_400_000);
  let runs = 0;
  for (
    let at = nextRun(expression, timezone, start, start);
    at <= end;
    at = nextRun(expression, timezone, at, start)
  ) {
    runs++;
  }
  return Math.round((runs / 12) * 100) / 100;
}

const enabled = (value: unknown) => value !== false && value !== 'DISABLED';

export function templateCostSettings(template: CfnTemplate): TemplateCostSettings {
  const globals = template.Globals?.Function ?? {};
  const nodeOptions = (resource: Record<string, unknown>) => {
    const own =
      isRecord(resource.Environment) && isRecord(resource.Environment.Variables)
        ? resource.Environment.Variables.NODE_OPTIONS
        : undefined;
    const global =
      isRecord(globals.Environment) && isRecord(globals.Environment.Variables)
        ? globals.Environment.Variables.NODE_OPTIONS
        : undefined;
    return String(own ?? global ?? '');
  };
  const functions: Record<string, FunctionSettings> = {};
  const schedules: ScheduleSetting[] = [];
  for (const [id, resource] of resourcesOfType(template, 'AWS::Serverless::Function')) {
    const p = resource.Properties ?? {};
    functions[id] = {
      memoryGb: Number(p.MemorySize ?? globals.MemorySize ?? 128) / 1024,
      tracing: (p.Tracing ?? globals.Tracing) === 'Active',
      sourceMaps: nodeOptions(p).includes('--enable-source-maps'),
    };
    for (const [event, spec] of Object.entries(isRecord(p.Events) ? p.Events : {})) {
      if (!isRecord(spec) || !isRecord(spec.Properties)) continue;
      const e = spec.Properties;
      const expression =
        spec.Type === 'Schedule' ? e.Schedule : spec.Type === 'ScheduleV2' ? e.ScheduleExpression : undefined;
      if (typeof expression !== 'string' || !enabled(e.Enabled) || !enabled(e.State)) continue;
      const timezone =
        typeof e.ScheduleExpressionTimezone === 'string' ? e.ScheduleExpressionTimezone : 'UTC';
      schedules.push({
        name: `${id}/${event}`,
        kind: spec.Type === 'Schedule' ? 'rule' : 'scheduler',
        expression,
        timezone,
        target: id,
        runsPerMonth: runsPerMonth(expression, timezone),
      });
    }
  }
  for (const [id, resource] of resourcesOfType(template, 'AWS::Scheduler::Schedule')) {
    const p = resource.Properties ?? {};
    if (typeof p.ScheduleExpression !== 'string' || !enabled(p.State)) continue;
    const target = isRecord(p.Target) ? (refName(p.Target.Arn) ?? getAtt(p.Target.Arn)?.[0]) : undefined;
    const timezone = typeof p.ScheduleExpressionTimezone === 'string' ? p.ScheduleExpressionTimezone : 'UTC';
    schedules.push({
      name: id,
      kind: 'scheduler',
      expression: p.ScheduleExpression,
      timezone,
      target: target ?? '?',
      runsPerMonth: runsPerMonth(p.ScheduleExpression, timezone),
    });
  }
  const machines = resourcesOfType(template, 'AWS::Serverless::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const [name, machine] = machines[0]!;
  const logging = isRecord(machine.Properties?.Logging) ? machine.Properties.Logging : {};
  const tracing = isRecord(machine.Properties?.Tracing) ? machine.Properties.Tracing : {};
  const level = String(logging.Level ?? 'OFF');
  if (!['ALL', 'ERROR', 'FATAL', 'OFF'].includes(level))
    throw new Error(`unknown Step Functions log level ${level}`);
  return {
    functions,
    stateMachine: {
      name,
      logLevel: level as StepFunctionsLogLevel,
      includeExecutionData: logging.IncludeExecutionData === true,
      tracing: tracing.Enabled === true,
    },
    schedules,
    standing: Object.entries(template.Resources)
      .filter(([, resource]) => STANDING_PRICES[resource.Type] !== undefined)
      .map(([resource, { Type }]) => ({
        resource,
        type: Type,
        usdPerMonth: STANDING_PRICES[Type] as number,
      })),
  };
}

// --- Step Functions logging --------------------------------------------------------------------------------

/** An execution ARN of the length AWS writes (stack-named machine, ULID execution name). */
const EXECUTION_ARN =
  'arn:aws:states:us-east-1:123456789012:execution:crossdeploy-deploy:01JH0000000000000000000000';
const FAILURE = /Failed|TimedOut|Aborted/;
const FATAL = new Set(['ExecutionFailed', 'ExecutionAborted', 'ExecutionTimedOut']);

const prefix = (type: string | undefined) =>
  type === 'Choice'
    ? 'Choice'
    : type === 'Succeed'
      ? 'Succeed'
      : type === 'Fail'
        ? 'Fail'
        : type === 'Wait'
          ? 'Wait'
          : type === 'Pass'
            ? 'Pass'
            : 'Task';

/**
 * The CloudWatch Logs records Step Functions writes for an execution, rebuilt from the local engine's events in
 * the shape AWS logs them (`id`, `type`, `details`, `previous_event_id`, `event_timestamp`, `execution_arn`):
 * a state's Entered/Exited, a Lambda Task's Scheduled/Started/(Submitted for a task token)/Succeeded or Failed,
 * the execution's Started/Succeeded/Failed. `details` carries input and output only with IncludeExecutionData.
 * Returns the bytes ingested at `level`.
 */
export function stateMachineLogBytes(
  events: readonly EventLog[],
  level: StepFunctionsLogLevel,
  includeExecutionData: boolean,
  tokenTasks: ReadonlySet<string>,
): number {
  if (level === 'OFF') return 0;
  const records: { type: string; details: Record<string, unknown> }[] = [];
  const data = (key: string, value: unknown) =>
    includeExecutionData
      ? { [key]: JSON.stringify(value ?? null), [`${key}Details`]: { truncated: false } }
      : {};
  for (const e of events) {
    const state = (e as { state?: { name: string; type?: string; input?: unknown; output?: unknown } }).state;
    switch (e.type) {
      case 'ExecutionStarted':
        records.push({
          type: 'ExecutionStarted',
          details: {
            ...data('input', (e as { input?: unknown }).input),
            roleArn: 'arn:aws:iam::123456789012:role/crossdeploy-StateMachineRole-ABCDEFGHIJKL',
          },
        });
        break;
      case 'ExecutionSucceeded':
        records.push({
          type: 'ExecutionSucceeded',
          details: data('output', (e as { output?: unknown }).output),
        });
        break;
      case 'ExecutionFailed':
        records.push({
          type: 'ExecutionFailed',
          details: { error: (e as { Error?: string }).Error, cause: (e as { Cause?: string }).Cause },
        });
        break;
      case 'StateEntered':
        records.push({
          type: `${prefix(state?.type)}StateEntered`,
          details: { name: state?.name, ...data('input', state?.input) },
        });
        if (state?.type === 'Task') {
          records.push({
            type: 'TaskScheduled',
            details: {
              resourceType: 'lambda',
              resource: tokenTasks.has(state.name) ? 'invoke.waitForTaskToken' : 'invoke',
              region: 'us-east-1',
              ...data('parameters', state.input),
            },
          });
          records.push({ type: 'TaskStarted', details: { resourceType: 'lambda', resource: 'invoke' } });
          if (tokenTasks.has(state.name))
            records.push({
              type: 'TaskSubmitted',
              details: { resourceType: 'lambda', resource: 'invoke.waitForTaskToken', ...data('output', {}) },
            });
        }
        break;
      case 'StateExited':
        if (state?.type === 'Task')
          records.push({
            type: 'TaskSucceeded',
            details: { resourceType: 'lambda', resource: 'invoke', ...data('output', state.output) },
          });
        records.push({
          type: `${prefix(state?.type)}StateExited`,
          details: { name: state?.name, ...data('output', state?.output) },
        });
        break;
      case 'StateRetried':
      case 'StateCaught':
        records.push({
          type: 'TaskFailed',
          details: {
            resourceType: 'lambda',
            resource: 'invoke',
            error: (e as { Error?: string }).Error,
            cause: (e as { Cause?: string }).Cause,
          },
        });
        break;
      default:
        break;
    }
  }
  let bytes = 0;
  let previous = 0;
  records.forEach((record, i) => {
    const keep = level === 'ALL' || (level === 'ERROR' ? FAILURE.test(record.type) : FATAL.has(record.type));
    if (!keep) return;
    bytes += Buffer.byteLength(
      JSON.stringify({
        id: String(i + 1),
        type: record.type,
        details: record.details,
        previous_event_id: String(previous),
        event_timestamp: '1764849600000',
        execution_arn: EXECUTION_ARN,
        redrive_count: '0',
      }),
    );
    previous = i + 1;
  });
  return bytes;
}

// --- Lambda billed duration ------------------------------------------------------------------------------

export interface Invocation {
  function: string;
  count: number;
  /** Handler time per invocation; `measured` says whether the bench timed it or ASSUMPTIONS.handlerMs stands in. */
  handlerMs: number;
  measured: boolean;
}

export interface InitSource {
  /** Init per function (ms) from results.json's cold-start rows, source maps on when the template sets them. */
  initMs: Record<string, number>;
  /** Functions priced with ASSUMPTIONS.initMsFallback (no cold-start row). */
  assumed: string[];
}

/** Init per function from cold-start rows (the source-maps-on figure when template.yaml enables them). */
export function initOf(
  rows: readonly { function: string; bundleMs: number; bundleSourceMapsMs?: number }[] | undefined,
  settings: TemplateCostSettings,
): InitSource {
  const initMs: Record<string, number> = {};
  const assumed: string[] = [];
  for (const [fn, s] of Object.entries(settings.functions)) {
    const row = rows?.find((r) => r.function === fn);
    if (row) initMs[fn] = s.sourceMaps ? (row.bundleSourceMapsMs ?? row.bundleMs) : row.bundleMs;
    else {
      initMs[fn] = ASSUMPTIONS.initMsFallback;
      assumed.push(fn);
    }
  }
  return { initMs, assumed };
}

export interface LambdaBill {
  invocations: number;
  /** Billed GB-seconds, handler and init. */
  gbSeconds: number;
  initGbSeconds: number;
  usd: number;
  initUsd: number;
}

/**
 * Lambda's bill for invocations: per request, plus memory × billed duration, where billed duration is the
 * handler time rounded up to the millisecond plus, for the `coldShare` of invocations that start cold, the
 * init time (billed for managed runtimes since 2025-08-01).
 */
export function lambdaBill(
  invocations: readonly Invocation[],
  settings: TemplateCostSettings,
  init: InitSource,
  coldShare: number,
): LambdaBill {
  let count = 0;
  let gbSeconds = 0;
  let initGbSeconds = 0;
  for (const inv of invocations) {
    const memoryGb = settings.functions[inv.function]?.memoryGb;
    if (memoryGb === undefined) throw new Error(`no function ${inv.function} in template.yaml`);
    const initMs = Math.ceil(init.initMs[inv.function] ?? ASSUMPTIONS.initMsFallback);
    count += inv.count;
    gbSeconds += inv.count * memoryGb * (Math.ceil(inv.handlerMs) / 1000);
    initGbSeconds += inv.count * coldShare * memoryGb * (initMs / 1000);
  }
  const initUsd = initGbSeconds * PRICES.lambdaPerGbSecondArm;
  return {
    invocations: count,
    gbSeconds: gbSeconds + initGbSeconds,
    initGbSeconds,
    usd: count * PRICES.lambdaPerRequest + (gbSeconds + initGbSeconds) * PRICES.lambdaPerGbSecondArm,
    initUsd,
  };
}

/** X-Ray traces recorded: one per traced entry point (an execution with tracing on carries its Tasks' segments). */
export function xrayUsd(traces: number): number {
  return (
    traces *
    (PRICES.xrayPerTraceRecorded + ASSUMPTIONS.xrayRetrievedPerTraceRecorded * PRICES.xrayPerTraceRetrieved)
  );
}

export const logsUsd = (bytes: number) => (bytes / 2 ** 30) * PRICES.logsPerGbIngested;

export const round8 = (v: number) => Math.round(v * 1e8) / 1e8;

// --- One priced run -----------------------------------------------------------------------------------------

export interface RunCounts {
  transitions: number;
  writeUnits: number;
  readUnits: number;
  invocations: Invocation[];
  apiRequests: number;
  traces: number;
  logBytes: number;
}

export interface RunUsd {
  stepFunctions: number;
  dynamoWrites: number;
  dynamoReads: number;
  lambda: number;
  /** The part of `lambda` that is init on cold starts. */
  lambdaInit: number;
  httpApi: number;
  xray: number;
  logs: number;
  total: number;
}

export function priceRun(
  counts: RunCounts,
  settings: TemplateCostSettings,
  init: InitSource,
  coldShare: number,
): RunUsd {
  const lambda = lambdaBill(counts.invocations, settings, init, coldShare);
  const usd = {
    stepFunctions: counts.transitions * PRICES.stepFunctionsPerTransition,
    dynamoWrites: counts.writeUnits * PRICES.dynamoPerWriteUnit,
    dynamoReads: counts.readUnits * PRICES.dynamoPerReadUnit,
    lambda: lambda.usd,
    lambdaInit: lambda.initUsd,
    httpApi: counts.apiRequests * PRICES.httpApiPerRequest,
    xray: xrayUsd(counts.traces),
    logs: logsUsd(counts.logBytes),
    total: 0,
  };
  usd.total =
    usd.stepFunctions + usd.dynamoWrites + usd.dynamoReads + usd.lambda + usd.httpApi + usd.xray + usd.logs;
  return Object.fromEntries(Object.entries(usd).map(([k, v]) => [k, round8(v)])) as unknown as RunUsd;
}

/** Traces one deployment records: the execution's (its Tasks join it), and each traced function started by an event. */
export function tracesOf(
  settings: TemplateCostSettings,
  taskInvocations: readonly Invocation[],
  eventStarted: readonly Invocation[],
): number {
  const traced = (list: readonly Invocation[]) =>
    list.reduce((sum, inv) => sum + (settings.functions[inv.function]?.tracing ? inv.count : 0), 0);
  return (settings.stateMachine.tracing ? 1 : traced(taskInvocations)) + traced(eventStarted);
}

// --- The fixed monthly cost ------------------------------------------------------------------------------

export interface MonthlyRow {
  schedule: string;
  kind: 'rule' | 'scheduler';
  expression: string;
  timezone: string;
  target: string;
  /** It starts the deploy workflow: each run is priced as a deployment. */
  workflow: boolean;
  runsPerMonth: number;
  /** DynamoDB read units per run: measured on an idle table, or (readsAssumed) 1; 0 for a workflow run (priced as a deployment). */
  readUnitsPerRun: number;
  readsAssumed: boolean;
  usd: number;
}

/**
 * Every schedule in template.yaml, a month of runs with nothing deployed: a function's run is a request, its
 * billed duration (ASSUMPTIONS.handlerMs plus init at coldShare.schedule), the reads it makes on an idle table,
 * its trace and its log lines; a Scheduler schedule adds its invocation. A schedule that starts the workflow (a
 * registry promotion) costs a deployment per run: `deploymentUsd`. Resources priced per month by existing
 * (the Slack secrets) are added as they are.
 */
export function monthlyFixed(
  settings: TemplateCostSettings,
  init: InitSource,
  readUnitsPerRun: Record<string, number>,
  deploymentUsd: number,
): { rows: MonthlyRow[]; standing: StandingResource[]; total: number } {
  const rows = settings.schedules.map((s): MonthlyRow => {
    const scheduler = s.kind === 'scheduler' ? s.runsPerMonth * PRICES.schedulerPerInvocation : 0;
    const workflow = s.target === settings.stateMachine.name;
    const measured = workflow ? 0 : readUnitsPerRun[s.target];
    const reads = measured ?? 1;
    let usd: number;
    if (workflow) {
      usd = s.runsPerMonth * deploymentUsd + scheduler;
    } else {
      const fn = settings.functions[s.target];
      if (!fn)
        throw new Error(
          `schedule ${s.name} starts ${s.target}, which is neither a function nor the state machine`,
        );
      const run = priceRun(
        {
          transitions: 0,
          writeUnits: 0,
          readUnits: reads,
          invocations: [{ function: s.target, count: 1, handlerMs: ASSUMPTIONS.handlerMs, measured: false }],
          apiRequests: 0,
          traces: fn.tracing ? 1 : 0,
          logBytes: ASSUMPTIONS.lambdaLogBytesPerInvocation,
        },
        settings,
        init,
        ASSUMPTIONS.coldShare.schedule,
      );
      usd = s.runsPerMonth * run.total + scheduler;
    }
    return {
      schedule: s.name,
      kind: s.kind,
      expression: s.expression,
      timezone: s.timezone,
      target: s.target,
      workflow,
      runsPerMonth: s.runsPerMonth,
      readUnitsPerRun: reads,
      readsAssumed: measured === undefined,
      usd: round8(usd),
    };
  });
  const standing = settings.standing;
  return {
    rows,
    standing,
    total: round8(
      rows.reduce((sum, r) => sum + r.usd, 0) + standing.reduce((sum, r) => sum + r.usdPerMonth, 0),
    ),
  };
}
