import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '#shared/errors.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { isBotToken } from '../functions/slack/poster.ts';

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
    CROSSDEPLOY_SLACK_PORT: optional.pipe(
      z.coerce.number<string | undefined>().int().min(0).max(65535).optional(),
    ),
    // Read here only to pair it with the Slack port; functions/slack/local.ts reads its value.
    CROSSDEPLOY_SLACK_SIGNING_SECRET: optional,
    // Checked here only (shape, and chat configured); functions/slack/local.ts reads its value.
    CROSSDEPLOY_SLACK_BOT_TOKEN: optional.pipe(
      z.string().refine(isBotToken, 'must be a Slack bot token (xoxb-...)').optional(),
    ),
  })
  .superRefine((env, ctx) => {
    if (!isLoopback(env.CROSSDEPLOY_HOST) && !env.CROSSDEPLOY_API_TOKEN) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_API_TOKEN'],
        message: `is required when CROSSDEPLOY_HOST (${env.CROSSDEPLOY_HOST}) is not a loopback address: anyone who can reach the port could deploy`,
      });
    }
    // Slack is served on its own port, the one a tunnel may expose; the API's port never serves it. Either
    // without the other is a setup that cannot work, so it is refused rather than half-started.
    if (env.CROSSDEPLOY_SLACK_SIGNING_SECRET && env.CROSSDEPLOY_SLACK_PORT === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_SLACK_PORT'],
        message:
          'is required with CROSSDEPLOY_SLACK_SIGNING_SECRET: Slack is served on its own port (point the tunnel there), never on the API port',
      });
    }
    if (env.CROSSDEPLOY_SLACK_PORT !== undefined && !env.CROSSDEPLOY_SLACK_SIGNING_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_SLACK_SIGNING_SECRET'],
        message: 'is required with CROSSDEPLOY_SLACK_PORT (nothing could verify a Slack request without it)',
      });
    }
    if (env.CROSSDEPLOY_SLACK_BOT_TOKEN && !env.CROSSDEPLOY_SLACK_SIGNING_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_SLACK_SIGNING_SECRET'],
        message:
          'is required with CROSSDEPLOY_SLACK_BOT_TOKEN (the bot posts progress of chat requests only)',
      });
    }
    if (
      env.CROSSDEPLOY_SLACK_PORT !== undefined &&
      env.CROSSDEPLOY_SLACK_PORT !== 0 &&
      env.CROSSDEPLOY_SLACK_PORT === env.PORT
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['CROSSDEPLOY_SLACK_PORT'],
        message: `must differ from PORT (${env.PORT}): the API and Slack are served on separate ports`,
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
  /** The port of the listener that serves `POST /slack/commands` and nothing else (0: any free port). */
  slackPort?: number;
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
    ...(c.CROSSDEPLOY_SLACK_PORT !== undefined ? { slackPort: c.CROSSDEPLOY_SLACK_PORT } : {}),
  };
}

/**
 * Local mode builds from each application's `source.localPath` (relative to the registry file): one that
 * does not exist is a configuration mistake found at start, not by the first build that needs it.
 */
export function checkLocalSources(registry: Registry, registryPath: string): void {
  const missing = Object.entries(registry.applications).flatMap(([name, app]) => {
    if (!app.source.localPath) return [];
    const path = resolve(dirname(registryPath), app.source.localPath);
    return existsSync(path) ? [] : [`applications.${name}.source.localPath: ${path} does not exist`];
  });
  if (missing.length > 0) {
    throw new ConfigError(`${registryPath} is not usable in local mode:\n  ${missing.join('\n  ')}`);
  }
}
