import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCli } from '#local/cli/args.ts';
import { renderDoctorReport, runLocalDoctor } from '#local/cli/doctor.ts';
import { painter } from '#local/cli/format.ts';
import { type CliIo, main } from '#local/cli.ts';
import type { DoctorProbe, DoctorReport } from '../../functions/doctor/ports.ts';

/** `crossdeploy doctor`: through the API (the default) and with --local. */

function capture() {
  const stream = {
    text: '',
    isTTY: false,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
  };
  return stream;
}

async function runCli(argv: string[], overrides: Partial<CliIo> = {}) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, {
    stdout,
    stderr,
    env: {},
    fetch: async () => {
      throw new Error('fetch must not be called');
    },
    sleep: async () => {},
    onInterrupt: () => () => {},
    ...overrides,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const DEPLOY_ROLE = 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy';

const report = (change: Partial<DoctorReport> = {}): DoctorReport => ({
  runId: '01J0RUN',
  application: 'hello-world',
  environment: 'prod',
  mode: 'api',
  status: 'failed',
  startedAt: '2025-06-01T10:00:00.000Z',
  updatedAt: '2025-06-01T10:00:01.000Z',
  finishedAt: '2025-06-01T10:00:01.000Z',
  checks: [
    { id: 'registry', title: 'Registry entry is consistent', status: 'passed', detail: 'ok' },
    {
      id: 'assume-role',
      title: 'AssumeRole as the deploy job does it',
      status: 'failed',
      detail: 'STS refused',
      fix: 'Deploy target-account/template.yaml',
      account: { kind: 'target', accountId: '222222222222' },
      statements: [
        {
          policy: 'trust',
          role: DEPLOY_ROLE,
          statement: {
            Effect: 'Allow',
            Condition: {
              ArnEquals: {
                'aws:PrincipalArn': 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer',
              },
            },
          },
        },
      ],
      candidates: [
        {
          cause: 'trust-policy',
          likelihood: 'likely',
          account: { kind: 'target', accountId: '222222222222' },
          summary: 'trust',
          fix: 'x',
        },
        {
          cause: 'external-id',
          likelihood: 'possible',
          account: { kind: 'registry' },
          summary: 'the ExternalId must match',
          fix: 'y',
        },
        {
          cause: 'caller-policy',
          likelihood: 'ruled-out',
          account: { kind: 'orchestrator' },
          summary: 'caller',
          fix: 'z',
          because: 'simulation allows it',
        },
      ],
      awsError: {
        code: 'AccessDenied',
        message: 'User: x is not authorized to perform: sts:AssumeRole on resource: y',
      },
    },
    {
      id: 'target-identity',
      title: 'Session is in the account',
      status: 'skipped',
      detail: 'skipped: needs the deploy role session',
    },
  ],
  ...change,
});

describe('crossdeploy doctor', () => {
  it('parses its options, and refuses --registry without --local', () => {
    expect(parseCli(['doctor', 'hello-world', 'prod', '--drift'], {})).toMatchObject({
      command: { name: 'doctor', application: 'hello-world', environment: 'prod', local: false, drift: true },
    });
    expect(() => parseCli(['doctor', 'a', 'b', '--registry', 'x.yaml'], {})).toThrow(
      /--registry is an option of `doctor --local`/,
    );
  });

  it('asks the API, polls a running run until it ends, and exits 1 when a check failed', async () => {
    const calls: string[] = [];
    const answers = [json(202, report({ status: 'running', finishedAt: undefined })), json(200, report())];
    const { code, stdout, stderr } = await runCli(['doctor', 'hello-world', 'prod', '--drift'], {
      fetch: async (url, init) => {
        calls.push(`${init?.method} ${new URL(String(url)).pathname} ${init?.body ?? ''}`);
        return answers.shift() ?? json(500, {});
      },
    });
    expect(calls).toEqual([
      'POST /doctor/runs {"application":"hello-world","environment":"prod","drift":true}',
      'GET /doctor/runs/01J0RUN ',
    ]);
    expect(code).toBe(1);
    expect(stderr).toContain('waiting for drift detection');
    expect(stdout).toContain(
      "doctor hello-world/prod — through the API, as the orchestrator's deployer role",
    );
    expect(stdout).toContain('✗ AssumeRole as the deploy job does it: STS refused');
    expect(stdout).toContain('fix (in the target account 222222222222): Deploy target-account/template.yaml');
    expect(stdout).toContain(`add to the trust policy of ${DEPLOY_ROLE}:`);
    expect(stdout).toContain(
      '"aws:PrincipalArn": "arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer"',
    );
    expect(stdout).toContain('2. [possible, in the registry] the ExternalId must match');
    expect(stdout).toContain('ruled out: caller-policy (simulation allows it)');
    expect(stdout).toContain('failed (1 passed, 1 failed, 0 warnings, 1 skipped)');
  });

  it('prints the report as JSON with --json and exits 0 when nothing failed', async () => {
    const passed = report({
      status: 'passed',
      checks: [report().checks[0] as DoctorReport['checks'][number]],
    });
    const { code, stdout } = await runCli(['doctor', 'hello-world', 'prod', '--json'], {
      fetch: async () => json(202, passed),
    });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(passed);
  });

  it('shows the API refusal (403) like any other refused request', async () => {
    const { code, stderr } = await runCli(['doctor', 'hello-world', 'prod'], {
      fetch: async () =>
        new Response(
          JSON.stringify({
            type: 'https://crossdeploy.dev/problems/forbidden',
            title: 'Forbidden',
            status: 403,
            detail: 'no',
            code: 'FORBIDDEN',
          }),
          { status: 403, headers: { 'content-type': 'application/problem+json' } },
        ),
    });
    expect(code).toBe(1);
    expect(stderr).toContain('FORBIDDEN');
  });

  it('--local reports a registry that names the wrong account as the first failed check, before any AWS call', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doctor-'));
    const file = join(dir, 'registry.yaml');
    writeFileSync(
      file,
      [
        'applications:',
        '  hello-world:',
        '    source: { type: GITHUB, location: "https://github.com/example-org/hello-world.git" }',
        '    environments:',
        '      prod:',
        '        accountId: "222222222222"',
        '        region: eu-west-1',
        // The seed article's profile: the dev account in role_arn.
        '        deployRoleArn: arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deploy',
        '        executionRoleArn: arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec',
        '        stackName: hello-world-prod',
        '        artifactsBucket: crossdeploy-artifacts-222222222222-eu-west-1',
        '        allowedRequesters: { local: ["*"] }',
      ].join('\n'),
    );
    const { code, stdout } = await runCli(['doctor', 'hello-world', 'prod', '--local', '--registry', file]);
    expect(code).toBe(1);
    expect(stdout).toContain('with your own AWS credentials (--local, or a local server)');
    expect(stdout).toMatch(
      /✗ Registry entry is consistent: [\s\S]*deployRoleArn: the role is in account 123456789012/,
    );
    expect(stdout).toContain('Nothing was sent to AWS.');
  });

  it('--local runs the same checks with the caller as a local requester', async () => {
    const seen: string[] = [];
    const probe: DoctorProbe = {
      callerIdentity: async () => {
        seen.push('caller');
        throw Object.assign(new Error('The security token included in the request is expired'), {
          name: 'ExpiredToken',
        });
      },
      assume: async () => {
        throw new Error('not reached');
      },
      denialProbes: () => ({}),
    };
    const result = await runLocalDoctor(
      { env: {}, now: () => Date.parse('2025-06-01T10:00:00Z') },
      {
        name: 'doctor',
        application: 'hello-world',
        environment: 'prod',
        local: true,
        drift: false,
        registry: 'registry/targets.yaml',
      },
      () => probe,
    );
    expect(seen).toEqual(['caller']);
    expect(result).toMatchObject({ mode: 'local', status: 'failed' });
    expect(result.checks.find((c) => c.id === 'caller')).toMatchObject({
      status: 'failed',
      account: { kind: 'caller' },
    });
    const text = renderDoctorReport(result, painter(false)).join('\n');
    expect(text).toContain('fix (on the caller): Refresh the credentials');
  });
});

describe('crossdeploy doctor --local --template', () => {
  it('refuses --template without --local', () => {
    expect(() => parseCli(['doctor', 'a', 'b', '--template', 't.yaml'], {})).toThrow(
      /--template is an option of `doctor --local`/,
    );
    expect(parseCli(['doctor', 'a', 'b', '--local', '--template', 't.yaml'], {})).toMatchObject({
      command: { name: 'doctor', local: true, template: 't.yaml' },
    });
  });

  it("holds the file to the deploy job's template policy with the environment's settings", async () => {
    const probe: DoctorProbe = {
      callerIdentity: async () => {
        throw Object.assign(new Error('expired'), { name: 'ExpiredToken' });
      },
      assume: async () => {
        throw new Error('not reached');
      },
      denialProbes: () => ({}),
    };
    const result = await runLocalDoctor(
      { env: {}, now: () => Date.parse('2025-06-01T10:00:00Z') },
      {
        name: 'doctor',
        application: 'hello-world',
        environment: 'prod',
        local: true,
        drift: false,
        registry: 'registry/targets.yaml',
        template: 'test/fixtures/templates/hostile/sam-admin-policy.yaml',
      },
      () => probe,
    );
    const found = result.checks.find((c) => c.id === 'template-policy');
    expect(found?.status).toBe('failed');
    expect(found?.detail).toContain(
      'AdminFunction: AdminFunction (AWS::Serverless::Function) attaches AdministratorAccess',
    );
    const text = renderDoctorReport(result, painter(false)).join('\n');
    expect(text).toContain("Template passes the deploy job's template policy");
  });
});
