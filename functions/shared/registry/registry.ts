/**
 * registry/: the targets registry (schema and load-time checks, the YAML reader, the bundled copy), the
 * time rules of its schedules and freeze windows (calendar.ts) and who may do what (requester.ts).
 * May import: errors.ts and types.ts only.
 */
import { createHash } from 'node:crypto';
import type { ApplicationConfig, EnvironmentConfig, Registry } from './schema.ts';

/**
 * The targets registry: which applications exist, where they deploy, and who may deploy them.
 * It is reviewed in git and bundled into the functions, so a change means redeploying the orchestrator.
 *
 * This module holds the lookups the functions use at run time. The schema and the load-time checks are in
 * schema.ts: the functions carry the registry already parsed (bundled.ts), and with
 * `"sideEffects": false` in package.json esbuild leaves the schema (zod, the cron parser) out of every
 * bundle that does not load a registry file.
 */

export type { ApplicationConfig, EnvironmentConfig, Registry } from './schema.ts';
export {
  CAPABILITIES,
  EXECUTION_MODES,
  parseRegistry,
  RESERVED_APPLICATION_NAMES,
  RUNNERS,
} from './schema.ts';

export interface Target {
  application: string;
  environment: string;
  app: ApplicationConfig;
  env: EnvironmentConfig;
}

export function findTarget(registry: Registry, application: string, environment: string): Target | undefined {
  const app = Object.hasOwn(registry.applications, application)
    ? registry.applications[application]
    : undefined;
  if (!app) return undefined;
  const env = Object.hasOwn(app.environments, environment) ? app.environments[environment] : undefined;
  return env ? { application, environment, app, env } : undefined;
}

/** The registry parameters a deploy uses, and their hash (scheduled promotions compare it later). */
export function deployParameters(env: EnvironmentConfig): {
  parameters: Record<string, unknown>;
  hash: string;
} {
  const parameters = {
    stackName: env.stackName,
    region: env.region,
    capabilities: [...env.capabilities].sort(),
    parameterOverrides: Object.fromEntries(
      Object.entries(env.parameterOverrides).sort(([a], [b]) => a.localeCompare(b)),
    ),
    executionRoleArn: env.executionRoleArn,
  };
  return { parameters, hash: createHash('sha256').update(JSON.stringify(parameters)).digest('hex') };
}

/** What GET /applications shows: names, accounts, regions, modes. No role ARNs, no ExternalIds. */
export function describeRegistry(registry: Registry) {
  return {
    items: Object.entries(registry.applications).map(([name, app]) => ({
      name,
      defaultRef: app.defaultRef,
      environments: Object.entries(app.environments).map(([envName, env]) => ({
        name: envName,
        accountId: env.accountId,
        region: env.region,
        stackName: env.stackName,
        mode: env.mode,
      })),
    })),
  };
}
