import { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * Reads and validates environment variables once, failing fast with the variable's name. No silent
 * defaults for ARNs or table names.
 */
export function readEnv<T extends z.ZodRawShape>(
  shape: T,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<T>> {
  const result = z.object(shape).safeParse(env);
  if (!result.success) {
    const names = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${names.join('; ')}`);
  }
  return result.data;
}

const minutes = z.coerce.number().int().positive();

export const envShapes = {
  table: { TABLE_NAME: z.string().min(3) },
  jobs: {
    BUILD_PROJECT: z.string().min(2),
    DEPLOY_PROJECT: z.string().min(2),
    ARTIFACTS_BUCKET: z.string().min(3),
  },
  timeouts: {
    QUEUED_TIMEOUT_MINUTES: minutes,
    DEPLOY_TIMEOUT_MINUTES: minutes,
  },
  stateMachine: { STATE_MACHINE_ARN: z.string().startsWith('arn:') },
  logs: { BUILD_LOG_GROUP: z.string().min(1), DEPLOY_LOG_GROUP: z.string().min(1) },
};

/** The lock lease outlives the longest deploy job (queued + build timeout) with a margin. */
export function leaseSeconds(queuedMinutes: number, deployMinutes: number): number {
  return (queuedMinutes + deployMinutes) * 60 + 15 * 60;
}
