/**
 * Conformance: the same hostile cases run through the local job runner (local/job-runner.ts, the driver
 * that runs buildspecs in local mode) and through the test harness that runs the buildspecs the way CodeBuild
 * does (test/support/run-buildspec.ts), with the same stand-in `sam` and `aws`. Both must give the same verdict:
 * the job FAILED, with the refusal's own error code, and `sam deploy` never invoked. The local verdict is then
 * handed to the real job-events core, which must fail the deployment with that code.
 *
 * The two runners differ where CodeBuild and local mode differ: CodeBuild stores build outputs in S3 (the
 * stand-in answers put-object/get-object), local mode in a content-addressed directory whose version ids are
 * digests. Each case sets up the same fault in both worlds.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import { describeWorkflowError } from '#shared/errors.ts';
import { buildJobEnvironment, deployJobEnvironment } from '#shared/jobs/job-env.ts';
import type { JobInfo, TaskTokens } from '#shared/ports.ts';
import { removeLocalJobRoots, runLocalJob, sha256 } from '#test/support/local-job.ts';
import {
  type Call,
  createSandbox,
  fixtureDeployment,
  fixtureTarget,
  makeZip,
  readBuildspec,
  removeSandboxes,
  runBuildspec,
  type Sandbox,
  type Scenario,
  type ZipEntry,
} from '#test/support/run-buildspec.ts';
import { createTestStore } from '#test/support/store.ts';
import { deliverJobResult } from '../../functions/job-events/core.ts';

afterAll(() => {
  removeSandboxes();
  removeLocalJobRoots();
});

const TEMPLATE = [
  'Transform: AWS::Serverless-2016-10-31',
  'Resources:',
  '  Hello:',
  '    Type: AWS::Serverless::Function',
  '    Properties:',
  '      CodeUri: Hello',
  '      Handler: app.handler',
  '      Runtime: nodejs24.x',
  // The deploy job's template policy refuses a role without the boundary (its own case below).
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub, not a JS template
  '      PermissionsBoundary: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/crossdeploy/crossdeploy-boundary-${AWS::Region}',
  '',
].join('\n');
const HELLO: Record<string, ZipEntry> = {
  'template.yaml': TEMPLATE,
  'Hello/app.js': 'export const handler = async () => "hello";\n',
};
const SECRET = 'aws_secret_access_key = never-ship-this\n';

const samDeploys = (calls: Call[]) => calls.filter((c) => c.argv[0] === 'sam' && c.argv[1] === 'deploy');

interface Verdict {
  status: 'SUCCEEDED' | 'FAILED';
  code: string | undefined;
  samDeploys: number;
}

interface World {
  sandbox: Sandbox;
  /** A file outside every source tree: what a hostile link points at. */
  secret: string;
}

interface Case {
  name: string;
  job: 'build' | 'deploy';
  scenario?: (world: World) => Scenario;
  /** Build: extra committed files (path -> content, or a link to the secret). */
  source?: Record<string, string | 'LINK_TO_SECRET'>;
  /** Deploy: the build output's entries. */
  files?: Record<string, ZipEntry>;
  /** The refusal comes before `sam build` runs. */
  beforeSamBuild?: true;
  /**
   * Deploy: what the deployment recorded, given the stored artifact's digest and the version id the store
   * gives it (local mode: the digest itself; the S3 stand-in: HARNESS_VERSION).
   */
  recorded?: (digest: string, storedVersion: string) => { versionId: string; sha256: string };
  expected: Verdict;
}

const CASES: Case[] = [
  {
    name: 'a healthy build (the control)',
    job: 'build',
    expected: { status: 'SUCCEEDED', code: undefined, samDeploys: 0 },
  },
  {
    name: 'a healthy deploy (the control)',
    job: 'deploy',
    expected: { status: 'SUCCEEDED', code: undefined, samDeploys: 1 },
  },
  {
    name: 'sam build fails',
    job: 'build',
    scenario: () => ({ samBuildExit: 1 }),
    expected: { status: 'FAILED', code: 'SAM_BUILD_FAILED', samDeploys: 0 },
  },
  {
    name: 'a committed link to a file outside the source tree',
    job: 'build',
    source: { 'app/Hello/credentials': 'LINK_TO_SECRET' },
    beforeSamBuild: true,
    expected: { status: 'FAILED', code: 'SOURCE_LINK_OUTSIDE_TREE', samDeploys: 0 },
  },
  {
    name: 'sam build leaves a link to a file outside the source tree',
    job: 'build',
    scenario: ({ secret }) => ({ samBuildLinks: { 'Hello/credentials': secret } }),
    expected: { status: 'FAILED', code: 'SOURCE_LINK_OUTSIDE_TREE', samDeploys: 0 },
  },
  {
    name: 'samconfig.toml in the build output',
    job: 'deploy',
    files: { ...HELLO, 'src/samconfig.toml': 'version = 0.1\n[default.deploy.parameters]\n' },
    expected: { status: 'FAILED', code: 'BUILD_OUTPUT_HAS_SAMCONFIG', samDeploys: 0 },
  },
  {
    name: 'a checksum that does not match the recorded one',
    job: 'deploy',
    // Local artifacts are content-addressed, so there the recorded version is the recorded digest too.
    recorded: (digest, storedVersion) => ({
      versionId: storedVersion === digest ? 'f'.repeat(64) : storedVersion,
      sha256: 'f'.repeat(64),
    }),
    expected: { status: 'FAILED', code: 'CHECKSUM_MISMATCH', samDeploys: 0 },
  },
  {
    name: 'an object version the store does not hold',
    job: 'deploy',
    recorded: (digest) => ({ versionId: 'another-version', sha256: digest }),
    expected: { status: 'FAILED', code: 'BUILD_OUTPUT_VERSION_NOT_FOUND', samDeploys: 0 },
  },
  {
    name: 'an artifact path that leaves the build output',
    job: 'deploy',
    files: { ...HELLO, 'template.yaml': TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ../../home') },
    expected: { status: 'FAILED', code: 'ARTIFACT_PATH_ESCAPES', samDeploys: 0 },
  },
  {
    name: 'a symbolic link in the build output',
    job: 'deploy',
    files: { ...HELLO, 'Hello/credentials': { symlink: '/root/.aws/credentials' } },
    expected: { status: 'FAILED', code: 'BUILD_OUTPUT_HAS_SYMLINK', samDeploys: 0 },
  },
  {
    name: 'a template whose function role has no permissions boundary',
    job: 'deploy',
    files: { ...HELLO, 'template.yaml': TEMPLATE.replace(/^ +PermissionsBoundary:.*\n/m, '') },
    expected: { status: 'FAILED', code: 'TEMPLATE_POLICY_VIOLATION', samDeploys: 0 },
  },
  {
    name: 'the assumed role is in another account than the target',
    job: 'deploy',
    scenario: () => ({ account: '999999999999' }),
    expected: { status: 'FAILED', code: 'WRONG_TARGET_ACCOUNT', samDeploys: 0 },
  },
];

// The harness (CodeBuild's way) ----------------------------------------------------------------------------

const HARNESS_VERSION = 'standin-version-1';

function newWorld(): World {
  const sandbox = createSandbox();
  const secret = join(sandbox.root, 'outside', 'credentials');
  mkdirSync(dirname(secret));
  writeFileSync(secret, SECRET);
  return { sandbox, secret };
}

function writeSource(dir: string, world: World, extra: Case['source'] = {}) {
  mkdirSync(join(dir, 'app', 'Hello'), { recursive: true });
  writeFileSync(join(dir, 'app', 'template.yaml'), TEMPLATE);
  writeFileSync(join(dir, 'app', 'Hello', 'app.js'), 'export const handler = async () => "hello";\n');
  for (const [path, content] of Object.entries(extra)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    if (content === 'LINK_TO_SECRET') symlinkSync(world.secret, join(dir, path));
    else writeFileSync(join(dir, path), content);
  }
}

async function viaHarness(c: Case): Promise<Verdict & { output: string; stored: boolean; calls: Call[] }> {
  const world = newWorld();
  const { sandbox } = world;
  let env: Record<string, string>;
  let scenario: Scenario = c.scenario?.(world) ?? {};
  if (c.job === 'build') {
    writeSource(sandbox.cwd, world, c.source);
    env = {
      ...buildJobEnvironment(fixtureDeployment(), fixtureTarget(), { outputBucket: 'crossdeploy-output' }),
      CODEBUILD_RESOLVED_SOURCE_VERSION: '0123456789abcdef0123456789abcdef01234567',
    };
  } else {
    const artifact = join(sandbox.root, 'artifact.zip');
    await makeZip(artifact, c.files ?? HELLO);
    const recorded = c.recorded?.(sha256(artifact), HARNESS_VERSION) ?? {
      versionId: HARNESS_VERSION,
      sha256: sha256(artifact),
    };
    const base = fixtureDeployment();
    const deployment = fixtureDeployment({ buildOutput: { ...base.buildOutput!, ...recorded } });
    env = deployJobEnvironment(deployment, fixtureTarget());
    scenario = { account: '222222222222', artifact, artifactVersionId: HARNESS_VERSION, ...scenario };
  }
  sandbox.setScenario(scenario);
  const result = await runBuildspec(sandbox, readBuildspec(c.job), env);
  return {
    status: result.code === 0 ? 'SUCCEEDED' : 'FAILED',
    code: result.exported.CROSSDEPLOY_FAILURE,
    samDeploys: samDeploys(result.calls).length,
    output: result.stdout + result.stderr,
    stored: result.calls.some((call) => call.argv[1] === 's3api' && call.argv[2] === 'put-object'),
    calls: result.calls,
  };
}

// The local job runner -------------------------------------------------------------------------------------

async function viaLocalRunner(c: Case): Promise<Verdict & { output: string; info: JobInfo; calls: Call[] }> {
  const world = newWorld();
  const scenario = c.scenario?.(world) ?? {};
  const { info, output, calls } = await runLocalJob({
    sandbox: world.sandbox,
    job: c.job,
    scenario: c.job === 'deploy' ? { account: '222222222222', ...scenario } : scenario,
    writeSource: (repo) => writeSource(repo, world, c.source),
    files: c.files ?? HELLO,
    ...(c.recorded ? { recorded: c.recorded } : {}),
  });
  return {
    status: info.status === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED',
    code: info.exportedVariables.CROSSDEPLOY_FAILURE,
    samDeploys: samDeploys(calls).length,
    output,
    info,
    calls,
  };
}

/** What the deployment records when the real job-events core receives this job's end. */
async function deploymentErrorCode(info: JobInfo): Promise<string | undefined> {
  const { store } = await createTestStore();
  const deploymentId = info.deploymentId!;
  await store.createDeployment(
    newDeployment({
      deploymentId,
      application: 'hello-world',
      environment: 'prod',
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt: '2026-11-28T09:00:00.000Z',
    }),
  );
  await store.updateDeployment(deploymentId, {
    status: 'RUNNING',
    phase: info.job === 'build' ? 'BUILDING' : 'DEPLOYING',
    jobs: { [info.job!]: { buildId: info.buildId, startedAt: 'x' } },
  });
  await store.putTaskToken(deploymentId, info.job!, 'token-1');
  let failure: { Error: string; Cause: string } | undefined;
  const tokens: TaskTokens = {
    succeed: async () => 'delivered',
    fail: async (_token, error, cause) => {
      failure = { Error: error, Cause: cause };
      return 'delivered';
    },
  };
  await deliverJobResult(info, { store, runner: {} as never, tokens, clock: { now: () => new Date() } });
  // Record Failure reads the Catch's $.error exactly like this.
  return failure ? describeWorkflowError(failure).code : undefined;
}

describe('local jobs fail exactly as the buildspecs fail under CodeBuild semantics', () => {
  it.each(CASES)('$name: $expected.status $expected.code, by both runners', async (c) => {
    const [harness, local] = await Promise.all([viaHarness(c), viaLocalRunner(c)]);
    const verdict = ({ status, code, samDeploys }: Verdict) => ({ status, code, samDeploys });
    expect(verdict(harness), harness.output).toEqual(c.expected);
    expect(verdict(local), local.output).toEqual(c.expected);
    if (c.expected.status === 'FAILED') {
      expect(await deploymentErrorCode(local.info)).toBe(c.expected.code);
    }
    if (c.expected.code === 'SOURCE_LINK_OUTSIDE_TREE') {
      // The refusal names the link, and the file behind it went nowhere: no build output was stored.
      for (const run of [harness, local]) {
        expect(run.output).toContain('Hello/credentials is a symbolic link to');
        expect(run.output).toContain('outside the source tree');
        expect(run.output).not.toContain('never-ship-this');
      }
      expect(local.info.exportedVariables.BUILD_OUTPUT_SHA256).toBeUndefined();
      expect(harness.stored).toBe(false);
    }
    if (c.beforeSamBuild) {
      for (const run of [harness, local])
        expect(run.calls.filter((call) => call.argv[0] === 'sam')).toEqual([]);
    }
  });
});
