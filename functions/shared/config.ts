// Named imports: `z.*` would bundle all of zod (locales included) into every function.
import { coerce, object, type output, string, type ZodObject, type ZodRawShape } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * Reads and validates environment variables once, failing fast with the variable's name. No silent
 * defaults for ARNs or table names.
 */
export function readEnv<T extends ZodRawShape>(
  shape: T,
  env: NodeJS.ProcessEnv = process.env,
): output<ZodObject<T>> {
  const result = object(shape).safeParse(env);
  if (!result.success) {
    const names = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${names.join('; ')}`);
  }
  return result.data;
}

const minutes = coerce.number().int().positive();

export const envShapes = {
  table: { TABLE_NAME: string().min(3) },
  jobs: {
    BUILD_PROJECT: string().min(2),
    DEPLOY_PROJECT: string().min(2),
    ARTIFACTS_BUCKET: string().min(3),
  },
  timeouts: {
    QUEUED_TIMEOUT_MINUTES: minutes,
    DEPLOY_TIMEOUT_MINUTES: minutes,
  },
  stateMachine: { STATE_MACHINE_ARN: string().startsWith('arn:') },
  logs: { BUILD_LOG_GROUP: string().min(1), DEPLOY_LOG_GROUP: string().min(1) },
};

/** The lock lease outlives the longest deploy job (queued + build timeout) with a margin. */
export function leaseSeconds(queuedMinutes: number, deployMinutes: number): number {
  return (queuedMinutes + deployMinutes) * 60 + 15 * 60;
}
