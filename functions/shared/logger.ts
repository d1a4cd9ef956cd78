import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import type {
  ConstructorOptions,
  LogAttributes,
  LogItemExtraInput,
  LogItemMessage,
} from '@aws-lambda-powertools/logger/types';

/**
 * The correlation keys of the invocation running in this async context. They are kept here, not appended to
 * the shared logger: appended keys stay on the logger after the invocation, so the next line logged in the
 * process (in local mode, by any handler or request in flight at the same time) would carry another
 * deployment's id, job and build.
 */
const invocationKeys = new AsyncLocalStorage<LogAttributes>();

class InvocationLogger extends Logger {
  /** Adds the current invocation's keys to each line; what the line itself passes wins. */
  protected override createAndPopulateLogItem(
    logLevel: number,
    input: LogItemMessage,
    extraInput: LogItemExtraInput,
  ) {
    const keys = invocationKeys.getStore();
    if (!keys) return super.createAndPopulateLogItem(logLevel, input, extraInput);
    // Powertools reads each extra item on its own (an Error, a string or attributes), so a mixed list is
    // fine at run time; its type only describes the two shapes callers pass.
    const extra = [keys, ...extraInput] as LogItemExtraInput;
    return super.createAndPopulateLogItem(logLevel, input, extra);
  }

  protected override createLogger(options?: ConstructorOptions): Logger {
    return new InvocationLogger(options);
  }
}

/**
 * The one logger, configured by POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL. Log structured facts only:
 * never a whole event (API events may carry signatures; nothing here may carry credentials).
 */
export const logger: Logger = new InvocationLogger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'crossdeploy',
});

/**
 * Runs one handler invocation with its correlation keys (deploymentId, job, buildId, requestId, ...). Every
 * line logged inside it, across awaits, carries them; nothing logged outside it or by another invocation
 * does. An invocation started from inside another (local mode runs the workflow from the request that
 * started it) has only its own keys.
 */
export function withLogKeys<T>(keys: LogAttributes, run: () => T): T {
  const defined = Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined));
  return invocationKeys.run(defined, run);
}
