import { assumeParams, PREFLIGHT_DURATION_SECONDS } from '../jobs/target-session.ts';
import type { JobRunner, StackInspector } from '../ports.ts';
import { findTarget, type Registry } from '../registry/registry.ts';
import type { Deployment, JobKind } from '../types.ts';

export interface SettleDeps {
  runner: JobRunner;
  stacks: StackInspector;
  registry: Registry;
}

export type SettleResult = { settled: true } | { settled: false; waitingFor: string };

/**
 * The one settle step. Every path that ends a deployment after a job may have started (the Catch path, the
 * reconciler, a lease takeover, a local restart) runs it until it reports settled: no job of the deployment
 * runs any more, and the target stack is not `*_IN_PROGRESS` (REVIEW_IN_PROGRESS, a dry run's change set
 * on a new stack, excepted). Only then is the result recorded and the lock released.
 */
export async function settle(deployment: Deployment, deps: SettleDeps): Promise<SettleResult> {
  const jobs = (['build', 'deploy'] as JobKind[])
    .map((job) => deployment.jobs?.[job]?.buildId)
    .filter((id): id is string => Boolean(id));
  if (jobs.length > 0) {
    const infos = await deps.runner.describe(jobs);
    const running = infos.filter((info) => !info.complete);
    for (const info of running) await deps.runner.stop(info.buildId);
    if (running.length > 0)
      return { settled: false, waitingFor: `job ${running.map((i) => i.buildId).join(', ')} to stop` };
  }
  if (!deployment.jobs?.deploy) return { settled: true };
  const target = findTarget(deps.registry, deployment.application, deployment.environment);
  if (!target) return { settled: true };
  const status = await deps.stacks.stackStatus({
    ...assumeParams(deployment, target, PREFLIGHT_DURATION_SECONDS),
    stackName: target.env.stackName,
  });
  if (status?.endsWith('_IN_PROGRESS') && status !== 'REVIEW_IN_PROGRESS') {
    return { settled: false, waitingFor: `stack ${target.env.stackName} to leave ${status}` };
  }
  return { settled: true };
}
