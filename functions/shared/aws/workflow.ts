import { DescribeExecutionCommand, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { ExecutionStatuses, WorkflowStarter } from '../ports.ts';

/**
 * Starts the deploy state machine with the deployment id as the execution name, so a repeated start (an
 * Idempotency-Key replay, a retried request) can never run a deployment twice. Step Functions answers a
 * repeat with ExecutionAlreadyExists: the execution exists, which is what the caller wanted.
 */
export class SfnWorkflowStarter implements WorkflowStarter {
  private readonly client: SFNClient;
  private readonly stateMachineArn: string;

  constructor(options: { client: SFNClient; stateMachineArn: string }) {
    this.client = options.client;
    this.stateMachineArn = options.stateMachineArn;
  }

  async start(deploymentId: string, input: unknown): Promise<void> {
    try {
      await this.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          name: deploymentId,
          input: JSON.stringify(input),
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name === 'ExecutionAlreadyExists') return;
      throw error;
    }
  }
}

/** DescribeExecution of the execution named after a deployment, in the deploy state machine. */
export class SfnExecutionStatuses implements ExecutionStatuses {
  private readonly client: SFNClient;
  private readonly executionPrefix: string;

  constructor(options: { client: SFNClient; stateMachineArn: string }) {
    this.client = options.client;
    // arn:aws:states:<region>:<account>:stateMachine:<name> -> ...:execution:<name>:<execution name>
    this.executionPrefix = `${options.stateMachineArn.replace(':stateMachine:', ':execution:')}:`;
  }

  async status(deploymentId: string): Promise<string | undefined> {
    try {
      const { status } = await this.client.send(
        new DescribeExecutionCommand({ executionArn: `${this.executionPrefix}${deploymentId}` }),
      );
      return status;
    } catch (error) {
      if ((error as { name?: string }).name === 'ExecutionDoesNotExist') return undefined;
      throw error;
    }
  }
}
