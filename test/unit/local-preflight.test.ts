import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLocalTools, systemToolProbe, type ToolProbe } from '#local/preflight.ts';
import { ConfigError } from '#shared/errors.ts';
import { parseRegistry } from '#shared/registry/registry.ts';

const environment = (account: string, runner?: string) => ({
  accountId: account,
  region: 'eu-west-1',
  deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy-deploy`,
  executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy-cfn-exec`,
  stackName: `demo-${account}`,
  artifactsBucket: `crossdeploy-artifacts-${account}-eu-west-1`,
  allowedRequesters: { local: ['*'] },
  ...(runner ? { runner } : {}),
});

const registry = (environments: Record<string, ReturnType<typeof environment>>) =>
  parseRegistry({
    applications: {
      demo: {
        source: { type: 'GITHUB', location: 'https://github.com/example-org/demo.git' },
        templatePath: 'template.yaml',
        defaultRef: 'main',
        environments,
      },
    },
  });

const probe = (missing: string[]): ToolProbe => ({
  onPath: (command) => !missing.includes(command),
  pythonHasYaml: () => !missing.includes('PyYAML'),
});

function errorOf(run: () => void): Error | undefined {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

describe('local mode start-up: the tools runner: local jobs need', () => {
  it('names each missing tool and every environment that needs it, as a ConfigError (exit 2)', () => {
    const reg = registry({
      staging: environment('111111111111', 'local'),
      prod: environment('222222222222'),
      sim: environment('333333333333', 'simulate'),
    });
    const error = errorOf(() => checkLocalTools(reg, probe(['sam', 'PyYAML'])));
    expect(error).toBeInstanceOf(ConfigError);
    // The registry default (codebuild) runs with the local runner too; simulate needs nothing.
    expect(error?.message).toContain('demo/staging, demo/prod (runner: local)');
    expect(error?.message).not.toContain('demo/sim');
    expect(error?.message).toContain('  sam: SAM CLI');
    expect(error?.message).toContain('  PyYAML: PyYAML for python3');
    expect(error?.message).not.toContain('  aws:');
  });

  it.each([['sam'], ['aws'], ['python3'], ['PyYAML']])('refuses to start without %s', (tool) => {
    const error = errorOf(() =>
      checkLocalTools(registry({ staging: environment('111111111111', 'local') }), probe([tool])),
    );
    expect(error?.message).toContain(`  ${tool}: `);
  });

  it('starts with every tool present, and with none when every environment is simulated', () => {
    expect(() =>
      checkLocalTools(registry({ staging: environment('111111111111', 'local') }), probe([])),
    ).not.toThrow();
    expect(() =>
      checkLocalTools(
        registry({ staging: environment('111111111111', 'simulate') }),
        probe(['sam', 'aws', 'python3', 'PyYAML']),
      ),
    ).not.toThrow();
  });
});

describe('the system probe looks where jobs look: the PATH they inherit', () => {
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-preflight-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('finds executables on PATH only, not plain files or directories', () => {
    const bin = join(root, 'bin');
    mkdirSync(join(bin, 'aws'), { recursive: true });
    writeFileSync(join(bin, 'sam'), '#!/bin/sh\n');
    chmodSync(join(bin, 'sam'), 0o755);
    writeFileSync(join(bin, 'python3'), 'not executable');
    const system = systemToolProbe({ PATH: bin });
    expect(system.onPath('sam')).toBe(true);
    expect(system.onPath('aws')).toBe(false);
    expect(system.onPath('python3')).toBe(false);
  });

  it('asks python3 from that PATH whether it can import yaml', () => {
    const bin = join(root, 'python-without-yaml');
    mkdirSync(bin);
    writeFileSync(join(bin, 'python3'), '#!/bin/sh\necho "ModuleNotFoundError: yaml" >&2\nexit 1\n');
    chmodSync(join(bin, 'python3'), 0o755);
    expect(systemToolProbe({ PATH: bin }).pythonHasYaml()).toBe(false);
    const withYaml = join(root, 'python-with-yaml');
    mkdirSync(withYaml);
    symlinkSync('/bin/true', join(withYaml, 'python3'));
    expect(systemToolProbe({ PATH: withYaml }).pythonHasYaml()).toBe(true);
  });
});
