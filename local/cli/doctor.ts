import { userInfo } from 'node:os';
import type { DoctorTarget } from '../../functions/doctor/checks.ts';
import type { CheckResult, DoctorProbe, DoctorReport } from '../../functions/doctor/ports.ts';
import type { RunCommand } from './args.ts';
import type { Context } from './context.ts';
import { ConnectionError, EXIT, type ExitCode, UsageError } from './errors.ts';
import { colorEnabled, type Format, type Paint, painter } from './format.ts';
import { clean } from './progress.ts';

/**
 * `crossdeploy doctor <app> <env>`: by default the API runs the checks (as the orchestrator's deployer role,
 * the principal the targets trust) and this polls the run; `--local` runs the same core here with the
 * caller's own credentials. Either way the report is rendered the same.
 */

type DoctorCommand = Extract<RunCommand, { name: 'doctor' }>;

const POLL_MS = 2000;
/** Drift detection of a large stack takes minutes; past this the run is left to `GET /doctor/runs/{id}`. */
const MAX_WAIT_MS = 15 * 60_000;

export async function doctor(ctx: Context, command: DoctorCommand): Promise<ExitCode> {
  const report = command.local ? await runLocalDoctor(ctx, command) : await runThroughApi(ctx, command);
  if (ctx.globals.json) ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const paint = painter(colorEnabled(ctx.stdout, ctx.env));
    ctx.stdout.write(`${renderDoctorReport(report, paint).join('\n')}\n`);
  }
  return report.status === 'failed' ? EXIT.failed : EXIT.ok;
}

async function runThroughApi(ctx: Context, command: DoctorCommand): Promise<DoctorReport> {
  const started = await ctx.client.post('/doctor/runs', {
    application: command.application,
    environment: command.environment,
    ...(command.drift ? { drift: true } : {}),
  });
  let report = asReport(started.body, 'POST /doctor/runs');
  const deadline = ctx.now() + MAX_WAIT_MS;
  while (report.status === 'running' && ctx.now() < deadline) {
    if (!ctx.globals.json) ctx.stderr.write('waiting for drift detection…\n');
    await ctx.sleep(POLL_MS);
    const path = `/doctor/runs/${encodeURIComponent(report.runId)}`;
    report = asReport((await ctx.client.get(path)).body, `GET ${path}`);
  }
  return report;
}

function asReport(body: unknown, what: string): DoctorReport {
  const report = body as Partial<DoctorReport> | undefined;
  if (
    !report ||
    typeof report.runId !== 'string' ||
    !Array.isArray(report.checks) ||
    typeof report.status !== 'string'
  ) {
    throw new ConnectionError(`unexpected answer to ${what} — is --url pointing at a crossdeploy API?`);
  }
  return report as DoctorReport;
}

/**
 * The checks with the caller's own credentials. The SDK and the registry are loaded only here, so the other
 * commands never pay for them. `makeProbe` is for tests.
 */
export async function runLocalDoctor(
  ctx: Pick<Context, 'env' | 'now'>,
  command: DoctorCommand,
  makeProbe?: (target: DoctorTarget) => DoctorProbe,
): Promise<DoctorReport> {
  const [{ loadRegistryFile }, { RegistryError }, { findTarget }, { runDoctor }, { CHECK_TITLES }, { ulid }] =
    await Promise.all([
      import('#shared/registry/file.ts'),
      import('#shared/errors.ts'),
      import('#shared/registry/registry.ts'),
      import('../../functions/doctor/core.ts'),
      import('../../functions/doctor/checks.ts'),
      import('ulid'),
    ]);
  const path = command.registry ?? ctx.env.CROSSDEPLOY_REGISTRY ?? 'registry/targets.yaml';
  const runId = ulid();
  const at = new Date(ctx.now()).toISOString();
  let registry: ReturnType<typeof loadRegistryFile>;
  try {
    registry = loadRegistryFile(path);
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    // A registry that does not load is the first check failing, before any AWS call (the seed's role_arn).
    return {
      runId,
      application: command.application,
      environment: command.environment,
      mode: 'local',
      status: 'failed',
      startedAt: at,
      updatedAt: at,
      finishedAt: at,
      checks: [
        {
          id: 'registry',
          title: CHECK_TITLES.registry,
          status: 'failed',
          detail: `${error.message}\nNothing was sent to AWS.`,
          fix: `Fix ${path}; role ARNs come from the target account stack's outputs.`,
          account: { kind: 'registry' },
        },
      ],
    };
  }
  const found = findTarget(registry, command.application, command.environment);
  if (!found) {
    throw new ConnectionError(`${path} has no ${command.application}/${command.environment}`);
  }
  const target: DoctorTarget = {
    application: command.application,
    environment: command.environment,
    env: found.env,
  };
  const templatePolicy = command.template === undefined ? undefined : await templateCheck(command.template);
  const probe = makeProbe ? makeProbe(target) : await awsProbe(ctx.env, target);
  return runDoctor(target, probe, {
    runId,
    requester: { type: 'local', user: userInfo().username },
    mode: 'local',
    clock: { now: () => new Date(ctx.now()) },
    drift: command.drift,
    ...(found.env.runner === 'simulate' ? { simulated: true } : {}),
    ...(templatePolicy ? { templatePolicy } : {}),
  });
}

/** `--template FILE`: a built template (.aws-sam/build/template.yaml), held to the template policy last. */
async function templateCheck(path: string): Promise<(target: DoctorTarget) => CheckResult> {
  const [{ readFileSync }, { nestedTemplatesBeside }, { checkTemplatePolicy }] = await Promise.all([
    import('node:fs'),
    import('#shared/template-policy/files.ts'),
    import('../../functions/doctor/template-check.ts'),
  ]);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read --template ${path}: ${(error as Error).message}`);
  }
  const template = { path, text, loadNested: nestedTemplatesBeside(path) };
  return (target) => checkTemplatePolicy(target, template);
}

async function awsProbe(env: NodeJS.ProcessEnv, target: DoctorTarget): Promise<DoctorProbe> {
  const [{ STSClient }, { AwsDoctorProbe }] = await Promise.all([
    import('@aws-sdk/client-sts'),
    import('../../functions/doctor/aws-probe.ts'),
  ]);
  // STS in the caller's configured region, as the local deploy job's helper; else the target's.
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || target.env.region;
  return new AwsDoctorProbe({ sts: new STSClient({ region }) });
}

// Rendering ---------------------------------------------------------------------------------------------

const MARK: Record<CheckResult['status'], [string, Format]> = {
  passed: ['✓', 'green'],
  failed: ['✗', 'red'],
  warning: ['!', 'yellow'],
  skipped: ['-', 'dim'],
  running: ['…', 'cyan'],
};

function where(account: CheckResult['account']): string {
  if (!account) return '';
  switch (account.kind) {
    case 'registry':
      return 'in the registry';
    case 'caller':
      return 'on the caller';
    default:
      return `in the ${account.kind} account${account.accountId ? ` ${account.accountId}` : ''}`;
  }
}

const json = (value: unknown, pad: string) =>
  JSON.stringify(value, null, 2)
    .split('\n')
    .map((line) => `${pad}${clean(line)}`);

/** The report as lines: each check with its mark, and under a failure the fix, the statements, the other candidates. */
export function renderDoctorReport(report: DoctorReport, paint: Paint): string[] {
  const who =
    report.mode === 'api'
      ? "through the API, as the orchestrator's deployer role"
      : 'with your own AWS credentials (--local, or a local server)';
  const lines = [paint('bold', `doctor ${clean(report.application)}/${clean(report.environment)} — ${who}`)];
  for (const check of report.checks) {
    const [mark, format] = MARK[check.status] ?? ['?', 'reset'];
    lines.push(`${paint(format, mark)} ${clean(check.title)}: ${clean(check.detail)}`);
    if (check.status === 'passed' || check.status === 'skipped') continue;
    if (check.fix)
      lines.push(`    fix${check.account ? ` (${where(check.account)})` : ''}: ${clean(check.fix)}`);
    for (const fix of check.statements ?? []) {
      const policy = fix.policy === 'trust' ? 'the trust policy' : 'a permissions policy';
      lines.push(`    add to ${policy} of ${clean(fix.role)}:`, ...json(fix.statement, '      '));
    }
    const others = (check.candidates ?? []).slice(1);
    const open = others.filter((c) => c.likelihood !== 'ruled-out');
    if (open.length > 0) {
      lines.push('    other candidates, in order:');
      open.forEach((c, i) => {
        lines.push(`      ${i + 2}. [${c.likelihood}, ${where(c.account)}] ${clean(c.summary)}`);
      });
    }
    const ruledOut = others.filter((c) => c.likelihood === 'ruled-out');
    if (ruledOut.length > 0) {
      lines.push(
        `    ruled out: ${ruledOut.map((c) => `${clean(c.cause)}${c.because ? ` (${clean(c.because)})` : ''}`).join('; ')}`,
      );
    }
    if (check.unchecked?.length) lines.push(`    not checked: ${check.unchecked.map(clean).join('; ')}`);
    if (check.awsError)
      lines.push(`    AWS said (${clean(check.awsError.code)}): ${clean(check.awsError.message)}`);
  }
  const count = (status: CheckResult['status']) => report.checks.filter((c) => c.status === status).length;
  const summary = [
    `${count('passed')} passed`,
    `${count('failed')} failed`,
    `${count('warning')} warnings`,
    `${count('skipped')} skipped`,
  ].join(', ');
  const format: Format = report.status === 'failed' ? 'red' : report.status === 'passed' ? 'green' : 'yellow';
  lines.push(
    `${paint(format, report.status)} (${summary})${report.status === 'running' ? ` — poll /doctor/runs/${clean(report.runId)}` : ''}`,
  );
  return lines;
}
