/**
 * The credential_process helper the deploy buildspec writes, run the way the AWS CLI and SAM CLI run it:
 * directly, with the job's environment (including AWS_CONFIG_FILE pointing at the job's own config file).
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { deployJobEnvironment } from '#shared/jobs/job-env.ts';
import {
  createSandbox,
  fixtureDeployment,
  fixtureTarget,
  heredoc,
  jobEnvironment,
  readBuildspec,
  removeSandboxes,
  run,
  type Sandbox,
} from '#test/support/run-buildspec.ts';

const QUERY =
  '{Version: `1`, AccessKeyId: Credentials.AccessKeyId, SecretAccessKey: Credentials.SecretAccessKey, ' +
  'SessionToken: Credentials.SessionToken, Expiration: Credentials.Expiration}';

const helperText = heredoc(readBuildspec('deploy'), 'HELPER');

afterAll(removeSandboxes);

let sandbox: Sandbox;
let helper: string;
let jobConfig: string;

beforeEach(() => {
  sandbox = createSandbox();
  helper = join(sandbox.root, 'credential-helper');
  writeFileSync(helper, helperText);
  chmodSync(helper, 0o700);
  jobConfig = join(sandbox.cwd, 'aws-config');
  writeFileSync(jobConfig, `[profile target]\ncredential_process = "${helper}"\nregion = eu-west-1\n`);
});

/** The deploy job's environment as the CLI passes it on to credential_process. */
function helperEnv(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    ...deployJobEnvironment(fixtureDeployment(), fixtureTarget()),
    AWS_CONFIG_FILE: jobConfig,
    ...overrides,
  };
  return jobEnvironment(
    sandbox,
    Object.fromEntries(
      Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
    ),
  );
}

async function runHelper(overrides: Record<string, string | undefined> = {}) {
  const result = await run(helper, [], { cwd: sandbox.cwd, env: helperEnv(overrides) });
  return { ...result, calls: sandbox.calls() };
}

describe('the credential_process helper', () => {
  it('assumes the deploy role with the session name, SourceIdentity, ExternalId and the role-chaining limit', async () => {
    const env = deployJobEnvironment(fixtureDeployment(), fixtureTarget());
    const { code, calls } = await runHelper();
    expect(code).toBe(0);
    expect(calls.map((c) => c.argv)).toEqual([
      [
        'aws',
        'sts',
        'assume-role',
        '--role-arn=arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
        `--role-session-name=${env.ROLE_SESSION_NAME}`,
        `--source-identity=${env.SOURCE_IDENTITY}`,
        '--duration-seconds=3600',
        '--region=eu-west-1',
        `--query=${QUERY}`,
        '--output=json',
        '--external-id=crossdeploy-prod-7f3a',
      ],
    ]);
  });

  it.each([
    ['empty', ''],
    ['unset', undefined],
  ])('passes no ExternalId when EXTERNAL_ID is %s', async (_, value) => {
    const { code, calls } = await runHelper({ EXTERNAL_ID: value });
    expect(code).toBe(0);
    expect(calls[0]!.argv.some((arg) => arg.startsWith('--external-id'))).toBe(false);
  });

  it('prints version-1 credential JSON with an expiration, and nothing else', async () => {
    const { code, stdout, stderr } = await runHelper();
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      Version: 1,
      AccessKeyId: 'ASIASTANDINSTANDIN00',
      SecretAccessKey: 'standin-secret-access-key',
      SessionToken: 'standin-session-token',
      Expiration: '2030-01-01T00:00:00+00:00',
    });
    expect(stderr).not.toContain('standin-secret-access-key');
  });

  it("uses CodeBuild's container credentials: no config file, no credentials file, no profile", async () => {
    const { calls } = await runHelper({
      AWS_PROFILE: 'target',
      AWS_DEFAULT_PROFILE: 'target',
      AWS_SHARED_CREDENTIALS_FILE: join(sandbox.root, 'credentials'),
    });
    const seen = calls[0]!.env;
    expect(seen.AWS_CONFIG_FILE).toBe('/dev/null');
    expect(seen.AWS_SHARED_CREDENTIALS_FILE).toBe('/dev/null');
    expect(seen).not.toHaveProperty('AWS_PROFILE');
    expect(seen).not.toHaveProperty('AWS_DEFAULT_PROFILE');
  });

  it("uses the user's own config file and profile in local mode, saved before the override", async () => {
    const userCredentials = join(sandbox.root, 'home', '.aws', 'credentials');
    const { code, calls } = await runHelper({
      CROSSDEPLOY_SOURCE_AWS_CONFIG_FILE: join(sandbox.root, 'home', '.aws', 'config'),
      CROSSDEPLOY_SOURCE_AWS_PROFILE: 'dev-sso',
      AWS_SHARED_CREDENTIALS_FILE: userCredentials,
      AWS_PROFILE: 'target',
    });
    expect(code).toBe(0);
    const seen = calls[0]!.env;
    expect(seen.AWS_CONFIG_FILE).toBe(join(sandbox.root, 'home', '.aws', 'config'));
    expect(seen.AWS_PROFILE).toBe('dev-sso');
    expect(seen.AWS_SHARED_CREDENTIALS_FILE).toBe(userCredentials);
  });

  it("falls back to the CLI's defaults in local mode when the user had no config file or profile set", async () => {
    const { code, calls } = await runHelper({
      CROSSDEPLOY_SOURCE_AWS_CONFIG_FILE: '',
      CROSSDEPLOY_SOURCE_AWS_PROFILE: '',
      AWS_PROFILE: 'target',
    });
    expect(code).toBe(0);
    expect(calls[0]!.env).not.toHaveProperty('AWS_CONFIG_FILE');
    expect(calls[0]!.env).not.toHaveProperty('AWS_PROFILE');
  });

  it("refuses when the saved source config is the job's own config file", async () => {
    const { code, stdout, stderr, calls } = await runHelper({
      CROSSDEPLOY_SOURCE_AWS_CONFIG_FILE: jobConfig,
    });
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain('job config file');
    expect(calls).toEqual([]);
  });

  it('refuses to run inside itself', async () => {
    const { code, stdout, calls } = await runHelper({ CROSSDEPLOY_IN_CREDENTIAL_HELPER: '1' });
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(calls).toEqual([]);
  });

  it('calls STS in the job region when there is one, else the target region', async () => {
    await runHelper({ AWS_REGION: 'us-east-2' });
    await runHelper({ TARGET_REGION: 'ap-southeast-2' });
    const regions = sandbox.calls().map((c) => c.argv.find((arg) => arg.startsWith('--region=')));
    expect(regions).toEqual(['--region=us-east-2', '--region=ap-southeast-2']);
  });

  it('passes hostile values to STS unchanged and runs none of them', async () => {
    const marker = join(sandbox.root, 'pwned');
    const hostile = `x$(touch ${marker})\`touch ${marker}\`;touch ${marker} "q" 'a' b\nc`;
    const { calls } = await runHelper({
      ROLE_SESSION_NAME: hostile,
      SOURCE_IDENTITY: `s${hostile}`,
      EXTERNAL_ID: `-e${hostile}`,
    });
    expect(calls[0]!.argv).toEqual(
      expect.arrayContaining([
        `--role-session-name=${hostile}`,
        `--source-identity=s${hostile}`,
        `--external-id=-e${hostile}`,
      ]),
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('fails without printing anything when STS refuses', async () => {
    sandbox.setScenario({
      assumeRoleError: 'An error occurred (AccessDenied) when calling the AssumeRole operation',
    });
    const { code, stdout, stderr } = await runHelper();
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain('AccessDenied');
  });

  it('writes its own messages only to stderr and never traces', () => {
    for (const line of helperText.split('\n').filter((l) => /\becho\b|\bprintf\b/.test(l))) {
      expect(line).toMatch(/>&2\s*$/);
    }
    expect(helperText).not.toMatch(/^\s*set\s+(?:-[a-z]*x|-o\s+xtrace)|\bbash\s+-[a-z]*x/m);
    // The one line that reaches stdout is the AWS CLI's own, replacing the shell.
    expect(helperText).toMatch(/^exec aws "\$\{args\[@\]\}"$/m);
  });
});
