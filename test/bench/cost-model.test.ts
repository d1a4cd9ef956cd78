import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ASSUMPTIONS,
  initOf,
  lambdaBill,
  monthlyFixed,
  PRICES,
  runsPerMonth,
  STANDING_PRICES,
  stateMachineLogBytes,
  templateCostSettings,
  tracesOf,
  USAGE_PRICED_TYPES,
} from '../../bench/cost-model.ts';
import type { EventLog } from '../../local/workflow-engine.ts';
import { type CfnTemplate, parseTemplate } from '../../scripts/cfn-yaml.ts';

/**
 * The cost model reads what it prices from template.yaml, so changing the template changes the figure: the
 * schedules, the functions' memory and tracing, the state machine's log level and tracing.
 */

const templateText = readFileSync(new URL('../../template.yaml', import.meta.url), 'utf8');
const template = () => parseTemplate(templateText);
const settingsOf = (t: CfnTemplate) => templateCostSettings(t);

/** A happy-path slice of an execution as the local engine logs it. */
const events = [
  { type: 'ExecutionStarted', timestamp: 1, input: { application: 'app', environment: 'dev' } },
  { type: 'StateEntered', timestamp: 2, state: { name: 'Acquire Lock', type: 'Task', input: { a: 1 } } },
  {
    type: 'StateExited',
    timestamp: 40,
    state: { name: 'Acquire Lock', type: 'Task', input: { a: 1 }, output: { lock: 'HELD' } },
  },
  { type: 'StateEntered', timestamp: 41, state: { name: 'Deployed', type: 'Succeed', input: {} } },
  { type: 'StateExited', timestamp: 42, state: { name: 'Deployed', type: 'Succeed', input: {}, output: {} } },
  { type: 'ExecutionSucceeded', timestamp: 43, output: { status: 'SUCCEEDED' } },
] as unknown as EventLog[];

describe('schedules from template.yaml', () => {
  it('finds every schedule: the two sweeps (EventBridge rules) and the registry promotion (Scheduler)', () => {
    const schedules = settingsOf(template()).schedules;
    expect(schedules.map((s) => [s.name, s.kind, s.target])).toEqual(
      expect.arrayContaining([
        ['ReconcileFunction/LostEventSweep', 'rule', 'ReconcileFunction'],
        ['SlackFunction/ReplySweep', 'rule', 'SlackFunction'],
        ['ScheduleHelloWorldPromoteStagingToProd', 'scheduler', 'DeployStateMachine'],
      ]),
    );
  });

  it('counts runs a month from the expression: rates exactly, weekday crons in their time zone', () => {
    expect(runsPerMonth('rate(5 minutes)', 'UTC')).toBe(8760);
    expect(runsPerMonth('rate(1 hour)', 'UTC')).toBe(730);
    expect(runsPerMonth('cron(0 10 ? * MON-FRI *)', 'Europe/Berlin')).toBe(21.75); // 261 weekdays in the year counted;
  });

  it('a faster sweep in template.yaml makes the month dearer', () => {
    const base = settingsOf(template());
    const faster = template();
    const reconcile = faster.Resources.ReconcileFunction?.Properties?.Events as Record<
      string,
      { Properties: { Schedule: string } }
    >;
    reconcile.LostEventSweep!.Properties.Schedule = 'rate(1 minute)';
    const init = initOf(undefined, base);
    const before = monthlyFixed(base, init, {}, 0.0005);
    const after = monthlyFixed(settingsOf(faster), init, {}, 0.0005);
    const row = (m: typeof before) => m.rows.find((r) => r.schedule === 'ReconcileFunction/LostEventSweep')!;
    expect(row(after).runsPerMonth).toBe(5 * row(before).runsPerMonth);
    expect(row(after).usd).toBeCloseTo(5 * row(before).usd, 6);
    expect(after.total).toBeGreaterThan(before.total);
  });

  it('adds what template.yaml keeps priced per month whatever runs: its secrets, $0.40 each', () => {
    const s = settingsOf(template());
    const secrets = Object.entries(template().Resources)
      .filter(([, r]) => r.Type === 'AWS::SecretsManager::Secret')
      .map(([id]) => id);
    expect(secrets.length).toBeGreaterThan(0);
    expect(s.standing).toEqual(
      secrets.map((resource) => ({ resource, type: 'AWS::SecretsManager::Secret', usdPerMonth: 0.4 })),
    );
    const month = monthlyFixed(s, initOf(undefined, s), {}, 0.0005);
    const schedules = month.rows.reduce((sum, r) => sum + r.usd, 0);
    expect(month.total).toBeCloseTo(schedules + 0.4 * secrets.length, 8);
    // One more secret is $0.40 more a month.
    const more = template();
    more.Resources.AnotherSecret = { Type: 'AWS::SecretsManager::Secret', Properties: {} };
    expect(monthlyFixed(settingsOf(more), initOf(undefined, s), {}, 0.0005).total).toBeCloseTo(
      month.total + 0.4,
      8,
    );
  });

  it('knows every resource type in template.yaml as priced per month or priced per use, so a new one gets a decision', () => {
    const unknown = [...new Set(Object.values(template().Resources).map((r) => r.Type))].filter(
      (type) => STANDING_PRICES[type] === undefined && !USAGE_PRICED_TYPES.has(type),
    );
    expect(unknown).toEqual([]);
    const t = template();
    t.Resources.Dashboard = { Type: 'AWS::CloudWatch::Dashboard', Properties: {} };
    expect(
      [...new Set(Object.values(t.Resources).map((r) => r.Type))].filter(
        (type) => STANDING_PRICES[type] === undefined && !USAGE_PRICED_TYPES.has(type),
      ),
    ).toEqual(['AWS::CloudWatch::Dashboard']);
  });

  it('counts DynamoDB as priced per use only while every table is on demand', () => {
    const tables = Object.values(template().Resources).filter((r) => r.Type === 'AWS::DynamoDB::Table');
    expect(tables.length).toBeGreaterThan(0);
    for (const table of tables) expect(table.Properties?.BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('prices a schedule that starts the workflow as a deployment per run plus the Scheduler invocation', () => {
    const s = settingsOf(template());
    const row = monthlyFixed(s, initOf(undefined, s), {}, 0.001).rows.find((r) => r.workflow)!;
    expect(row.usd).toBeCloseTo(row.runsPerMonth * (0.001 + PRICES.schedulerPerInvocation), 8);
  });

  it('leaves out a disabled schedule', () => {
    const t = template();
    const promotion = t.Resources.ScheduleHelloWorldPromoteStagingToProd!;
    promotion.Properties = { ...promotion.Properties, State: 'DISABLED' };
    expect(settingsOf(t).schedules.some((s) => s.name === 'ScheduleHelloWorldPromoteStagingToProd')).toBe(
      false,
    );
  });

  it('uses the measured reads of a sweep and marks the others as assumed', () => {
    const s = settingsOf(template());
    const rows = monthlyFixed(s, initOf(undefined, s), { ReconcileFunction: 1.5 }, 0).rows;
    expect(rows.find((r) => r.target === 'ReconcileFunction')).toMatchObject({
      readUnitsPerRun: 1.5,
      readsAssumed: false,
    });
    expect(rows.find((r) => r.target === 'SlackFunction')).toMatchObject({
      readUnitsPerRun: 1,
      readsAssumed: true,
    });
  });
});

describe('Step Functions logging at the configured level', () => {
  const tokens = new Set<string>();
  it('reads Level and IncludeExecutionData from template.yaml', () => {
    const machine = settingsOf(template()).stateMachine;
    expect(machine).toMatchObject({
      name: 'DeployStateMachine',
      logLevel: 'ALL',
      includeExecutionData: false,
      tracing: true,
    });
  });

  it('logs every event at ALL, more with execution data, nothing on a happy path at ERROR, FATAL or OFF', () => {
    const all = stateMachineLogBytes(events, 'ALL', false, tokens);
    expect(all).toBeGreaterThan(0);
    expect(stateMachineLogBytes(events, 'ALL', true, tokens)).toBeGreaterThan(all);
    expect(stateMachineLogBytes(events, 'ERROR', false, tokens)).toBe(0);
    expect(stateMachineLogBytes(events, 'FATAL', false, tokens)).toBe(0);
    expect(stateMachineLogBytes(events, 'OFF', true, tokens)).toBe(0);
  });

  it('logs a retried Task at ERROR', () => {
    const retried = [
      ...events,
      {
        type: 'StateRetried',
        timestamp: 44,
        state: { name: 'Acquire Lock', type: 'Task', input: {} },
        Error: 'Lambda.ServiceException',
      },
    ] as unknown as EventLog[];
    expect(stateMachineLogBytes(retried, 'ERROR', false, tokens)).toBeGreaterThan(0);
  });

  it('changing the template to Level ERROR changes the setting the model prices', () => {
    const t = template();
    const machine = t.Resources.DeployStateMachine!.Properties as { Logging: { Level: string } };
    machine.Logging.Level = 'ERROR';
    expect(settingsOf(t).stateMachine.logLevel).toBe('ERROR');
  });
});

describe('Lambda billed duration with init, X-Ray', () => {
  it('takes init from the cold-start rows, source maps on when template.yaml sets --enable-source-maps', () => {
    const s = settingsOf(template());
    const init = initOf([{ function: 'ApiFunction', bundleMs: 60, bundleSourceMapsMs: 80 }], s);
    expect(init.initMs.ApiFunction).toBe(80);
    expect(init.initMs.SlackFunction).toBe(ASSUMPTIONS.initMsFallback);
    expect(init.assumed).toContain('SlackFunction');
    expect(init.assumed).not.toContain('ApiFunction');
  });

  it('bills handler ms rounded up, plus init for the cold share, at the function memory', () => {
    const s = settingsOf(template());
    const init = initOf([{ function: 'ApiFunction', bundleMs: 60, bundleSourceMapsMs: 80 }], s);
    const inv = [{ function: 'ApiFunction', count: 10, handlerMs: 12.2, measured: true }];
    const memoryGb = s.functions.ApiFunction!.memoryGb;
    const warm = lambdaBill(inv, s, init, 0);
    const cold = lambdaBill(inv, s, init, 1);
    expect(warm.gbSeconds).toBeCloseTo(10 * memoryGb * 0.013, 10);
    expect(cold.initGbSeconds).toBeCloseTo(10 * memoryGb * 0.08, 10);
    expect(cold.usd - warm.usd).toBeCloseTo(cold.initGbSeconds * PRICES.lambdaPerGbSecondArm, 12);
    expect(lambdaBill(inv, s, init, 0.5).initGbSeconds).toBeCloseTo(cold.initGbSeconds / 2, 10);
  });

  it('counts one trace per execution when the state machine traces, one per traced Task when it does not', () => {
    const s = settingsOf(template());
    const tasks = [{ function: 'AcquireLockFunction', count: 3, handlerMs: 1, measured: true }];
    const started = [{ function: 'ApiFunction', count: 1, handlerMs: 1, measured: false }];
    expect(tracesOf(s, tasks, started)).toBe(2);
    const untraced = { ...s, stateMachine: { ...s.stateMachine, tracing: false } };
    expect(tracesOf(untraced, tasks, started)).toBe(4);
    const noLambdaTracing = {
      ...untraced,
      functions: Object.fromEntries(
        Object.entries(s.functions).map(([k, v]) => [k, { ...v, tracing: false }]),
      ),
    };
    expect(tracesOf(noLambdaTracing, tasks, started)).toBe(0);
  });
});

describe('a watched deployment', () => {
  it("prices each request's X-Ray trace only while the API function is traced", async () => {
    const { measureWatch } = await import('../../bench/watch.ts');
    const s = settingsOf(template());
    const context = {
      settings: s,
      init: initOf(undefined, s),
      stateFunctions: {},
      tokenTasks: new Set<string>(),
    };
    const plan = { deploymentSeconds: 420, buildSeconds: 180 };
    const traced = measureWatch(plan, 0, context);
    const untracedSettings = {
      ...s,
      functions: { ...s.functions, ApiFunction: { ...s.functions.ApiFunction!, tracing: false } },
    };
    const untraced = measureWatch(plan, 0, { ...context, settings: untracedSettings });
    expect(untraced.requests).toBe(traced.requests);
    // The POST is not part of the watch's price: the polls are.
    expect(traced.usd - untraced.usd).toBeCloseTo((traced.requests - 1) * PRICES.xrayPerTraceRecorded, 8);
  });
});

describe('SAM ScheduleV2 events', () => {
  it('counts a ScheduleV2 event on a function as an EventBridge Scheduler schedule in its time zone', () => {
    const t = template();
    const events = t.Resources.DoctorFunction!.Properties as { Events?: Record<string, unknown> };
    events.Events = {
      ...(events.Events ?? {}),
      Nightly: {
        Type: 'ScheduleV2',
        Properties: { ScheduleExpression: 'cron(0 3 * * ? *)', ScheduleExpressionTimezone: 'Europe/Berlin' },
      },
    };
    expect(settingsOf(t).schedules.find((x) => x.name === 'DoctorFunction/Nightly')).toMatchObject({
      kind: 'scheduler',
      target: 'DoctorFunction',
      timezone: 'Europe/Berlin',
      runsPerMonth: 30.42,
    });
  });
});
