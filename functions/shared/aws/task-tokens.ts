import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { TaskTokens } from '../ports.ts';

const GONE = new Set(['TaskDoesNotExist', 'TaskTimedOut']);

/** Step Functions task tokens. A token whose task is gone means the workflow moved on: not an error. */
export class SfnTaskTokens implements TaskTokens {
  private readonly client: SFNClient;
  constructor(client: SFNClient) {
    this.client = client;
  }

  async succeed(taskToken: string, output: unknown) {
    return this.send(() =>
      this.client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) })),
    );
  }

  async fail(taskToken: string, error: string, cause: string) {
    return this.send(() =>
      this.client.send(new SendTaskFailureCommand({ taskToken, error, cause: cause.slice(0, 32_768) })),
    );
  }

  private async send(call: () => Promise<unknown>): Promise<'delivered' | 'gone'> {
    try {
      await call();
      return 'delivered';
    } catch (error) {
      if (GONE.has((error as { name?: string }).name ?? '')) return 'gone';
      throw error;
    }
  }
}
