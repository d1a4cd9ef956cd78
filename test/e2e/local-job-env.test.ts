/**
 * What a local job's processes actually see: the real local job runner runs the real buildspecs, and the
 * stand-in `sam` and `aws` record their whole environment. Jobs get a HOME of their own inside the data
 * directory (kept with the job's workspace, like its checkout), instance metadata switched off, and never the
 * local API's token. Only the deploy job's credential helper gets the user's own HOME and metadata setting
 * back, because the user's credential chain (profile, SSO cache, instance profile) lives there.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeLocalJobRoots, runLocalJob } from '#test/support/local-job.ts';
import { type Call, createSandbox, removeSandboxes } from '#test/support/run-buildspec.ts';

afterAll(() => {
  removeSandboxes();
  removeLocalJobRoots();
});

const TOKEN = 'local-api-token-0123456789abcdef';
// The deploy job's template policy refuses a role without the boundary.
const TEMPLATE =
  'Resources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: Hello\n' +
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub, not a JS template
  '      PermissionsBoundary: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/crossdeploy/crossdeploy-boundary-${AWS::Region}\n';

function serverEnv(root: string) {
  const home = join(root, 'user-home');
  mkdirSync(home, { recursive: true });
  return { home, env: { HOME: home, CROSSDEPLOY_API_TOKEN: TOKEN, USER: 'alice' } };
}

const find = (calls: Call[], ...argv: string[]) => {
  const call = calls.find((c) => argv.every((word, i) => c.argv[i] === word));
  if (!call) throw new Error(`no call ${argv.join(' ')} in ${JSON.stringify(calls.map((c) => c.argv))}`);
  return call;
};

function expectNoToken(calls: Call[]) {
  expect(calls.length).toBeGreaterThan(0);
  for (const call of calls) {
    expect(call.environ).not.toHaveProperty('CROSSDEPLOY_API_TOKEN');
    expect(Object.values(call.environ).some((value) => value.includes(TOKEN))).toBe(false);
  }
}

describe('the environment of local jobs', () => {
  it('a build job runs with a fresh HOME inside the data directory, metadata off, and no API token', async () => {
    const sandbox = createSandbox();
    const { home, env } = serverEnv(sandbox.root);
    writeFileSync(join(home, '.npmrc'), '//registry.example.com/:_authToken=user-secret\n');
    const { info, calls, dataDir, workspace, output } = await runLocalJob({
      sandbox,
      job: 'build',
      scenario: {},
      serverEnv: env,
      writeSource: (repo) => {
        mkdirSync(join(repo, 'app', 'Hello'), { recursive: true });
        writeFileSync(join(repo, 'app', 'template.yaml'), TEMPLATE);
        writeFileSync(join(repo, 'app', 'Hello', 'app.js'), 'export const handler = async () => 1;\n');
      },
    });
    expect(info.status, output).toBe('SUCCEEDED');
    const seen = find(calls, 'sam', 'build').environ;
    expect(seen.HOME).toBe(join(workspace, 'home'));
    expect(relative(dataDir, seen.HOME!).startsWith('..')).toBe(false);
    expect(existsSync(join(seen.HOME!, '.npmrc'))).toBe(false);
    expect(seen.AWS_EC2_METADATA_DISABLED).toBe('true');
    expectNoToken(calls);
    // Kept with the workspace until the deployment's job runs again, like the checkout next to it.
    expect(statSync(seen.HOME!).isDirectory()).toBe(true);
  });

  it('a deploy job runs sam deploy with its own HOME and metadata off; only the credential helper gets the user’s back', async () => {
    const sandbox = createSandbox();
    const { home, env } = serverEnv(sandbox.root);
    const { info, calls, workspace, output } = await runLocalJob({
      sandbox,
      job: 'deploy',
      scenario: { account: '222222222222' },
      serverEnv: env,
      files: {
        'template.yaml': TEMPLATE,
        'Hello/app.js': 'export const handler = async () => 1;\n',
      },
    });
    expect(info.status, output).toBe('SUCCEEDED');
    const deploy = find(calls, 'sam', 'deploy').environ;
    expect(deploy.HOME).toBe(join(workspace, 'home'));
    expect(deploy.AWS_EC2_METADATA_DISABLED).toBe('true');
    const identity = find(calls, 'aws', 'sts', 'get-caller-identity').environ;
    expect(identity.HOME).toBe(join(workspace, 'home'));
    expect(identity.AWS_EC2_METADATA_DISABLED).toBe('true');
    // The helper assumes the deploy role from the user's own chain: their HOME, their metadata setting (unset).
    const assume = find(calls, 'aws', 'sts', 'assume-role').environ;
    expect(assume.HOME).toBe(home);
    expect(assume).not.toHaveProperty('AWS_EC2_METADATA_DISABLED');
    expectNoToken(calls);
  });
});
