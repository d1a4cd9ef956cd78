import { classifyAwsError } from '#shared/diagnosis/aws-fault.ts';
import { checkCallerAndAssume, checkExecutionRole, checkTargetIdentity } from './access-checks.ts';
import { type DoctorOptions, type DoctorTarget, doctorAssumeParams, skip } from './checks.ts';
import { checkRegistry } from './local-checks.ts';
import type { CheckResult, DoctorProbe, DoctorReport, RunStatus } from './ports.ts';
import { checkBucket, checkStackStatus, driftDenied, driftVerdict, startDrift } from './stack-checks.ts';

/**
 * `crossdeploy doctor`: the checks, in order, each passed, failed, warning or skipped, with the fix and the
 * account that holds it. The same core runs behind the API (the orchestrator's deployer role is the caller)
 * and in `crossdeploy doctor --local` (the caller's own credentials). No AWS SDK here: ./ports.ts.
 * The checks themselves: local-checks.ts (1), access-checks.ts (2-5), stack-checks.ts (6-8), and the template
 * policy (template-check.ts, passed in by the CLI).
 */

export function overallStatus(checks: readonly CheckResult[]): RunStatus {
  if (checks.some((c) => c.status === 'failed')) return 'failed';
  if (checks.some((c) => c.status === 'running')) return 'running';
  if (checks.some((c) => c.status === 'warning')) return 'warning';
  return 'passed';
}

/** Runs every check in order. `onCheck` sees each result as it is known (the CLI prints them as they come). */
export async function runDoctor(
  target: DoctorTarget,
  probe: DoctorProbe,
  options: DoctorOptions,
  onCheck: (check: CheckResult) => void = () => {},
): Promise<DoctorReport> {
  const startedAt = options.clock.now().toISOString();
  const checks: CheckResult[] = [];
  let pending: DoctorReport['pending'];
  const add = (check: CheckResult) => {
    checks.push(check);
    onCheck(check);
  };
  const skipRest = (why: string) => {
    for (const id of [
      'caller',
      'assume-role',
      'target-identity',
      'execution-role',
      'stack-status',
      'artifacts-bucket',
      'drift',
    ] as const) {
      if (!checks.some((c) => c.id === id)) add(skip(id, why));
    }
  };

  const registry = checkRegistry(target);
  add(registry);
  if (registry.status === 'failed') skipRest('skipped: fix the registry first');
  else if (options.simulated)
    skipRest('skipped: this environment has `runner: simulate`, so nothing is sent to AWS');
  else {
    const session = await checkCallerAndAssume(target, probe, options, add);
    if (!session) skipRest('skipped: needs the deploy role session');
    else {
      const inTarget = await checkTargetIdentity(target, session, add);
      if (!inTarget) skipRest("skipped: the session is not in the environment's account");
      else {
        add(await checkExecutionRole(target, session));
        const stack = await checkStackStatus(target, session);
        add(stack.check);
        add(await checkBucket(target, session));
        if (!options.drift) add(skip('drift', 'skipped: not asked for (--drift)'));
        else if (!stack.exists) add(skip('drift', 'skipped: the stack does not exist yet'));
        else {
          const drift = await startDrift(target, session);
          add(drift.check);
          if (drift.detectionId) pending = { driftDetectionId: drift.detectionId };
        }
      }
    }
  }
  if (options.templatePolicy) add(options.templatePolicy(target));
  const now = options.clock.now().toISOString();
  const status = overallStatus(checks);
  return {
    runId: options.runId,
    application: target.application,
    environment: target.environment,
    mode: options.mode,
    status,
    startedAt,
    updatedAt: now,
    ...(status !== 'running' ? { finishedAt: now } : {}),
    checks,
    ...(pending ? { pending } : {}),
  };
}

/** A poll of a running report: continues drift detection with a fresh session (credentials are never stored). */
export async function continueDoctor(
  report: DoctorReport,
  target: DoctorTarget,
  probe: DoctorProbe,
  options: DoctorOptions,
): Promise<DoctorReport> {
  if (report.status !== 'running' || !report.pending) return report;
  let drift: CheckResult;
  let pending: DoctorReport['pending'] = report.pending;
  try {
    const session = await probe.assume(doctorAssumeParams(target, options));
    drift = driftVerdict(await session.driftStatus(report.pending.driftDetectionId), target);
    if (drift.status !== 'running') pending = undefined;
  } catch (error) {
    drift = driftDenied(target, classifyAwsError(error));
    pending = undefined;
  }
  const checks = report.checks.map((check) => (check.id === 'drift' ? drift : check));
  const now = options.clock.now().toISOString();
  const status = overallStatus(checks);
  const { pending: _old, finishedAt: _f, ...rest } = report;
  return {
    ...rest,
    status,
    updatedAt: now,
    ...(status !== 'running' ? { finishedAt: now } : {}),
    checks,
    ...(pending ? { pending } : {}),
  };
}
