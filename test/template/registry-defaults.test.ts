import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateRequest } from '#shared/deployments/validation.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { placeholdersIn } from '../../scripts/check-registry.ts';

/**
 * registry/targets.yaml is what `registry:derive` bakes into template.yaml and the functions. It ships with
 * example values: its defaults must be the safe ones, and its placeholders must be refused before they
 * reach AWS (a made-up account id may belong to someone: the orchestrator would push builds there).
 */

const root = resolve(import.meta.dirname, '../..');
const TARGETS = join(root, 'registry/targets.yaml');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const release = {
  type: 'iam' as const,
  arn: 'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0a1b/bob',
  principal: 'arn:aws:iam::123456789012:role/AWSReservedSSO_Release_0a1b',
};

describe('registry/targets.yaml defaults', () => {
  it('takes prod by promotion only: a ref is refused with REF_NOT_ALLOWED, even from a release manager', () => {
    const registry = loadRegistryFile(TARGETS);
    expect(registry.applications['hello-world']?.environments.prod?.promoteFrom).toEqual(['staging']);
    let refused: unknown;
    try {
      validateRequest(
        { application: 'hello-world', environment: 'prod', ref: 'main' },
        release,
        registry,
        new Date('2026-12-01T10:00:00Z'),
        { orchestratorAccount: '123456789012' },
      );
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(RequestRejectedError);
    expect((refused as RequestRejectedError).code).toBe('REF_NOT_ALLOWED');
  });
});

describe('npm run sam:build refuses placeholder registry values', () => {
  it('finds every example value targets.yaml ships with, naming where it is', () => {
    const found = placeholdersIn(loadRegistryFile(TARGETS));
    const paths = found.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'applications.hello-world.source.location',
        'applications.hello-world.source.connectionArn',
        'applications.hello-world.environments.staging.accountId',
        'applications.hello-world.environments.prod.accountId',
        'applications.hello-world.environments.staging.allowedRequesters.slack.0.team',
      ]),
    );
  });

  it('runs the check before sam build, and the check fails on the shipped file', () => {
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts['sam:build']).toMatch(/^node scripts\/check-registry\.ts && .*sam build/);
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [join(root, 'scripts/check-registry.ts')], { cwd: root, stdio: 'pipe' });
    } catch (error) {
      status = (error as { status: number }).status;
      stderr = String((error as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(1);
    expect(stderr).toContain('applications.hello-world.environments.prod.accountId: "222222222222"');
    expect(stderr).toContain('registry/targets.yaml');
  });

  it('passes a registry whose values were replaced', () => {
    const text = readFileSync(TARGETS, 'utf8')
      .replaceAll('111111111111', '384756019283')
      .replaceAll('222222222222', '590213847561')
      .replaceAll('123456789012', '720394857163')
      .replaceAll('example-org', 'acme')
      .replaceAll('00000000-0000-0000-0000-000000000000', '5f0c8a4e-6a1b-4d3c-9e2f-7b8a9c0d1e2f')
      .replaceAll('T0EXAMPLE', 'T04ACME42')
      .replaceAll('U0RELEASE1', 'U04RELMGR');
    const dir = mkdtempSync(join(tmpdir(), 'crossdeploy-registry-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'targets.yaml'), text);
    expect(placeholdersIn(loadRegistryFile(join(dir, 'targets.yaml')))).toEqual([]);
  });
});
