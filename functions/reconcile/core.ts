import { finish, recordEvent } from '#shared/deployments/record.ts';
import { type SettleDeps, settle } from '#shared/deployments/settle.ts';
import { type ErrorCode, NotSettledError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import type { Clock, DeploymentStore, ExecutionStatuses, TaskTokens } from '#shared/ports.ts';
import { type HandOffDeps, handOffAfterEnd, handOffLock, wakeParked } from '#shared/queue/handoff.ts';
import { releaseHeldLock } from '#shared/queue/lock.ts';
import { findTarget } from '#shared/registry/registry.ts';
import { isTerminal, type JobKind } from '#shared/types.ts';
import { deliverJobResult } from '../job-events/core.ts';

export interface ReconcileDeps extends SettleDeps, HandOffDeps {
  store: DeploymentStore;
  clock: Clock;
  tokens: TaskTokens;
  sleep: (ms: number) => Promise<void>;
}

export type Ending = { status: 'FAILED' | 'CANCELLED'; code: ErrorCode; message: string };

/** How an execution that ended without passing through its own Catch path is recorded. */
export function endingForExecution(executionStatus: string): Ending {
  switch (executionStatus) {
    case 'ABORTED':
      return {
        status: 'CANCELLED',
        code: 'EXECUTION_ABORTED',
        message: 'the workflow execution was aborted',
      };
    case 'TIMED_OUT':
      return { status: 'FAILED', code: 'EXECUTION_TIMED_OUT', message: 'the workflow execution timed out' };
    default:
      return {
        status: 'FAILED',
        code: 'EXECUTION_FAILED',
        message: `the workflow execution ended ${executionStatus}`,
      };
  }
}

/**
 * Ends a deployment whose workflow can no longer do it (aborted, timed out, States.Runtime, a local
 * restart): settle, release the lock only if it still owns it, then mark it terminal if it is not.
 * Throws NotSettledError when settling takes longer than the budget, so the caller retries later.
 */
export async function reconcileDeployment(
  deploymentId: string,
  ending: Ending,
  deps: ReconcileDeps,
  options: { budgetMs: number; pollMs: number },
): Promise<{ ended: boolean; released: boolean }> {
  const { store, clock } = deps;
  const deployment = await store.getDeployment(deploymentId);
  if (!deployment) return { ended: false, released: false };
  const deadline = Date.now() + options.budgetMs;
  if (!deployment.settledAt) {
    for (;;) {
      const result = await settle(deployment, deps);
      if (result.settled) break;
      if (Date.now() + options.pollMs > deadline) {
        throw new NotSettledError(
          `deployment ${deploymentId} is not settled yet: waiting for ${result.waitingFor}`,
        );
      }
      await deps.sleep(options.pollMs);
    }
    await store.markSettled(deploymentId, clock.now().toISOString());
    await recordEvent(store, clock, deploymentId, 'SETTLED', { by: 'reconciler' });
  }
  // Free before terminal, as Record Result does: whoever reads the final status finds the environment free.
  const released = await releaseHeldLock(deployment, deps, { by: 'reconciler' });
  const ended = isTerminal(deployment.status)
    ? false
    : await finish(store, clock, deploymentId, ending.status, {
        errorCode: ending.code,
        errorMessage: ending.message,
      });
  // A takeover of the queue: the next waiter gets the lock (also when the dead one only held a ticket). A
  // dead waiter may have been handed the lock after the release above (it was still the live head then).
  await handOffAfterEnd(deployment, deps);
  return { ended, released };
}

/**
 * The safety net under the hand-over, run by the scheduled sweep at no state-transition cost: for each
 * environment with a deployment parked for its lock, hand a free lock to the head of the queue (a
 * hand-over lost between the lock write and the token, or a queue moved by a path that does not hand
 * over), and wake each waiter whose lock-wait deadline has passed, so Acquire Lock ends it LOCK_WAIT_TIMEOUT.
 */
export async function sweepParkedWaiters(
  deps: ReconcileDeps,
): Promise<{ handedOver: string[]; woken: string[] }> {
  const handedOver: string[] = [];
  const woken: string[] = [];
  const waiting = (await deps.store.listActive()).filter((d) => d.phase === 'WAITING_FOR_LOCK');
  const environments = new Map(waiting.map((d) => [`${d.application}#${d.environment}`, d]));
  for (const d of environments.values()) {
    const result = await handOffLock(d, deps);
    if (result.outcome === 'HANDED_OVER') handedOver.push(result.to);
    if (result.outcome === 'WOKEN') woken.push(result.to);
  }
  const now = deps.clock.now().getTime();
  for (const d of waiting) {
    const timeout = findTarget(deps.registry, d.application, d.environment)?.env.lockWaitTimeoutSeconds;
    if (timeout === undefined || !d.waitStartedAt || now - Date.parse(d.waitStartedAt) <= timeout * 1000)
      continue;
    const tickets = await deps.store.listTickets(d.application, d.environment, { limit: 100 });
    const ticket = tickets.find((t) => t.deploymentId === d.deploymentId);
    if (ticket && !woken.includes(d.deploymentId) && (await wakeParked(ticket, deps.tokens))) {
      woken.push(d.deploymentId);
    }
  }
  return { handedOver, woken };
}

/**
 * Covers a lost CodeBuild event: for each in-flight deployment whose current job has finished but whose
 * workflow still waits, deliver the result exactly as the event handler would.
 */
export async function sweepLostJobEvents(deps: ReconcileDeps): Promise<number> {
  let delivered = 0;
  for (const deployment of await deps.store.listActive()) {
    const job: JobKind | undefined =
      deployment.phase === 'BUILDING' ? 'build' : deployment.phase === 'DEPLOYING' ? 'deploy' : undefined;
    const record = job ? deployment.jobs?.[job] : undefined;
    if (!job || !record || record.status) continue;
    const [info] = await deps.runner.describe([record.buildId]);
    if (!info?.complete) continue;
    logger.info('delivering a job result whose event was lost', {
      deploymentId: deployment.deploymentId,
      job,
    });
    if (
      (await deliverJobResult({ ...info, deploymentId: deployment.deploymentId, job }, deps)) === 'delivered'
    ) {
      delivered++;
    }
  }
  return delivered;
}

/** Execution statuses whose deployment the workflow will never end itself. */
const DEAD = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);
/** A record whose execution does not exist this long after the request was never started (the start failed). */
const NEVER_STARTED_AFTER_MS = 15 * 60_000;

/**
 * Covers a lost or failed reconciliation (the status-change event undelivered, or the reconciler out of
 * time): each deployment that is not terminal but whose execution has ended is reconciled here, as the
 * event would have done. Without this, its lock would stay held forever: a takeover needs a settled owner.
 * Settling that needs longer than the budget is left for the next sweep.
 */
export async function sweepDeadExecutions(
  deps: ReconcileDeps & { executions: ExecutionStatuses },
  options: { budgetMs: number; pollMs: number },
): Promise<{ reconciled: string[]; pending: string[] }> {
  const deadline = Date.now() + options.budgetMs;
  const reconciled: string[] = [];
  const pending: string[] = [];
  for (const deployment of await deps.store.listActive()) {
    const { deploymentId } = deployment;
    const status = await deps.executions.status(deploymentId);
    let ending: Ending | undefined;
    if (status && DEAD.has(status)) ending = endingForExecution(status);
    else if (
      !status &&
      deps.clock.now().getTime() - Date.parse(deployment.requestedAt) > NEVER_STARTED_AFTER_MS
    ) {
      ending = {
        status: 'FAILED',
        code: 'EXECUTION_NOT_FOUND',
        message: 'its workflow execution never started',
      };
    }
    if (!ending) continue;
    const budgetMs = deadline - Date.now();
    if (budgetMs <= 0) {
      pending.push(deploymentId);
      continue;
    }
    try {
      logger.info('reconciling a deployment whose execution ended without it', { deploymentId, status });
      await reconcileDeployment(deploymentId, ending, deps, { budgetMs, pollMs: options.pollMs });
      reconciled.push(deploymentId);
    } catch (error) {
      if (!(error instanceof NotSettledError)) throw error;
      logger.info('not settled yet; the next sweep tries again', { deploymentId, reason: error.message });
      pending.push(deploymentId);
    }
  }
  return { reconciled, pending };
}
