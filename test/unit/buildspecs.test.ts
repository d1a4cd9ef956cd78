/**
 * Both buildspecs, run for real with bash (one process, phases in order, as CodeBuild does) against
 * stand-in `aws` and `sam` executables that log their argv. The environment is the job contract's, from
 * job-env.ts, with individual values replaced where a test needs it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILD_BUILDSPEC, DEPLOY_BUILDSPEC } from '#shared/jobs/buildspecs.ts';
import { buildJobEnvironment, deployJobEnvironment } from '#shared/jobs/job-env.ts';
import {
  type Call,
  createSandbox,
  fixtureDeployment,
  fixtureTarget,
  heredoc,
  jobEnvironment,
  makeZip,
  PHASES,
  parseBuildspec,
  readBuildspec,
  removeSandboxes,
  run,
  runBuildspec,
  type Sandbox,
  type Scenario,
  samParameterOverrides,
  type ZipEntry,
} from '#test/support/run-buildspec.ts';
import { MODULE_PATH, renderBuildspecsModule } from '../../scripts/buildspecs-derive.ts';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const commands = (calls: Call[], tool: string, ...command: string[]) =>
  calls.filter((c) => c.argv[0] === tool && command.every((word, i) => c.argv[i + 1] === word));

afterAll(removeSandboxes);

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const TEMPLATE = [
  'Transform: AWS::Serverless-2016-10-31',
  'Resources:',
  '  Hello:',
  '    Type: AWS::Serverless::Function',
  '    Properties:',
  '      CodeUri: Hello',
  '      Handler: app.handler',
  '      Runtime: nodejs24.x',
  // The template policy step (test/unit/template-policy-job.test.ts) refuses roles without the boundary.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub, not a JS template
  '      PermissionsBoundary: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/crossdeploy/crossdeploy-boundary-${AWS::Region}',
  '',
].join('\n');

describe('the buildspec texts', () => {
  it('are what functions/shared/jobs/buildspecs.ts sends (run `node scripts/buildspecs-derive.ts`)', () => {
    expect(readFileSync(MODULE_PATH, 'utf8')).toBe(renderBuildspecsModule());
    expect(BUILD_BUILDSPEC).toBe(readBuildspec('build'));
    expect(DEPLOY_BUILDSPEC).toBe(readBuildspec('deploy'));
  });

  it.each(['build', 'deploy'] as const)(
    '%s: version 0.2, bash, every phase aborts on failure, no tracing',
    (job) => {
      const text = readBuildspec(job);
      const spec = parseBuildspec(text);
      expect(spec.version).toBe(0.2);
      expect(spec.env?.shell).toBe('bash');
      for (const phase of PHASES) {
        if (spec.phases[phase]) expect(spec.phases[phase]['on-failure']).toBe('ABORT');
      }
      expect(text).not.toMatch(/^\s*set\s+(?:-[a-z]*x|-o\s+xtrace)|\bbash\s+-[a-z]*x/m);
    },
  );

  it('export what the contract says', () => {
    expect(parseBuildspec(readBuildspec('build')).env?.['exported-variables']).toEqual([
      'BUILD_OUTPUT_VERSION_ID',
      'BUILD_OUTPUT_SHA256',
      'RESOLVED_COMMIT',
      'BUILD_COMMIT_TIME',
      'CROSSDEPLOY_FAILURE',
    ]);
    expect(parseBuildspec(readBuildspec('deploy')).env?.['exported-variables']).toEqual([
      'CHANGE_SET_SUMMARY',
      'CHANGE_SET_ARN',
      'NO_CHANGES',
      'CROSSDEPLOY_FAILURE',
      'TEMPLATE_POLICY_REFUSED',
      'TEMPLATE_POLICY_EXCEPTIONS',
    ]);
  });

  it('read every variable job-env.ts hands them', () => {
    const build = buildJobEnvironment(fixtureDeployment(), fixtureTarget(), { outputBucket: 'b' });
    const deploy = deployJobEnvironment(fixtureDeployment(), fixtureTarget());
    for (const [text, env] of [
      [readBuildspec('build'), build],
      [readBuildspec('deploy'), deploy],
    ] as const) {
      for (const name of Object.keys(env)) expect(text).toMatch(new RegExp(`\\b${name}\\b`));
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Build

interface BuildCase {
  env?: Record<string, string>;
  scenario?: Scenario;
  template?: string;
  /** Make the checkout a git repository (local mode resolves the commit with git). */
  git?: boolean;
  local?: boolean;
}

async function runBuild(options: BuildCase = {}, sandbox: Sandbox = createSandbox()) {
  sandbox.setScenario(options.scenario ?? {});
  mkdirSync(join(sandbox.cwd, 'app'), { recursive: true });
  writeFileSync(join(sandbox.cwd, 'app', 'template.yaml'), options.template ?? TEMPLATE);
  if (options.git && !existsSync(join(sandbox.cwd, '.git'))) {
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: sandbox.cwd,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 't',
          GIT_AUTHOR_EMAIL: 't@t',
          GIT_COMMITTER_NAME: 't',
          GIT_COMMITTER_EMAIL: 't@t',
        },
      });
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'app');
  }
  const artifacts = join(sandbox.root, 'artifacts');
  const env = {
    ...buildJobEnvironment(fixtureDeployment(), fixtureTarget(), { outputBucket: 'crossdeploy-output' }),
    ...(options.local
      ? { CROSSDEPLOY_LOCAL_ARTIFACTS_DIR: artifacts }
      : { CODEBUILD_RESOLVED_SOURCE_VERSION: COMMIT }),
    ...options.env,
  };
  const result = await runBuildspec(sandbox, readBuildspec('build'), env);
  return { ...result, sandbox, artifacts };
}

const KEY = 'builds/hello-world/01JCROSSDEPLOY0000000000AB.zip';

describe('buildspecs/build.yml', () => {
  it('builds, stores the zip as a new object version and exports version, digest and commit', async () => {
    const { code, stderr, calls, exported, sandbox } = await runBuild();
    expect(code, stderr).toBe(0);
    const work = commands(calls, 'sam', 'build')[0]!.env.CROSSDEPLOY_WORK!;
    expect(calls.map((c) => c.argv)).toEqual([
      ['sam', 'build', '--template-file=app/template.yaml', '--build-dir=.aws-sam/build'],
      [
        'aws',
        's3api',
        'put-object',
        '--bucket=crossdeploy-output',
        `--key=${KEY}`,
        `--body=${work}/build-output.zip`,
        '--checksum-algorithm=SHA256',
        '--query=VersionId',
        '--output=text',
      ],
    ]);
    expect(exported).toEqual({
      BUILD_OUTPUT_VERSION_ID: 'standin-version-1',
      BUILD_OUTPUT_SHA256: sha256(join(sandbox.logs, 'put-object-body')),
      RESOLVED_COMMIT: COMMIT,
      // This checkout is no git repository: no commit time, and the build goes on without one.
      BUILD_COMMIT_TIME: '',
    });
  });

  it("zips deterministically: sorted entries, fixed times and modes, whatever the files' modification times", async () => {
    const first = await runBuild({ scenario: { samBuildMtime: 1_000_000_000 } });
    const second = await runBuild({ scenario: { samBuildMtime: 1_700_000_000 } });
    expect(first.exported.BUILD_OUTPUT_SHA256).toMatch(/^[0-9a-f]{64}$/);
    expect(second.exported.BUILD_OUTPUT_SHA256).toBe(first.exported.BUILD_OUTPUT_SHA256);
    const listing = execFileSync(
      'python3',
      [
        '-c',
        'import json, sys, zipfile; print(json.dumps([[i.filename, list(i.date_time), i.external_attr >> 16] for i in zipfile.ZipFile(sys.argv[1]).infolist()]))',
        join(first.sandbox.logs, 'put-object-body'),
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(listing)).toEqual([
      ['Hello/', [1980, 1, 1, 0, 0, 0], 0o40755],
      ['Hello/app.js', [1980, 1, 1, 0, 0, 0], 0o100644],
      ['template.yaml', [1980, 1, 1, 0, 0, 0], 0o100644],
    ]);
  });

  it('stores a local build content-addressed in the artifacts directory, with the commit from git', async () => {
    const { code, stderr, calls, exported, artifacts, sandbox } = await runBuild({ local: true, git: true });
    expect(code, stderr).toBe(0);
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: sandbox.cwd, encoding: 'utf8' }).trim();
    const stored = join(artifacts, KEY);
    const committed = execFileSync('git', ['log', '-1', '--format=%cI', 'HEAD'], {
      cwd: sandbox.cwd,
      encoding: 'utf8',
    }).trim();
    expect(exported).toEqual({
      BUILD_OUTPUT_VERSION_ID: sha256(stored),
      BUILD_OUTPUT_SHA256: sha256(stored),
      RESOLVED_COMMIT: head,
      BUILD_COMMIT_TIME: committed,
    });
    expect(exported.BUILD_COMMIT_TIME).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$/);
    expect(commands(calls, 'aws')).toEqual([]);
  });

  it('keeps a stored local build output: the same content again is fine, different content is refused', async () => {
    const sandbox = createSandbox();
    expect((await runBuild({ local: true, git: true }, sandbox)).code).toBe(0);
    expect((await runBuild({ local: true, git: true }, sandbox)).code).toBe(0);
    const changed = await runBuild(
      { local: true, git: true, scenario: { samBuildFiles: { 'template.yaml': 'Resources: {}\n' } } },
      sandbox,
    );
    expect(changed.code).not.toBe(0);
    expect(changed.stderr).toContain('already holds a different build output');
  });

  it('stores a link that stays inside the source tree as the file it points to (the deploy job refuses links)', async () => {
    const { code, stderr, sandbox } = await runBuild({
      scenario: { samBuildLinks: { 'Hello/alias.js': 'app.js' } },
    });
    expect(code, stderr).toBe(0);
    const listing = execFileSync(
      'python3',
      [
        '-c',
        'import json, sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(json.dumps([[i.filename, i.external_attr >> 16, z.read(i).decode()] for i in z.infolist() if i.filename.startswith("Hello/")]))',
        join(sandbox.logs, 'put-object-body'),
      ],
      { encoding: 'utf8' },
    );
    const app = 'export const handler = async () => "hello";\n';
    expect(JSON.parse(listing)).toEqual([
      ['Hello/', 0o40755, ''],
      ['Hello/alias.js', 0o100644, app],
      ['Hello/app.js', 0o100644, app],
    ]);
  });

  it('refuses a link that sam build left pointing outside the source tree, naming it, and stores nothing', async () => {
    const sandbox = createSandbox();
    const secret = join(sandbox.root, 'credentials');
    writeFileSync(secret, 'aws_secret_access_key = never-ship-this\n');
    const { code, stderr, calls, exported } = await runBuild(
      { scenario: { samBuildLinks: { 'Hello/credentials': secret } } },
      sandbox,
    );
    expect(code).not.toBe(0);
    expect(stderr).toContain(`Hello/credentials is a symbolic link to ${secret}, outside the source tree`);
    expect(commands(calls, 'aws')).toEqual([]);
    expect(exported.CROSSDEPLOY_FAILURE).toBe('SOURCE_LINK_OUTSIDE_TREE');
  });

  it('refuses a template with PackageType: Image before building', async () => {
    const template = TEMPLATE.replace('      Handler: app.handler', '      PackageType: Image');
    const { code, stderr, calls } = await runBuild({ template });
    expect(code).not.toBe(0);
    expect(stderr).toContain('PackageType: Image');
    expect(stderr).toContain('Image support is later work');
    expect(calls).toEqual([]);
  });

  it('refuses a bucket without versioning', async () => {
    const { code, stderr, exported } = await runBuild({ scenario: { versionId: null } });
    expect(code).not.toBe(0);
    expect(stderr).toContain('versioning');
    expect(exported).not.toHaveProperty('BUILD_OUTPUT_VERSION_ID');
  });

  it('refuses when the checked-out commit is not the commit asked for', async () => {
    const { code, stderr, calls } = await runBuild({ env: { SOURCE_REF: 'f'.repeat(40) } });
    expect(code).not.toBe(0);
    expect(stderr).toContain(`but ${COMMIT} is checked out`);
    expect(calls).toEqual([]);
  });

  it('refuses a template path that leaves the checkout', async () => {
    const { code, calls } = await runBuild({ env: { TEMPLATE_PATH: '../other/template.yaml' } });
    expect(code).not.toBe(0);
    expect(calls).toEqual([]);
  });

  it('refuses to run as another job', async () => {
    const { code, stderr } = await runBuild({ env: { CROSSDEPLOY_JOB: 'deploy' } });
    expect(code).not.toBe(0);
    expect(stderr).toContain('CROSSDEPLOY_JOB');
  });

  it('runs nothing from a hostile ref', async () => {
    const sandbox = createSandbox();
    const marker = join(sandbox.root, 'pwned');
    const { code } = await runBuild(
      { env: { SOURCE_REF: `main$(touch ${marker})\`touch ${marker}\`;touch ${marker}` } },
      sandbox,
    );
    expect(code).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Deploy

const HELLO: Record<string, ZipEntry> = {
  'template.yaml': TEMPLATE,
  'Hello/app.js': 'export const handler = async () => "hello";\n',
};

interface DeployCase {
  files?: Record<string, ZipEntry>;
  env?: Record<string, string>;
  scenario?: Scenario;
  dryRun?: boolean;
  local?: boolean;
}

async function runDeploy(options: DeployCase = {}, sandbox: Sandbox = createSandbox()) {
  const artifact = join(sandbox.root, 'artifact.zip');
  await makeZip(artifact, options.files ?? HELLO);
  const base = fixtureDeployment({ dryRun: options.dryRun ?? false });
  const digest = sha256(artifact);
  const deployment = fixtureDeployment({
    dryRun: options.dryRun ?? false,
    buildOutput: { ...base.buildOutput!, sha256: digest, ...(options.local ? { versionId: digest } : {}) },
  });
  const env: Record<string, string> = { ...deployJobEnvironment(deployment, fixtureTarget()) };
  if (options.local) {
    const stored = join(sandbox.root, 'artifacts', env.OUTPUT_KEY!);
    mkdirSync(dirname(stored), { recursive: true });
    writeFileSync(stored, readFileSync(artifact));
    env.CROSSDEPLOY_LOCAL_ARTIFACTS_DIR = join(sandbox.root, 'artifacts');
  }
  sandbox.setScenario({ account: '222222222222', artifact, ...options.scenario });
  const result = await runBuildspec(sandbox, readBuildspec('deploy'), { ...env, ...options.env });
  const deploys = commands(result.calls, 'sam', 'deploy');
  const work = deploys[0]?.env.CROSSDEPLOY_WORK ?? result.calls[0]?.env.CROSSDEPLOY_WORK ?? '';
  return { ...result, env, work, deploys, sandbox };
}

/** The argv words after `--parameter-overrides`, up to the next option. */
function overrideWords(argv: string[]): string[] {
  const start = argv.indexOf('--parameter-overrides');
  if (start === -1) return [];
  const end = argv.findIndex((arg, i) => i > start && arg.startsWith('--'));
  return argv.slice(start + 1, end);
}

const CHANGE_SET_ARN =
  'arn:aws:cloudformation:eu-west-1:222222222222:changeSet/samcli-deploy1764324000/0c8e7f2a-1111-2222-3333-444455556666';

describe('buildspecs/deploy.yml', () => {
  it('verifies the exact object version, checks the account, then passes every sam deploy option explicitly', async () => {
    const { code, stderr, calls, work, exported } = await runDeploy();
    expect(code, stderr).toBe(0);
    expect(commands(calls, 'aws', 's3api', 'get-object').map((c) => c.argv)).toEqual([
      [
        'aws',
        's3api',
        'get-object',
        '--bucket=crossdeploy-output',
        '--key=builds/hello-world/01JCROSSDEPLOY0000000000AA.zip',
        '--version-id=v3.xyz_Version-Id',
        `${work}/build-output.zip`,
      ],
    ]);
    const order = calls.map((c) => c.argv.slice(0, 3).join(' '));
    expect(order.indexOf('aws sts get-caller-identity')).toBeLessThan(
      order.findIndex((c) => c.startsWith('sam deploy')),
    );
    expect(commands(calls, 'aws', 'sts', 'get-caller-identity')[0]!.argv).toEqual([
      'aws',
      'sts',
      'get-caller-identity',
      '--profile',
      'target',
      '--query',
      'Account',
      '--output',
      'text',
    ]);
    expect(commands(calls, 'sam', 'deploy').map((c) => c.argv)).toEqual([
      [
        'sam',
        'deploy',
        `--template-file=${work}/output/template.yaml`,
        `--config-file=${work}/crossdeploy-samconfig.toml`,
        '--profile',
        'target',
        '--stack-name=hello-world-prod',
        '--region=eu-west-1',
        '--s3-bucket=crossdeploy-artifacts-222222222222-eu-west-1',
        '--s3-prefix=hello-world-prod',
        '--role-arn=arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec',
        '--capabilities',
        'CAPABILITY_IAM',
        'CAPABILITY_AUTO_EXPAND',
        '--parameter-overrides',
        'LogLevel="info"',
        'Stage="prod"',
        '--no-confirm-changeset',
        '--no-fail-on-empty-changeset',
      ],
    ]);
    expect(readFileSync(join(work, 'crossdeploy-samconfig.toml'), 'utf8')).toBe('version = 0.1\n');
    expect(exported).toEqual({ CHANGE_SET_SUMMARY: '', CHANGE_SET_ARN: '', NO_CHANGES: 'false' });
  });

  it('succeeds a real deploy that finds nothing to change, and exports that it changed nothing', async () => {
    const { code, stderr, stdout, calls, exported } = await runDeploy({
      scenario: {
        samDeployOutput:
          '\n\tDeploying with following values\n\t===============================\n' +
          '\nInitiating deployment\n=====================\n\nWaiting for changeset to be created..\n\n' +
          'No changes to deploy. Stack hello-world-prod is up to date\n',
      },
    });
    expect(code, stderr).toBe(0);
    expect(commands(calls, 'sam', 'deploy')[0]!.argv).not.toContain('--no-execute-changeset');
    // A real deploy describes no change set: there is none.
    expect(commands(calls, 'aws', 'cloudformation')).toEqual([]);
    expect(exported).toEqual({
      NO_CHANGES: 'true',
      CHANGE_SET_ARN: '',
      CHANGE_SET_SUMMARY: 'no changes: stack hello-world-prod is up to date',
    });
    expect(stdout).toContain('crossdeploy: no changes: stack hello-world-prod is up to date');
  });

  it("does not read another stack's up-to-date line as no changes", async () => {
    const { code, exported } = await runDeploy({
      scenario: {
        samDeployOutput:
          'No changes to deploy. Stack hello-world-staging is up to date\n' +
          'Successfully created/updated stack - hello-world-prod in eu-west-1\n',
      },
    });
    expect(code).toBe(0);
    expect(exported).toEqual({ CHANGE_SET_SUMMARY: '', CHANGE_SET_ARN: '', NO_CHANGES: 'false' });
  });

  it('gives sam and the CLI the job config, and the helper its own source credentials', async () => {
    const { code, calls, work } = await runDeploy();
    expect(code).toBe(0);
    expect(readFileSync(join(work, 'aws-config'), 'utf8')).toBe(
      `[profile target]\ncredential_process = "${work}/credential-helper"\nregion = eu-west-1\n`,
    );
    expect(commands(calls, 'sam', 'deploy')[0]!.env.AWS_CONFIG_FILE).toBe(`${work}/aws-config`);
    const assumes = commands(calls, 'aws', 'sts', 'assume-role');
    expect(assumes.length).toBeGreaterThanOrEqual(2); // once for the account check, once for sam deploy
    for (const call of assumes) {
      expect(call.env.AWS_CONFIG_FILE).toBe('/dev/null');
      expect(call.env.AWS_SHARED_CREDENTIALS_FILE).toBe('/dev/null');
      expect(call.env).not.toHaveProperty('AWS_PROFILE');
    }
  });

  it('previews a dry run: --no-execute-changeset, and exports a summary of the change set', async () => {
    const { code, stderr, calls, exported } = await runDeploy({
      dryRun: true,
      scenario: {
        samDeployOutput: `Changeset created successfully. ${CHANGE_SET_ARN}\n`,
        changeSet: {
          Status: 'CREATE_COMPLETE',
          Changes: [
            {
              Type: 'Resource',
              ResourceChange: {
                Action: 'Add',
                LogicalResourceId: 'Hello',
                ResourceType: 'AWS::Lambda::Function',
              },
            },
            {
              Type: 'Resource',
              ResourceChange: {
                Action: 'Modify',
                LogicalResourceId: 'Api',
                ResourceType: 'AWS::ApiGateway::RestApi',
                Replacement: 'True',
              },
            },
          ],
        },
      },
    });
    expect(code, stderr).toBe(0);
    const argv = commands(calls, 'sam', 'deploy')[0]!.argv;
    expect(argv.slice(-3)).toEqual([
      '--no-confirm-changeset',
      '--no-fail-on-empty-changeset',
      '--no-execute-changeset',
    ]);
    expect(commands(calls, 'aws', 'cloudformation', 'describe-change-set')[0]!.argv).toEqual([
      'aws',
      'cloudformation',
      'describe-change-set',
      '--profile',
      'target',
      '--region=eu-west-1',
      `--change-set-name=${CHANGE_SET_ARN}`,
      '--output=json',
    ]);
    expect(exported.CHANGE_SET_SUMMARY).toBe(
      `2 change(s) (Add 1, Modify 1) in ${CHANGE_SET_ARN}; Add Hello (AWS::Lambda::Function); ` +
        'Modify Api (AWS::ApiGateway::RestApi), replacement True',
    );
  });

  it('in a reviewed environment (CHANGE_SET_ONLY) creates the change set without executing it and exports its ARN', async () => {
    const { code, stderr, calls, exported } = await runDeploy({
      env: { CHANGE_SET_ONLY: 'true' },
      scenario: { samDeployOutput: `Changeset created successfully. ${CHANGE_SET_ARN}\n` },
    });
    expect(code, stderr).toBe(0);
    expect(commands(calls, 'sam', 'deploy')[0]!.argv.slice(-3)).toEqual([
      '--no-confirm-changeset',
      '--no-fail-on-empty-changeset',
      '--no-execute-changeset',
    ]);
    expect(exported).toMatchObject({ CHANGE_SET_ARN, NO_CHANGES: 'false' });
  });

  it('in a reviewed environment exports no ARN when nothing changed', async () => {
    const { code, exported } = await runDeploy({
      env: { CHANGE_SET_ONLY: 'true' },
      scenario: { samDeployOutput: 'No changes to deploy. Stack hello-world-prod is up to date\n' },
    });
    expect(code).toBe(0);
    expect(exported).toMatchObject({ CHANGE_SET_ARN: '', NO_CHANGES: 'true' });
  });

  it.each(['yes', 'true; touch pwned'])('refuses CHANGE_SET_ONLY=%j (only true or false)', async (value) => {
    const { code, stderr, calls } = await runDeploy({ env: { CHANGE_SET_ONLY: value } });
    expect(code).not.toBe(0);
    expect(stderr).toContain('CHANGE_SET_ONLY must be true or false');
    expect(commands(calls, 'sam', 'deploy')).toEqual([]);
  });

  it('still succeeds a dry run whose change set cannot be described', async () => {
    const { code, exported } = await runDeploy({
      dryRun: true,
      scenario: { samDeployOutput: `Changeset created successfully. ${CHANGE_SET_ARN}\n` },
    });
    expect(code).toBe(0);
    expect(exported.CHANGE_SET_SUMMARY).toBe(`change set ${CHANGE_SET_ARN} (no summary)`);
  });

  it('reports a dry run without changes', async () => {
    const { code, exported } = await runDeploy({
      dryRun: true,
      scenario: { samDeployOutput: 'No changes to deploy. Stack hello-world-prod is up to date\n' },
    });
    expect(code).toBe(0);
    expect(exported).toEqual({
      CHANGE_SET_SUMMARY: 'no changes: no change set was created',
      CHANGE_SET_ARN: '',
      NO_CHANGES: 'true',
    });
  });

  it('says so when the sam deploy output names no change set', async () => {
    const { code, exported } = await runDeploy({
      dryRun: true,
      scenario: { samDeployOutput: 'something else\n' },
    });
    expect(code).toBe(0);
    expect(exported.CHANGE_SET_SUMMARY).toBe('no change set ARN in the sam deploy output');
  });

  it('fails when sam deploy fails', async () => {
    const { code } = await runDeploy({
      scenario: { samDeployExit: 1, samDeployOutput: 'Error: Failed to create changeset' },
    });
    expect(code).not.toBe(0);
  });

  it('passes hostile values through as argv, unchanged, and runs none of them', async () => {
    const sandbox = createSandbox();
    const marker = join(sandbox.root, 'pwned');
    const hostile = `x$(touch ${marker})\`touch ${marker}\`;touch ${marker} "double" 'single' two  spaces\nnext line`;
    const overrides = { Stage: hostile, Quote: '"', Empty: '', Equals: 'a=b c=d' };
    const { code, stderr, deploys } = await runDeploy(
      { env: { STACK_NAME: hostile, PARAMETER_OVERRIDES_JSON: JSON.stringify(overrides) } },
      sandbox,
    );
    expect(code, stderr).toBe(0);
    const argv = deploys[0]!.argv;
    expect(argv).toContain(`--stack-name=${hostile}`);
    expect(argv).toContain(`--s3-prefix=${hostile}`);
    // SAM CLI re-reads each word; what it reads back is exactly the registry's value.
    expect(samParameterOverrides(overrideWords(argv))).toEqual(overrides);
    expect(existsSync(marker)).toBe(false);
  });

  it.each([
    ['a backslash', 'C:\\path'],
    ['a ParameterKey= inside a value', 'x ParameterKey=Other,ParameterValue=1'],
  ])('refuses a parameter value with %s, which SAM CLI would read differently', async (_, value) => {
    const { code, deploys } = await runDeploy({
      env: { PARAMETER_OVERRIDES_JSON: JSON.stringify({ Stage: value }) },
    });
    expect(code).not.toBe(0);
    expect(deploys).toEqual([]);
  });

  it.each([
    ['a shell metacharacter', 'CAPABILITY_IAM; touch pwned'],
    ['a newline', 'CAPABILITY_IAM\nCAPABILITY_NAMED_IAM'],
    ['a name that is not a capability', 'CAPABILITY_IAM NOT_A_CAPABILITY'],
  ])('refuses capabilities with %s', async (_, capabilities) => {
    const { code, deploys } = await runDeploy({ env: { CAPABILITIES: capabilities } });
    expect(code).not.toBe(0);
    expect(deploys).toEqual([]);
  });

  it('passes no --capabilities and no --parameter-overrides when the registry has none', async () => {
    const { code, deploys } = await runDeploy({ env: { CAPABILITIES: '', PARAMETER_OVERRIDES_JSON: '{}' } });
    expect(code).toBe(0);
    expect(deploys[0]!.argv).not.toContain('--capabilities');
    expect(deploys[0]!.argv).not.toContain('--parameter-overrides');
  });

  it('refuses a build output whose digest is not the recorded one, before unpacking it', async () => {
    const { code, stderr, calls, work } = await runDeploy({ env: { OUTPUT_SHA256: 'f'.repeat(64) } });
    expect(code).not.toBe(0);
    expect(stderr).toContain(`the build recorded ${'f'.repeat(64)}`);
    expect(existsSync(join(work, 'output'))).toBe(false);
    expect(commands(calls, 'sam')).toEqual([]);
    expect(commands(calls, 'aws', 'sts')).toEqual([]);
  });

  it('refuses to deploy when the target profile reports another account', async () => {
    const { code, stderr, calls } = await runDeploy({ scenario: { account: '123456789012' } });
    expect(code).not.toBe(0);
    expect(stderr).toContain("is in account 123456789012, the environment's account is 222222222222");
    expect(commands(calls, 'aws', 'sts', 'get-caller-identity')).toHaveLength(1);
    expect(commands(calls, 'sam')).toEqual([]);
  });

  it('stops before sam deploy when the deploy role cannot be assumed', async () => {
    const { code, stderr, calls } = await runDeploy({ scenario: { assumeRoleError: 'AccessDenied' } });
    expect(code).not.toBe(0);
    expect(stderr).toContain('AccessDenied');
    expect(commands(calls, 'sam')).toEqual([]);
  });

  it.each([
    ['samconfig.toml', { ...HELLO, 'samconfig.toml': 'version = 0.1\n' }],
    [
      'CodeUri: ../../etc',
      { ...HELLO, 'template.yaml': TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ../../etc') },
    ],
    [
      'CodeUri: /abs',
      { ...HELLO, 'template.yaml': TEMPLATE.replace('CodeUri: Hello', 'CodeUri: /root/.aws') },
    ],
    ['a symbolic link', { ...HELLO, 'Hello/creds': { symlink: '/root/.aws/credentials' } }],
  ])('refuses a build output with %s before any credentials are used', async (_, files) => {
    const { code, stderr, calls } = await runDeploy({ files });
    expect(code).not.toBe(0);
    expect(stderr).toContain('refusing the build output');
    expect(commands(calls, 'sam')).toEqual([]);
    expect(commands(calls, 'aws', 'sts')).toEqual([]);
  });

  it('accepts paths inside the output, S3 URLs, intrinsics and inline AppSync code that starts with a slash', async () => {
    const { code, stderr } = await runDeploy({
      files: {
        ...HELLO,
        'template.yaml': `${TEMPLATE}${ACCEPTABLE}`,
        'nested/template.yaml': TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ./'),
      },
    });
    expect(code, stderr).toBe(0);
  });

  it('deploys a local build output from the artifacts directory, whose version id is its digest', async () => {
    const { code, stderr, calls } = await runDeploy({ local: true });
    expect(code, stderr).toBe(0);
    expect(commands(calls, 'aws', 's3api')).toEqual([]);
    expect(commands(calls, 'sam', 'deploy')).toHaveLength(1);
  });

  it('refuses a local build output whose version id is not its digest', async () => {
    const { code, stderr, calls } = await runDeploy({ local: true, env: { OUTPUT_VERSION_ID: 'v1' } });
    expect(code).not.toBe(0);
    expect(stderr).toContain('version id must equal its SHA-256');
    expect(commands(calls, 'sam')).toEqual([]);
  });

  it("uses the user's saved credential chain in local mode", async () => {
    const config = '/home/someone/.aws/config';
    const { code, calls } = await runDeploy({
      local: true,
      env: { CROSSDEPLOY_SOURCE_AWS_CONFIG_FILE: config, CROSSDEPLOY_SOURCE_AWS_PROFILE: 'dev' },
    });
    expect(code).toBe(0);
    for (const call of commands(calls, 'aws', 'sts', 'assume-role')) {
      expect(call.env.AWS_CONFIG_FILE).toBe(config);
      expect(call.env.AWS_PROFILE).toBe('dev');
    }
  });

  it('refuses to run as another job', async () => {
    const { code, stderr } = await runDeploy({ env: { CROSSDEPLOY_JOB: 'build' } });
    expect(code).not.toBe(0);
    expect(stderr).toContain('CROSSDEPLOY_JOB');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The deploy job's tool on its own (the same text the buildspec writes), for the many shapes of a bad output.

const ACCEPTABLE = `  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: s3://bucket/layer.zip
  Nested:
    Type: AWS::Serverless::Application
    Properties:
      Location: nested/template.yaml
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      PermissionsBoundary: !Sub arn:\${AWS::Partition}:iam::\${AWS::AccountId}:policy/crossdeploy/crossdeploy-boundary-\${AWS::Region}
      DefinitionUri: !Sub 's3://\${AWS::AccountId}-bucket/sm.json'
  Resolver:
    Type: AWS::AppSync::Resolver
    Properties:
      Code: "/* inline */ export function request() {}"
`;

const TOOL = heredoc(readBuildspec('deploy'), 'PYTHON');

async function tool(sandbox: Sandbox, ...args: string[]) {
  const path = join(sandbox.root, 'crossdeploy-tool.py');
  if (!existsSync(path)) writeFileSync(path, TOOL);
  return run('python3', [path, ...args], { cwd: sandbox.cwd, env: jobEnvironment(sandbox, {}) });
}

async function checkOutput(files: Record<string, string>) {
  const sandbox = createSandbox();
  const output = join(sandbox.root, 'output');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(output, name)), { recursive: true });
    writeFileSync(join(output, name), content);
  }
  return tool(sandbox, 'check-output', output);
}

describe("the deploy job's build-output check", () => {
  const withTemplate = (template: string, extra: Record<string, string> = {}) => ({
    'Hello/app.js': '',
    'template.yaml': template,
    ...extra,
  });

  it.each([
    ['a samconfig.toml', { ...withTemplate(TEMPLATE), 'samconfig.toml': '' }],
    [
      'a samconfig.yaml deep inside',
      { ...withTemplate(TEMPLATE), 'Hello/node_modules/x/samconfig.yaml': '' },
    ],
    ['a samconfig.yml', { ...withTemplate(TEMPLATE), 'Hello/samconfig.yml': '' }],
    ['a SAMCONFIG.TOML', { ...withTemplate(TEMPLATE), 'Hello/SAMCONFIG.TOML': '' }],
    ['no template.yaml', { 'Hello/app.js': '' }],
    ['CodeUri: ../../etc', withTemplate(TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ../../etc'))],
    ['CodeUri: /abs', withTemplate(TEMPLATE.replace('CodeUri: Hello', 'CodeUri: /root/.aws'))],
    [
      'a quoted CodeUri with .. inside',
      withTemplate(TEMPLATE.replace('CodeUri: Hello', 'CodeUri: "Hello/../../.."')),
    ],
    ['a backslash path', withTemplate(TEMPLATE.replace('CodeUri: Hello', 'CodeUri: Hello\\..\\..'))],
    ['a home-relative path', withTemplate(TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ~/.aws'))],
    [
      'a flow-style mapping',
      withTemplate(TEMPLATE.replace('CodeUri: Hello', 'CodeUri: Hello\n      X: {CodeUri: /etc}')),
    ],
    ['a Globals CodeUri', withTemplate(`Globals:\n  Function:\n    CodeUri: ../..\n${TEMPLATE}`)],
    [
      'ContentUri',
      withTemplate(
        `${TEMPLATE}  L:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n      ContentUri: /opt\n`,
      ),
    ],
    [
      'DefinitionUri',
      withTemplate(
        `${TEMPLATE}  A:\n    Type: AWS::Serverless::Api\n    Properties:\n      DefinitionUri: ../api.yaml\n`,
      ),
    ],
    [
      'an AWS::Include Location',
      withTemplate(
        `${TEMPLATE}  A:\n    Type: AWS::Serverless::Api\n    Properties:\n      DefinitionBody:\n        Fn::Transform:\n` +
          '          Name: AWS::Include\n          Parameters:\n            Location: ../../secret.yaml\n',
      ),
    ],
    [
      "a Lambda function's Code",
      withTemplate(`${TEMPLATE}  R:\n    Type: AWS::Lambda::Function\n    Properties:\n      Code: /etc\n`),
    ],
    [
      'ServerlessRepo metadata',
      withTemplate(
        `Metadata:\n  AWS::ServerlessRepo::Application:\n    ReadmeUrl: ../../README.md\n${TEMPLATE}`,
      ),
    ],
    [
      'a path in a JSON template',
      withTemplate(
        JSON.stringify({
          Resources: { Hello: { Type: 'AWS::Serverless::Function', Properties: { CodeUri: '/etc' } } },
        }),
      ),
    ],
    [
      'a path behind a YAML alias',
      withTemplate(`X: &bad /etc\n${TEMPLATE.replace('CodeUri: Hello', 'CodeUri: *bad')}`),
    ],
    ['a path behind a YAML merge key', withTemplate(`X: &bad {CodeUri: /etc}\nY:\n  <<: *bad\n${TEMPLATE}`)],
    [
      'a path in a local nested template',
      withTemplate(
        `${TEMPLATE}  N:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: nested/template.yaml\n`,
        { 'nested/template.yaml': TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ../../..') },
      ),
    ],
    ['PackageType Image', withTemplate(TEMPLATE.replace('Handler: app.handler', 'PackageType: Image'))],
    ['a template that is not YAML', withTemplate('Resources: [unclosed\n')],
    ['a template that is not a mapping', withTemplate('- a list\n')],
  ])('refuses %s', async (_, files) => {
    const { code, stderr } = await checkOutput(files);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^crossdeploy: refusing the build output: /);
  });

  it('accepts paths inside the output, S3 URLs, intrinsics and inline code that starts with a slash', async () => {
    const { code, stderr } = await checkOutput(
      withTemplate(`${TEMPLATE}${ACCEPTABLE}`, {
        'nested/template.yaml': TEMPLATE.replace('CodeUri: Hello', 'CodeUri: ./'),
      }),
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it.each<[string, Record<string, ZipEntry>]>([
    ['a symbolic link', { 'template.yaml': TEMPLATE, 'Hello/creds': { symlink: '/root/.aws/credentials' } }],
    ['an entry that leaves the directory', { 'template.yaml': TEMPLATE, '../evil.sh': 'echo' }],
    ['an absolute entry', { 'template.yaml': TEMPLATE, '/tmp/evil.sh': 'echo' }],
  ])('refuses to unpack an archive with %s', async (_, entries) => {
    const sandbox = createSandbox();
    const archive = join(sandbox.root, 'a.zip');
    await makeZip(archive, entries);
    const { code, stderr } = await tool(sandbox, 'unzip', archive, join(sandbox.root, 'output'));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^crossdeploy: refusing the build output: /);
    expect(existsSync(join(sandbox.root, 'evil.sh'))).toBe(false);
    expect(existsSync('/tmp/evil.sh')).toBe(false);
  });

  it('unpacks files with their executable bit and nothing else', async () => {
    const sandbox = createSandbox();
    const archive = join(sandbox.root, 'a.zip');
    await makeZip(archive, {
      'template.yaml': TEMPLATE,
      'bin/run': { mode: 0o104755, content: '#!/bin/sh\n' },
    });
    const output = join(sandbox.root, 'output');
    expect((await tool(sandbox, 'unzip', archive, output)).code).toBe(0);
    expect(statSync(join(output, 'bin', 'run')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(output, 'template.yaml')).mode & 0o7777).toBe(0o644);
  });
});
