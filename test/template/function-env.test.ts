import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isRecord, loadTemplate, resourcesOfType } from '../../scripts/cfn-yaml.ts';

/**
 * The real dependency factories (functions/shared/aws/runtime.ts), built from exactly the environment the
 * template gives each function: Globals plus the function's own variables, with its intrinsics replaced by
 * values of the right shape. A factory that reads a variable its function is not given fails here, not on
 * every invocation in AWS (handlers get their dependencies injected in every other test).
 */

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const ACCOUNT = '123456789012';
const BUCKET = 'crossdeploy-jobspecsbucket-1abc';

/** A plausible value for a template environment value: literal, or by the name it refers to. */
function plausibleValue(name: string, node: unknown): string {
  if (typeof node === 'string' || typeof node === 'number') return String(node);
  const text = JSON.stringify(node);
  if (name.endsWith('_BUILDSPEC_LOCATION')) {
    const job = name.startsWith('BUILD') ? 'build' : 'deploy';
    return `arn:aws:s3:::${BUCKET}/job-specs/${job}-${'0'.repeat(64)}.yml`;
  }
  if (name === 'JOB_SPECS_BUCKET') return BUCKET;
  if (name.endsWith('_ARN')) return `arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:crossdeploy-deploy`;
  if (name.endsWith('_ACCOUNT_ID')) return ACCOUNT;
  if (name.endsWith('_MINUTES')) return '30';
  if (text.includes('LogLevel')) return 'INFO';
  return `crossdeploy-${name.toLowerCase().replaceAll('_', '-')}`;
}

const variables = (node: unknown): Record<string, unknown> =>
  isRecord(node) && isRecord(node.Variables) ? node.Variables : {};

function environmentOf(logicalId: string): Record<string, string> {
  const globals = variables(template.Globals?.Function?.Environment);
  const own = variables(template.Resources[logicalId]?.Properties?.Environment);
  return Object.fromEntries(
    Object.entries({ ...globals, ...own }).map(([name, node]) => [name, plausibleValue(name, node)]),
  );
}

/** Which factories each function's handler calls (read from the handler's source). */
async function factoriesOf(logicalId: string): Promise<string[]> {
  // Handler is relative to CodeUri (the function's own folder).
  const properties = template.Resources[logicalId]?.Properties;
  const handler = join(
    String(properties?.CodeUri ?? ''),
    String(properties?.Handler).replace(/\.handler$/, '.ts'),
  );
  const { readFileSync } = await import('node:fs');
  const source = readFileSync(join(root, handler), 'utf8');
  return [...new Set([...source.matchAll(/\baws\.(\w+)\(\)/g)].map((m) => m[1] ?? ''))];
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe('each function’s dependencies build from the environment the template gives it', () => {
  const functions = resourcesOfType(template, 'AWS::Serverless::Function').map(([id]) => id);

  it.each(functions)('%s', async (logicalId) => {
    const factories = await factoriesOf(logicalId);
    for (const [name, value] of Object.entries(environmentOf(logicalId))) vi.stubEnv(name, value);
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.resetModules();
    const runtime = (await import('#shared/aws/runtime.ts')) as Record<string, unknown>;
    for (const factory of factories) {
      const make = runtime[factory];
      expect(typeof make, `${logicalId} calls aws.${factory}()`).toBe('function');
      expect(() => (make as () => unknown)(), `${logicalId}: aws.${factory}()`).not.toThrow();
    }
  });

  it('reads the factories from the handlers (a handler that calls none would make the test above vacuous)', async () => {
    expect(await factoriesOf('StartJobFunction')).toContain('jobStarter');
    expect(await factoriesOf('JobEventsFunction')).toContain('runner');
  });
});
