/**
 * Test-only: runs one build or deploy job through the real local job runner (local/job-runner.ts), with the
 * stand-in `sam` and `aws` of test/support/run-buildspec.ts first on PATH. The runner hands jobs only the
 * environment a tool needs, so the stand-ins learn where to log and what to answer from wrappers that name
 * those files.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LocalJobRunner } from '#local/job-runner.ts';
import { LocalLogWriter } from '#local/logs.ts';
import { buildJobEnvironment, deployJobEnvironment } from '#shared/jobs/job-env.ts';
import type { JobInfo } from '#shared/ports.ts';
import {
  type Call,
  fixtureDeployment,
  fixtureRegistry,
  fixtureTarget,
  makeZip,
  type Sandbox,
  type Scenario,
  type ZipEntry,
} from './run-buildspec.ts';

const roots: string[] = [];

/** For afterAll: removes every data directory and repository runLocalJob created. */
export function removeLocalJobRoots(): void {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
}

export const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

export interface LocalJobOptions {
  sandbox: Sandbox;
  job: 'build' | 'deploy';
  scenario: Scenario;
  /** Build: writes the committed files into the repository. */
  writeSource?: (repo: string) => void;
  /** Build: the application's `source.localPath`, given the repository (default: the repository itself). */
  localPath?: (repo: string) => string;
  /** Build: the registry file's directory, which relative localPath values start from (default: the root). */
  registryDir?: (repo: string) => string;
  /** Deploy: the build output's entries. */
  files?: Record<string, ZipEntry>;
  /** Deploy: what the deployment recorded, given the stored artifact's digest. */
  recorded?: (digest: string, storedVersion: string) => { versionId: string; sha256: string };
  /** The server's environment besides PATH (which the runner's jobs inherit from). */
  serverEnv?: NodeJS.ProcessEnv;
}

export interface LocalJobResult {
  info: JobInfo;
  /** The deployment's log, one message per line. */
  output: string;
  calls: Call[];
  dataDir: string;
  /** The job's workspace. */
  workspace: string;
}

export async function runLocalJob(options: LocalJobOptions): Promise<LocalJobResult> {
  const { sandbox } = options;
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-local-job-'));
  roots.push(root);
  const dataDir = join(root, 'data');
  const wrappers = join(root, 'bin');
  mkdirSync(wrappers);
  for (const tool of ['aws', 'sam']) {
    writeFileSync(
      join(wrappers, tool),
      `#!/bin/sh\nSTANDIN_LOG_DIR='${sandbox.logs}' STANDIN_SCENARIO='${join(sandbox.root, 'scenario.json')}' exec '${join(sandbox.bin, tool)}' "$@"\n`,
    );
    chmodSync(join(wrappers, tool), 0o755);
  }
  const runner = new LocalJobRunner({
    dataDir,
    registry: fixtureRegistry,
    registryDir: options.registryDir?.(join(root, 'repo')) ?? root,
    logs: new LocalLogWriter(join(dataDir, 'logs')),
    simulateBin: join(root, 'no-simulate'),
    env: {
      HOME: join(root, 'home'),
      LANG: 'C.UTF-8',
      AWS_CONFIG_FILE: join(root, 'no-aws-config'),
      ...options.serverEnv,
      PATH: `${wrappers}:${sandbox.bin}:/usr/bin:/bin`,
    },
  });
  const finished = new Promise<void>((resolve) => {
    runner.onFinished = async () => resolve();
  });

  const deploymentId = fixtureDeployment().deploymentId;
  if (options.job === 'build') {
    const repo = join(root, 'repo');
    mkdirSync(repo);
    git(root, 'init', '-q', '-b', 'main', repo);
    options.writeSource?.(repo);
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'app');
    git(repo, 'branch', 'release/1.2');
    sandbox.setScenario(options.scenario);
    await runner.start({
      deploymentId,
      job: 'build',
      idempotencyToken: `${deploymentId}-build`,
      environmentVariables: buildJobEnvironment(fixtureDeployment(), fixtureTarget(), {
        outputBucket: 'crossdeploy-output',
      }),
      source: {
        type: 'GITHUB',
        location: 'https://example.com/x.git',
        version: 'release/1.2',
        localPath: options.localPath?.(repo) ?? repo,
      },
    });
  } else {
    const artifact = join(root, 'artifact.zip');
    await makeZip(artifact, options.files ?? {});
    const digest = sha256(artifact);
    const recorded = options.recorded?.(digest, digest) ?? { versionId: digest, sha256: digest };
    const base = fixtureDeployment();
    const deployment = fixtureDeployment({ buildOutput: { ...base.buildOutput!, ...recorded } });
    const env = deployJobEnvironment(deployment, fixtureTarget());
    const stored = join(dataDir, 'artifacts', env.OUTPUT_KEY!);
    mkdirSync(dirname(stored), { recursive: true });
    writeFileSync(stored, readFileSync(artifact));
    sandbox.setScenario(options.scenario);
    await runner.start({
      deploymentId,
      job: 'deploy',
      idempotencyToken: `${deploymentId}-deploy`,
      environmentVariables: env,
    });
  }
  await finished;
  const [record] = runner.records();
  const [info] = await runner.describe([record!.buildId]);
  const output = readFileSync(join(dataDir, 'logs', `${deploymentId}.log`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { message: string }).message)
    .join('\n');
  return { info: info!, output, calls: sandbox.calls(), dataDir, workspace: record!.workspace };
}
