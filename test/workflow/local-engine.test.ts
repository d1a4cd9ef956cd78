import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RequestRejectedError } from '#shared/errors.ts';
import { LocalTaskTokens, substitute, WorkflowEngine } from '../../local/workflow-engine.ts';

const definitionPath = fileURLToPath(new URL('../fixtures/asl/envelopes.asl.json', import.meta.url));

describe('local ASL engine integrations', () => {
  it('returns the envelopes the AWS integrations return, with one fresh token per waiting Task', async () => {
    const tokens = new LocalTaskTokens();
    const seen: string[] = [];
    const engine = new WorkflowEngine({
      definitionPath,
      tokens,
      substitutions: { BuildWaitSeconds: '60' },
      functions: {
        EchoFunctionArn: async (payload) => ({ echoed: payload }),
        TokenFunctionArn: async (payload) => {
          const { taskToken } = payload as { taskToken: string };
          seen.push(taskToken);
          setTimeout(() => void tokens.succeed(taskToken, { done: true }), 5);
          return 'ignored: a waitForTaskToken Task outputs what SendTaskSuccess sends';
        },
        FailFunctionArn: async () => {
          throw new RequestRejectedError('INVALID_REF', 400, 'bad ref');
        },
      },
    });
    const output = (await engine.start('exec-1', { timeout: 60 }).result) as Record<string, unknown>;
    expect(output.invoke).toEqual({
      ExecutedVersion: '$LATEST',
      Payload: { echoed: { name: 'exec-1' } },
      SdkHttpMetadata: { HttpStatusCode: 200 },
      StatusCode: 200,
    });
    expect(output.token).toEqual({ done: true });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^local-token-/);
    const error = output.error as { Error: string; Cause: string };
    expect(error.Error).toBe('RequestRejectedError');
    expect(JSON.parse(error.Cause)).toEqual({
      errorType: 'RequestRejectedError',
      errorMessage: 'bad ref',
      trace: [],
    });
  });

  it('reports a completed token as gone the second time', async () => {
    const tokens = new LocalTaskTokens();
    const { token } = tokens.issue();
    expect(await tokens.succeed(token, {})).toBe('delivered');
    expect(await tokens.fail(token, 'E', 'c')).toBe('gone');
  });

  it('reports the token of a Task that timed out as gone, as SendTaskSuccess would (TaskTimedOut)', async () => {
    const tokens = new LocalTaskTokens();
    let issued = '';
    const engine = new WorkflowEngine({
      definitionPath: fileURLToPath(new URL('../fixtures/asl/token-timeout.asl.json', import.meta.url)),
      tokens,
      functions: {
        TokenFunctionArn: async (payload) => {
          issued = (payload as { taskToken: string }).taskToken;
        },
      },
    });
    const output = (await engine.start('exec-timeout', {}).result) as { timedOut?: { Error: string } };
    expect(output.timedOut?.Error).toBe('States.Timeout');
    expect(await tokens.succeed(issued, { handedOver: true })).toBe('gone');
  });

  it('refuses a definition placeholder without a value', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an ASL placeholder, not JavaScript
    expect(() => substitute('{"a":"${Missing}"}', {})).toThrow('${Missing}');
  });
});
