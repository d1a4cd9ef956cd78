import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StateMachine } from 'aws-local-stepfunctions';

/** One entry of the engine's event log (StateEntered, StateRetried, ExecutionFailed, ...). */
export type EventLog = { type: string; state?: { name: string }; [key: string]: unknown };

import type { TaskTokens } from '#shared/ports.ts';

/**
 * Runs statemachine/deploy.asl.json with aws-local-stepfunctions. The definition is the real file; only the
 * Task integrations are local, and each returns exactly the envelope the AWS integration returns:
 * - `arn:aws:states:::lambda:invoke` wraps the function's result as `{ Payload, StatusCode, ... }`, and a
 *   function error fails the Task with Error = errorType and Cause = `{ errorType, errorMessage, trace }`;
 * - `arn:aws:states:::lambda:invoke.waitForTaskToken` gets a fresh task token per Task, and its output is
 *   what SendTaskSuccess sent (or it fails with SendTaskFailure's error and cause).
 */

export const ASL_PATH = fileURLToPath(new URL('../statemachine/deploy.asl.json', import.meta.url));

/** What template.yaml substitutes with its default parameters: (queued + job timeout) minutes plus 10. */
export const DEFAULT_SUBSTITUTIONS: Record<string, string> = {
  BuildWaitSeconds: '3300',
  DeployWaitSeconds: '5100',
};

/** Where the engine carries a TimeoutSecondsPath value through a Task's Parameters (see the constructor). */
const LOCAL_TIMEOUT_FIELD = 'localTimeoutSeconds';

export type LambdaFunction = (payload: unknown) => Promise<unknown>;

interface TaskState {
  Type: 'Task';
  Resource: string;
  Parameters?: { FunctionName?: string };
}

/** Replaces `${Name}` placeholders, failing on any name without a value (as SAM would not deploy it). */
export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z0-9]+)\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined)
      throw new Error(`the state machine uses \${${name}} but no substitution is given`);
    return value;
  });
}

/** Task tokens for waiting Tasks, completed in-process (the local stand-in for SendTaskSuccess/Failure). */
export class LocalTaskTokens implements TaskTokens {
  private readonly waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  issue(): { token: string; result: Promise<unknown> } {
    const token = `local-token-${randomUUID()}`;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    // An aborted execution no longer listens; its late failure must not become an unhandled rejection.
    promise.catch(() => {});
    this.waiting.set(token, { resolve, reject });
    return { token, result: promise };
  }

  /** A Task that ended another way (timeout, abort) must not be completed later. */
  discard(token: string): void {
    this.waiting.delete(token);
  }

  async succeed(taskToken: string, output: unknown) {
    const waiter = this.waiting.get(taskToken);
    if (!waiter) return 'gone' as const;
    this.waiting.delete(taskToken);
    // Step Functions passes the output as a JSON string and parses it: do the same round trip.
    waiter.resolve(JSON.parse(JSON.stringify(output ?? null)));
    return 'delivered' as const;
  }

  async fail(taskToken: string, error: string, cause: string) {
    const waiter = this.waiting.get(taskToken);
    if (!waiter) return 'gone' as const;
    this.waiting.delete(taskToken);
    waiter.reject(taskError(error, cause));
    return 'delivered' as const;
  }
}

function taskError(name: string, cause: string): Error {
  const error = new Error(cause);
  error.name = name;
  return error;
}

/** The Lambda runtime's error envelope, as Step Functions puts it into Cause. */
function lambdaError(error: unknown): Error {
  const errorType = (error as Error)?.name ?? 'Error';
  const errorMessage = (error as Error)?.message ?? String(error);
  return taskError(errorType, JSON.stringify({ errorType, errorMessage, trace: [] }));
}

export interface WorkflowEngineOptions {
  /** Handlers by the substitution name the ASL uses for their ARN, e.g. `ValidateRequestFunctionArn`. */
  functions: Record<string, LambdaFunction>;
  tokens: LocalTaskTokens;
  /** Non-ARN DefinitionSubstitutions (the job waits); the template's values apply when omitted. */
  substitutions?: Record<string, string>;
  /** Shortens Wait states and retry intervals (tests and local mode do not need to sit out 30 s). */
  waitMs?: number;
  retryMs?: number;
  definitionPath?: string;
  /**
   * Keep each execution's engine events in `RunningExecution.events` (tests and the bench read them). Off,
   * they are drained and dropped: a deployment waiting for its environment loops through the lock states
   * for as long as it waits, and every round's events (with their inputs and outputs) would stay in memory.
   */
  keepEvents?: boolean;
}

export interface RunningExecution {
  name: string;
  result: Promise<unknown>;
  events: EventLog[];
  abort: () => void;
}

export class WorkflowEngine {
  private readonly machine: StateMachine;
  private readonly overrides: NonNullable<Parameters<StateMachine['run']>[1]>['overrides'];

  private readonly options: WorkflowEngineOptions;

  constructor(options: WorkflowEngineOptions) {
    this.options = options;
    const raw = readFileSync(options.definitionPath ?? ASL_PATH, 'utf8');
    const arns = Object.fromEntries(
      Object.keys(options.functions).map((name) => [
        name,
        `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
      ]),
    );
    const substitutions = { ...DEFAULT_SUBSTITUTIONS, ...options.substitutions };
    const definition = JSON.parse(substitute(raw, { ...substitutions, ...arns }));
    // aws-local-stepfunctions 3.0.0 evaluates TimeoutSecondsPath against the Task's Parameters output
    // instead of the state input (AWS uses the state input). Carry the value the path names in the state
    // input through Parameters, so the Task times out after what AWS would read (the integrations read
    // only `Payload`, so the extra field goes nowhere); template tests check the path itself.
    for (const state of Object.values(definition.States as Record<string, Record<string, unknown>>)) {
      if (typeof state.TimeoutSecondsPath === 'string') {
        const parameters = (state.Parameters ?? {}) as Record<string, unknown>;
        state.Parameters = { ...parameters, [`${LOCAL_TIMEOUT_FIELD}.$`]: state.TimeoutSecondsPath };
        state.TimeoutSecondsPath = `$.${LOCAL_TIMEOUT_FIELD}`;
      }
    }
    this.machine = new StateMachine(definition);
    const byArn = new Map(Object.entries(options.functions).map(([name, fn]) => [arns[name], fn]));
    const taskHandlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    const waits: Record<string, number> = {};
    const retries: Record<string, number> = {};
    for (const [stateName, state] of Object.entries(definition.States as Record<string, { Type: string }>)) {
      if (state.Type === 'Wait') waits[stateName] = options.waitMs ?? 0;
      if (state.Type !== 'Task') continue;
      retries[stateName] = options.retryMs ?? 0;
      const task = state as TaskState;
      const fn = byArn.get(task.Parameters?.FunctionName ?? '');
      if (!fn) throw new Error(`state "${stateName}" invokes a function the local engine does not have`);
      taskHandlers[stateName] = this.integration(
        task.Resource,
        fn,
        stateName,
        (state as { TimeoutSeconds?: number }).TimeoutSeconds,
      );
    }
    this.overrides = {
      taskResourceLocalHandlers: taskHandlers as never,
      waitTimeOverrides: waits,
      retryIntervalOverrides: retries,
    };
  }

  private integration(resource: string, fn: LambdaFunction, stateName: string, timeoutSeconds?: number) {
    if (resource === 'arn:aws:states:::lambda:invoke') {
      return async (input: unknown) => {
        const { Payload } = input as { Payload: unknown };
        try {
          const result = await fn(structuredClone(Payload));
          return {
            ExecutedVersion: '$LATEST',
            Payload: JSON.parse(JSON.stringify(result ?? null)),
            SdkHttpMetadata: { HttpStatusCode: 200 },
            StatusCode: 200,
          };
        } catch (error) {
          throw lambdaError(error);
        }
      };
    }
    if (resource === 'arn:aws:states:::lambda:invoke.waitForTaskToken') {
      return async (input: unknown) => {
        const { Payload } = input as { Payload: Record<string, unknown> };
        const { token, result } = this.options.tokens.issue();
        // A Task that timed out no longer listens: as in AWS, its token is then gone (a hand-over to a
        // waiter that timed out must see `gone`, and a long-waiting server must not keep every old token).
        // Set before the engine's own Task timer (which starts once this handler returns its promise), so
        // the token is gone by the time the engine reports States.Timeout.
        if (timeoutSeconds !== undefined) {
          const timer = setTimeout(() => this.options.tokens.discard(token), timeoutSeconds * 1000);
          timer.unref();
          void result.finally(() => clearTimeout(timer)).catch(() => {});
        }
        try {
          await fn({ ...structuredClone(Payload), taskToken: token });
        } catch (error) {
          this.options.tokens.discard(token);
          throw lambdaError(error);
        }
        return result;
      };
    }
    throw new Error(`state "${stateName}" uses ${resource}, which the local engine does not emulate`);
  }

  start(name: string, input: unknown): RunningExecution {
    const execution = this.machine.run(input as never, {
      overrides: this.overrides,
      // `$$.Task.Token` is replaced per Task by the integration above; the placeholder only lets it resolve.
      context: { Execution: { Name: name, Input: input as never }, Task: { Token: 'replaced-per-task' } },
    });
    const events: EventLog[] = [];
    const keep = this.options.keepEvents !== false;
    // Drained either way: the engine queues every event until it is read.
    void (async () => {
      for await (const event of execution.eventLogs) if (keep) events.push(event as unknown as EventLog);
    })().catch(() => {});
    return { name, result: execution.result, events, abort: () => execution.abort() };
  }
}
