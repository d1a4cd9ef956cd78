import { NotSettledError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import type { DeploymentStore, WorkflowStarter } from '#shared/ports.ts';
import { isTerminal } from '#shared/types.ts';
import { endingForExecution, type ReconcileDeps, reconcileDeployment } from '../functions/reconcile/core.ts';
import type { RunningExecution, WorkflowEngine } from './workflow-engine.ts';

/** How long one reconcile attempt may wait for a job to stop or a stack to leave *_IN_PROGRESS. */
export const RECONCILE_BUDGET = { budgetMs: 10 * 60_000, pollMs: 2_000 } as const;

/** The execution status Step Functions would report for how the local engine's run ended. */
export function executionStatusOf(error: unknown): 'FAILED' | 'ABORTED' | 'TIMED_OUT' {
  const name = (error as { name?: string } | undefined)?.name;
  if (name === 'ExecutionAbortedError') return 'ABORTED';
  if (name === 'ExecutionTimeoutError') return 'TIMED_OUT';
  return 'FAILED';
}

/**
 * Local stand-in for StartExecution: runs statemachine/deploy.asl.json on the local engine with name =
 * deploymentId. When an execution ends in a way its own Catch path did not record (the deployment is still
 * not terminal, or its lock is still held by it), the same reconcile core runs that the EventBridge rule on
 * "Execution Status Change" triggers in AWS.
 */
export class LocalWorkflowStarter implements WorkflowStarter {
  private readonly engine: WorkflowEngine;
  private readonly store: DeploymentStore;
  private readonly reconcileDeps: ReconcileDeps;
  private readonly executions = new Map<string, RunningExecution>();
  private readonly reconciling = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(options: { engine: WorkflowEngine; store: DeploymentStore; reconcileDeps: ReconcileDeps }) {
    this.engine = options.engine;
    this.store = options.store;
    this.reconcileDeps = options.reconcileDeps;
  }

  async start(deploymentId: string, input: unknown): Promise<void> {
    if (this.stopped) throw new Error('the local server is shutting down');
    // Step Functions answers a second start with the same name and input with the running execution.
    if (this.executions.has(deploymentId)) return;
    const execution = this.engine.start(deploymentId, input);
    this.executions.set(deploymentId, execution);
    void execution.result
      .then(
        () => this.ended(deploymentId, 'SUCCEEDED'),
        (error: unknown) => this.ended(deploymentId, executionStatusOf(error)),
      )
      .finally(() => this.executions.delete(deploymentId));
  }

  /** Executions still running in this process. */
  get running(): number {
    return this.executions.size;
  }

  /** Shutdown: no new executions, no reconciling against a store that is about to close. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when every reconcile started so far has finished (tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.reconciling]);
  }

  private async ended(deploymentId: string, status: 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT') {
    if (this.stopped) return;
    try {
      const deployment = await this.store.getDeployment(deploymentId);
      if (!deployment) return;
      const lock = await this.store.getLock(deployment.application, deployment.environment);
      if (isTerminal(deployment.status) && lock?.owner !== deploymentId) return;
      logger.warn('execution ended without recording its deployment: reconciling', { deploymentId, status });
      // A run that "succeeded" but left the record open cannot have passed Record Result: treat it as failed.
      const ending = endingForExecution(status === 'SUCCEEDED' ? 'FAILED' : status);
      await this.reconcile(deploymentId, ending);
    } catch (error) {
      logger.error('reconciling an ended execution failed', { deploymentId, error });
    }
  }

  private async reconcile(deploymentId: string, ending: ReturnType<typeof endingForExecution>) {
    // NotSettledError means "not yet" (a job still stopping, a stack still rolling back): try again later.
    for (let attempt = 0; !this.stopped; attempt++) {
      const run = reconcileDeployment(deploymentId, ending, this.reconcileDeps, RECONCILE_BUDGET);
      this.reconciling.add(run);
      try {
        await run;
        return;
      } catch (error) {
        if (!(error instanceof NotSettledError) || attempt >= 5) throw error;
      } finally {
        this.reconciling.delete(run);
      }
    }
  }
}
