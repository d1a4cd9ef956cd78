import type { EventBridgeEvent, ScheduledEvent } from 'aws-lambda';
import * as aws from '#shared/aws/runtime.ts';
import { logger } from '#shared/logger.ts';
import { endingForExecution, type ReconcileDeps, reconcileDeployment, sweepLostJobEvents } from './core.ts';

/** "Step Functions Execution Status Change" for FAILED, TIMED_OUT and ABORTED executions. */
export type ExecutionStatusChange = EventBridgeEvent<
  'Step Functions Execution Status Change',
  { executionArn: string; stateMachineArn: string; name: string; status: string }
>;

export const createHandler =
  (deps: () => ReconcileDeps) => async (event: ExecutionStatusChange | ScheduledEvent) => {
    if (event['detail-type'] === 'Step Functions Execution Status Change') {
      const { name, status } = (event as ExecutionStatusChange).detail;
      // The execution name is the deployment id.
      logger.appendKeys({ deploymentId: name, executionStatus: status });
      const result = await reconcileDeployment(name, endingForExecution(status), deps(), {
        budgetMs: 10 * 60_000,
        pollMs: 15_000,
      });
      logger.info('execution reconciled', { ...result });
      return result;
    }
    const delivered = await sweepLostJobEvents(deps());
    logger.info('lost-event sweep done', { delivered });
    return { delivered };
  };

export const handler = createHandler(() => ({
  store: aws.store(),
  clock: aws.clock,
  tokens: aws.tokens(),
  runner: aws.runner(),
  stacks: aws.targetAccess(),
  registry: aws.registry(),
  sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
}));
