import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context, EventBridgeEvent, ScheduledEvent } from 'aws-lambda';
import * as aws from '#shared/aws/runtime.ts';
import { SfnExecutionStatuses } from '#shared/aws/workflow.ts';
import { envShapes, readEnv } from '#shared/config.ts';
import { logger, withLogKeys } from '#shared/logger.ts';
import type { ExecutionStatuses } from '#shared/ports.ts';
import {
  endingForExecution,
  type ReconcileDeps,
  reconcileDeployment,
  sweepDeadExecutions,
  sweepLostJobEvents,
  sweepParkedWaiters,
} from './core.ts';

/** "Step Functions Execution Status Change" for FAILED, TIMED_OUT and ABORTED executions. */
export type ExecutionStatusChange = EventBridgeEvent<
  'Step Functions Execution Status Change',
  { executionArn: string; stateMachineArn: string; name: string; status: string }
>;

/** Time kept back from the function's timeout for the writes after settling and the log line. */
const MARGIN_MS = 30_000;
/** Without a Lambda context (tests, local callers): the budget the function's timeout would give. */
const DEFAULT_BUDGET_MS = 10 * 60_000;
const POLL_MS = 15_000;

const budgetOf = (context?: Pick<Context, 'getRemainingTimeInMillis'>) =>
  Math.max(0, (context?.getRemainingTimeInMillis() ?? DEFAULT_BUDGET_MS + MARGIN_MS) - MARGIN_MS);

export const createHandler =
  (deps: () => ReconcileDeps & { executions: ExecutionStatuses }) =>
  async (
    event: ExecutionStatusChange | ScheduledEvent,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ) => {
    if (event['detail-type'] === 'Step Functions Execution Status Change') {
      const { name, status } = (event as ExecutionStatusChange).detail;
      // The execution name is the deployment id.
      return withLogKeys({ deploymentId: name, executionStatus: status }, async () => {
        // Settling inside the function's own time: one that needs longer throws NotSettledError, and the
        // sweep below finishes it (Lambda's retries of this event may be used up by then).
        const result = await reconcileDeployment(name, endingForExecution(status), deps(), {
          budgetMs: budgetOf(context),
          pollMs: POLL_MS,
        });
        logger.info('execution reconciled', { ...result });
        return result;
      });
    }
    const delivered = await sweepLostJobEvents(deps());
    const { reconciled, pending } = await sweepDeadExecutions(deps(), {
      budgetMs: budgetOf(context),
      pollMs: POLL_MS,
    });
    const waiters = await sweepParkedWaiters(deps());
    logger.info('sweep done', { delivered, reconciled, pending, ...waiters });
    return { delivered, reconciled, pending, ...waiters };
  };

const executions = (() => {
  let value: SfnExecutionStatuses | undefined;
  return () => {
    value ??= new SfnExecutionStatuses({
      client: new SFNClient({}),
      stateMachineArn: readEnv(envShapes.stateMachine).STATE_MACHINE_ARN,
    });
    return value;
  };
})();

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  tokens: aws.tokens(),
  runner: aws.runner(),
  stacks: aws.targetAccess(),
  registry: aws.registry(),
  leaseSeconds: aws.lockLeaseSeconds(),
  executions: executions(),
  sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
}));
