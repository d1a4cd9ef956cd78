import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '#shared/errors.ts';

/** The sample registry ships with the project, so `npm start` works from any working directory. */
export const SAMPLE_REGISTRY = fileURLToPath(new URL('../registry/sample.yaml', import.meta.url));

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost', 'ip6-loopback']);

/** Whether a bind address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (LOOPBACK_NAMES.has(bare)) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || bare.startsWith('::ffff:127.');
  return false;
}

const optional = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const shape = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    CROSSDEPLOY_HOST: z.string().trim().min(1).default('127.0.0.1'),
    CROSSDEPLOY_API_TOKEN: optional.pipe(
      z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
    ),
    CROSSDEPLOY_DATA_DIR: optional,
    CROSSDEPLOY_REGISTRY: optional,
    CROSSDEPLOY_DYNAMODB_ENDPOINT: optional.pipe(z.url().optional()),
    CROSSDEPLOY_TABLE_NAME: optional.pipe(
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name')
        .optional(),
    ),
    CROSSDEPLOY_SCHEDULES: optional.pipe(z.enum(['on', 'off'], 'must be on or off').optional()),
  })
  .superRefine((env, ctx) => {
    if (!isLoopback(env.CROSSDEPLOY_HOST) && !env.CROSSDEPLOY_API_TOKEN) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_API_TOKEN'],
        message: `is required when CROSSDEPLOY_HOST (${env.CROSSDEPLOY_HOST}) is not a loopback address: anyone who can reach the port could deploy`,
      });
    }
    if (env.CROSSDEPLOY_DYNAMODB_ENDPOINT && !env.CROSSDEPLOY_TABLE_NAME) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_TABLE_NAME'],
        message:
          'is required with CROSSDEPLOY_DYNAMODB_ENDPOINT (no default table name for an external store)',
      });
    }
  });

export interface LocalConfig {
  port: number;
  host: string;
  apiToken?: string;
  dataDir: string;
  registryPath: string;
  /** Unset: the embedded dynalite under `<dataDir>/db`. */
  dynamo?: { endpoint?: string; tableName: string };
  /** Whether the registry's schedules run in-process (CROSSDEPLOY_SCHEDULES, default on). */
  schedules: boolean;
}

/** Reads the local server's configuration once, failing with the variable's name. */
export function readLocalConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LocalConfig {
  const result = shape.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = result.data;
  return {
    port: c.PORT,
    host: c.CROSSDEPLOY_HOST,
    ...(c.CROSSDEPLOY_API_TOKEN ? { apiToken: c.CROSSDEPLOY_API_TOKEN } : {}),
    dataDir: resolve(cwd, c.CROSSDEPLOY_DATA_DIR ?? '.crossdeploy'),
    registryPath: c.CROSSDEPLOY_REGISTRY ? resolve(cwd, c.CROSSDEPLOY_REGISTRY) : SAMPLE_REGISTRY,
    ...(c.CROSSDEPLOY_TABLE_NAME
      ? {
          dynamo: {
            tableName: c.CROSSDEPLOY_TABLE_NAME,
            ...(c.CROSSDEPLOY_DYNAMODB_ENDPOINT ? { endpoint: c.CROSSDEPLOY_DYNAMODB_ENDPOINT } : {}),
          },
        }
      : {}),
    schedules: c.CROSSDEPLOY_SCHEDULES !== 'off',
  };
}
