/**
 * Test-only: runs the deploy buildspec on a build output holding a given template, through the local runner's
 * own driver (local/buildspec-script.ts), which writes the exported variables even when the job fails.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { driverFor } from '#local/buildspec-script.ts';
import { deployJobEnvironment } from '#shared/jobs/job-env.ts';
import {
  type Call,
  fixtureDeployment,
  fixtureTarget,
  jobEnvironment,
  makeZip,
  readBuildspec,
  type Sandbox,
} from '#test/support/run-buildspec.ts';

export const fixture = (path: string) =>
  readFileSync(new URL(`../fixtures/templates/${path}`, import.meta.url), 'utf8');
// The fixtures name the staging account's boundary; the job harness deploys to prod (222222222222).
export const forProd = (text: string) => text.replaceAll('111111111111', '222222222222');
export const samDeploys = (calls: Call[]) =>
  calls.filter((c) => c.argv[0] === 'sam' && c.argv[1] === 'deploy');
export const targetCalls = (calls: Call[]) => calls.filter((c) => c.argv[0] === 'sam' || c.argv[1] === 'sts');

export async function deployEnv(sandbox: Sandbox, template: string, overrides: Record<string, string> = {}) {
  const artifact = join(sandbox.root, 'artifact.zip');
  await makeZip(artifact, { 'template.yaml': template, 'HelloFunction/app.js': '' });
  const digest = createHash('sha256').update(readFileSync(artifact)).digest('hex');
  const base = fixtureDeployment();
  const deployment = fixtureDeployment({
    buildOutput: { ...base.buildOutput!, sha256: digest, versionId: digest },
  });
  const env: Record<string, string> = { ...deployJobEnvironment(deployment, fixtureTarget()), ...overrides };
  const stored = join(sandbox.root, 'artifacts', env.OUTPUT_KEY!);
  mkdirSync(dirname(stored), { recursive: true });
  writeFileSync(stored, readFileSync(artifact));
  env.CROSSDEPLOY_LOCAL_ARTIFACTS_DIR = join(sandbox.root, 'artifacts');
  sandbox.setScenario({ account: '222222222222', artifact });
  return env;
}

/** The local runner's path: its driver writes the exported variables even when the job fails. */
export async function runLocalDriver(sandbox: Sandbox, env: Record<string, string>) {
  const { files } = driverFor(readBuildspec('deploy'));
  const dir = join(sandbox.root, `local-driver-${Date.now()}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const exportedFile = join(dir, 'exported');
  const child = spawn('bash', [join(dir, 'driver.sh'), dir, exportedFile], {
    cwd: sandbox.cwd,
    env: jobEnvironment(sandbox, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  const exported: Record<string, string> = {};
  for (const record of readFileSync(exportedFile, 'utf8').split('\0').filter(Boolean)) {
    const at = record.indexOf('=');
    exported[record.slice(0, at)] = record.slice(at + 1);
  }
  return { code, output, exported, calls: sandbox.calls() };
}
