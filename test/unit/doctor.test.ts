import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { Decision } from '#shared/diagnosis/diagnose.ts';
import type { AssumeRoleProbes } from '#shared/diagnosis/evidence.ts';
import type { AssumeRoleParams } from '#shared/ports.ts';
import { type EnvironmentConfig, parseRegistry } from '#shared/registry/registry.ts';
import type { Requester } from '#shared/types.ts';
import type { DoctorOptions, DoctorTarget } from '../../functions/doctor/checks.ts';
import { runDoctor } from '../../functions/doctor/core.ts';
import type {
  CheckId,
  DoctorProbe,
  DoctorReport,
  DriftStatus,
  Identity,
  TargetSession,
} from '../../functions/doctor/ports.ts';
import { createDoctorApi } from '../../functions/doctor/routes.ts';
import { MemoryDoctorRunStore } from '../../functions/doctor/run-store.ts';
import { checkTemplatePolicy } from '../../functions/doctor/template-check.ts';
import { expectValidResponse } from '../support/openapi.ts';

/**
 * `crossdeploy doctor` on a fake AWS that fails the way AWS does: every error text is the one AWS sends, as
 * quoted in AWS documentation or a published report (source next to it); only ids and names are ours.
 */

const ORCHESTRATOR = '123456789012';
const DEPLOYER = `arn:aws:iam::${ORCHESTRATOR}:role/crossdeploy/crossdeploy-deployer`;
const DEPLOYER_SESSION = `arn:aws:sts::${ORCHESTRATOR}:assumed-role/crossdeploy-deployer/1718000000000`;
const DEPLOY_JOB = `arn:aws:iam::${ORCHESTRATOR}:role/crossdeploy/crossdeploy-deploy-job`;
const DEPLOY_ROLE = 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy';
const EXEC_ROLE = 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec';

const awsError = (name: string, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { name, $fault: 'client', ...extra });

/** cloudposse/terraform-aws-components 1.231.0: what STS says for every AssumeRole denial. */
const denied = (action = 'sts:AssumeRole', resource = DEPLOY_ROLE) =>
  awsError(
    'AccessDenied',
    `User: ${DEPLOYER_SESSION} is not authorized to perform: ${action} on resource: ${resource}`,
  );

const registry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
      environments: {
        prod: {
          accountId: '222222222222',
          region: 'eu-west-1',
          deployRoleArn: DEPLOY_ROLE,
          executionRoleArn: EXEC_ROLE,
          stackName: 'hello-world-prod',
          artifactsBucket: 'crossdeploy-artifacts-222222222222-eu-west-1',
          allowedRequesters: { iam: ['AWSReservedSSO_Release_*'], local: ['alice'] },
        },
        sim: {
          accountId: '333333333333',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::333333333333:role/crossdeploy-deploy',
          executionRoleArn: 'arn:aws:iam::333333333333:role/crossdeploy-cfn-exec',
          stackName: 'hello-world-sim',
          artifactsBucket: 'crossdeploy-artifacts-333333333333-eu-west-1',
          allowedRequesters: { local: ['alice'] },
          runner: 'simulate',
        },
      },
    },
  },
});
const prodEnv = registry.applications['hello-world']?.environments.prod as EnvironmentConfig;
const target = (change: Partial<EnvironmentConfig> = {}): DoctorTarget => ({
  application: 'hello-world',
  environment: 'prod',
  env: { ...prodEnv, ...change },
});

const alice: Requester = { type: 'local', user: 'alice' };
const clock = { now: () => new Date('2025-06-01T10:00:00Z') };
const options = (change: Partial<DoctorOptions> = {}): DoctorOptions => ({
  runId: '01J0DOCTOR00000000000000000',
  requester: alice,
  mode: 'api',
  clock,
  expectedCallerRoleArn: DEPLOYER,
  ...change,
});

interface Scenario {
  caller?: Identity | Error;
  assume?: (params: AssumeRoleParams) => Error | undefined;
  withoutSourceIdentity?: boolean;
  simulation?: Partial<Record<'sts:AssumeRole' | 'sts:SetSourceIdentity', Decision>>;
  roleExists?: boolean;
  identity?: Identity | Error;
  executionRole?: { arn: string; trustPolicy?: unknown } | undefined | Error;
  canPassRole?: Decision;
  stackStatus?: string | undefined;
  bucketRegion?: string | Error;
  drift?: DriftStatus[];
  /** iam:GetRole of the deploy role itself (its trust policy); the default trusts both orchestrator roles. */
  deployRole?: { arn: string; trustPolicy?: unknown } | Error;
}

/** The trust policy target-account/template.yaml writes. */
const trustOf = (principalArns: string | string[]) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'TrustCrossdeployDeployer',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ORCHESTRATOR}:root` },
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      Condition: { ArnEquals: { 'aws:PrincipalArn': principalArns } },
    },
  ],
});

const CFN_TRUST = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { Service: 'cloudformation.amazonaws.com' }, Action: 'sts:AssumeRole' },
  ],
};

function fakeAws(scenario: Scenario = {}) {
  const calls: string[] = [];
  const sent: AssumeRoleParams[] = [];
  const drift = [...(scenario.drift ?? [])];
  const answer = async <T>(name: string, value: T | Error): Promise<T> => {
    calls.push(name);
    if (value instanceof Error) throw value;
    return value;
  };
  const session: TargetSession = {
    assumedRoleArn:
      'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR00000000000000000',
    expiration: '2025-06-01T11:00:00.000Z',
    identity: () =>
      answer(
        'target:GetCallerIdentity',
        scenario.identity ?? {
          arn: 'arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J0DOCTOR00000000000000000',
          account: '222222222222',
        },
      ),
    role: (arn) =>
      arn === DEPLOY_ROLE
        ? answer(
            'iam:GetRole (deploy role)',
            scenario.deployRole ?? { arn, trustPolicy: trustOf([DEPLOY_JOB, DEPLOYER]) },
          )
        : answer(
            'iam:GetRole',
            'executionRole' in scenario ? scenario.executionRole : { arn, trustPolicy: CFN_TRUST },
          ),
    canPassRole: () => answer('iam:SimulatePrincipalPolicy', scenario.canPassRole ?? 'allowed'),
    stackStatus: () =>
      answer(
        'cloudformation:DescribeStacks',
        'stackStatus' in scenario ? scenario.stackStatus : 'UPDATE_COMPLETE',
      ),
    bucketRegion: () => answer('s3:HeadBucket', scenario.bucketRegion ?? 'eu-west-1'),
    startDriftDetection: () => answer('cloudformation:DetectStackDrift', 'drift-1'),
    driftStatus: () =>
      answer('cloudformation:DescribeStackDriftDetectionStatus', drift.shift() ?? { state: 'running' }),
  };
  const probe: DoctorProbe = {
    callerIdentity: () =>
      answer('sts:GetCallerIdentity', scenario.caller ?? { arn: DEPLOYER_SESSION, account: ORCHESTRATOR }),
    async assume(params) {
      sent.push(params);
      const error = scenario.assume?.(params);
      return answer('sts:AssumeRole', error ?? session);
    },
    denialProbes(): AssumeRoleProbes {
      return {
        ...(scenario.simulation ? { simulate: async () => scenario.simulation ?? {} } : {}),
        ...(scenario.roleExists !== undefined ? { roleExists: async () => scenario.roleExists } : {}),
        callerRoleArn: async () => DEPLOYER,
        assumeWithoutSourceIdentity: async () => {
          calls.push('sts:AssumeRole (without SourceIdentity)');
          return scenario.withoutSourceIdentity ?? false;
        },
      };
    },
  };
  return { probe, calls, sent };
}

const check = (report: DoctorReport, id: CheckId) => {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check ${id}`);
  return found;
};
const statuses = (report: DoctorReport) => Object.fromEntries(report.checks.map((c) => [c.id, c.status]));

describe('runDoctor', () => {
  it('passes every check of a well-onboarded environment, in order, asking STS as the deploy job does', async () => {
    const aws = fakeAws();
    const report = await runDoctor(target(), aws.probe, options());
    expect(report.status).toBe('passed');
    expect(report.checks.map((c) => [c.id, c.status])).toEqual([
      ['registry', 'passed'],
      ['caller', 'passed'],
      ['assume-role', 'passed'],
      ['target-identity', 'passed'],
      ['execution-role', 'passed'],
      ['stack-status', 'passed'],
      ['artifacts-bucket', 'passed'],
      ['drift', 'skipped'],
    ]);
    expect(aws.sent).toEqual([
      {
        roleArn: DEPLOY_ROLE,
        sourceIdentity: expect.stringMatching(/^local-alice-[0-9a-f]{8}$/),
        sessionName: 'crossdeploy-01J0DOCTOR00000000000000000',
        durationSeconds: 3600,
        region: 'eu-west-1',
      },
    ]);
    expect(check(report, 'caller').detail).toMatch(/orchestrator's deployer role/);
  });

  it('sends the ExternalId when the registry sets one, and never shows its value', async () => {
    const aws = fakeAws();
    const report = await runDoctor(target({ externalId: 'crossdeploy-prod-7f3a' }), aws.probe, options());
    expect(aws.sent[0]?.externalId).toBe('crossdeploy-prod-7f3a');
    expect(JSON.stringify(report)).not.toContain('crossdeploy-prod-7f3a');
  });

  it('fault 1: the caller lacks sts:AssumeRole on the deploy role — fix in the orchestrator account', async () => {
    const aws = fakeAws({
      assume: () => denied(),
      simulation: { 'sts:AssumeRole': 'implicitDeny', 'sts:SetSourceIdentity': 'implicitDeny' },
    });
    const report = await runDoctor(target(), aws.probe, options());
    const assume = check(report, 'assume-role');
    expect(assume).toMatchObject({
      status: 'failed',
      account: { kind: 'orchestrator', accountId: ORCHESTRATOR },
    });
    expect(assume.candidates?.[0]).toMatchObject({ cause: 'caller-policy', likelihood: 'confirmed' });
    expect(assume.statements?.[0]).toMatchObject({
      policy: 'permissions',
      role: DEPLOYER,
      statement: { Resource: DEPLOY_ROLE },
    });
    expect(assume.awsError?.message).toContain('is not authorized to perform: sts:AssumeRole');
    expect(statuses(report)).toMatchObject({ 'target-identity': 'skipped', 'stack-status': 'skipped' });
  });

  it("fault 2: the trust policy does not trust the caller — fix in the target account, with the deployer's ARN", async () => {
    const aws = fakeAws({
      assume: () => denied(),
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
    });
    const report = await runDoctor(target(), aws.probe, options());
    const assume = check(report, 'assume-role');
    expect(assume.account).toEqual({ kind: 'target', accountId: '222222222222' });
    expect(assume.candidates?.[0]).toMatchObject({ cause: 'trust-policy', likelihood: 'likely' });
    expect(assume.statements?.[0]?.statement).toMatchObject({
      Principal: { AWS: `arn:aws:iam::${ORCHESTRATOR}:root` },
      Condition: { ArnEquals: { 'aws:PrincipalArn': DEPLOYER } },
    });
    // The retry without SourceIdentity narrowed it down too.
    expect(aws.calls).toContain('sts:AssumeRole (without SourceIdentity)');
    expect(assume.candidates?.find((c) => c.cause === 'source-identity')?.likelihood).toBe('ruled-out');
  });

  describe('the deploy job is another principal than the doctor (API mode knows its role)', () => {
    const withJob = () => options({ deployJobRoleArn: DEPLOY_JOB });

    it("passes when the deploy role's trust policy names the deploy job role too", async () => {
      const aws = fakeAws();
      const report = await runDoctor(target(), aws.probe, withJob());
      expect(check(report, 'assume-role').status).toBe('passed');
      expect(check(report, 'assume-role').detail).toContain(DEPLOY_JOB);
      expect(aws.calls).toContain('iam:GetRole (deploy role)');
    });

    it('fails, with the fix in the target account, when the trust policy names only the deployer', async () => {
      const aws = fakeAws({ deployRole: { arn: DEPLOY_ROLE, trustPolicy: trustOf(DEPLOYER) } });
      const report = await runDoctor(target(), aws.probe, withJob());
      const assume = check(report, 'assume-role');
      expect(assume.status).toBe('failed');
      expect(assume.detail).toContain(DEPLOY_JOB);
      expect(assume.account).toEqual({ kind: 'target', accountId: '222222222222' });
      expect(assume.statements?.[0]).toMatchObject({
        policy: 'trust',
        role: DEPLOY_ROLE,
        statement: { Condition: { ArnEquals: { 'aws:PrincipalArn': [DEPLOY_JOB, DEPLOYER] } } },
      });
      // The deployer's session works, so the other checks still run.
      expect(check(report, 'execution-role').status).toBe('passed');
    });

    it("fails when the trust policy names a role of another account with the deploy job's name", async () => {
      const lookalike = DEPLOY_JOB.replace(ORCHESTRATOR, '999999999999');
      const aws = fakeAws({ deployRole: { arn: DEPLOY_ROLE, trustPolicy: trustOf([lookalike, DEPLOYER]) } });
      const report = await runDoctor(target(), aws.probe, withJob());
      expect(check(report, 'assume-role').status).toBe('failed');
    });

    it('warns when the deploy role may not read its own trust policy', async () => {
      const aws = fakeAws({
        deployRole: awsError(
          'AccessDenied',
          `User: x is not authorized to perform: iam:GetRole on resource: ${DEPLOY_ROLE}`,
        ),
      });
      const report = await runDoctor(target(), aws.probe, withJob());
      expect(check(report, 'assume-role').status).toBe('warning');
      expect(check(report, 'assume-role').fix).toMatch(/DoctorReadOnly/);
    });

    it('warns, and claims nothing, when IAM returns no readable trust policy', async () => {
      const aws = fakeAws({ deployRole: { arn: DEPLOY_ROLE } });
      const report = await runDoctor(target(), aws.probe, withJob());
      expect(check(report, 'assume-role').status).toBe('warning');
      expect(check(report, 'assume-role').detail).toMatch(/unknown/);
    });

    it('prints a trust statement naming both roles when AssumeRole is refused', async () => {
      const aws = fakeAws({
        assume: () => denied(),
        simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
      });
      const report = await runDoctor(target(), aws.probe, withJob());
      expect(check(report, 'assume-role').statements?.[0]?.statement).toMatchObject({
        Condition: { ArnEquals: { 'aws:PrincipalArn': [DEPLOY_JOB, DEPLOYER] } },
      });
    });
  });

  it('fault 3: a wrong ExternalId ranks first, with the note that STS ignores one it does not require', async () => {
    const aws = fakeAws({
      assume: () => denied(),
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
    });
    const report = await runDoctor(target({ externalId: 'wrong-value' }), aws.probe, options());
    const assume = check(report, 'assume-role');
    expect(assume.candidates?.[0]).toMatchObject({
      cause: 'external-id',
      likelihood: 'likely',
      account: { kind: 'registry' },
    });
    expect(assume.fix).toMatch(/silently ignores an ExternalId/);
    expect(JSON.stringify(report)).not.toContain('wrong-value');
  });

  it('fault 4: a deploy role ARN in the wrong account is caught before any AWS call', async () => {
    const aws = fakeAws();
    const report = await runDoctor(
      target({ deployRoleArn: `arn:aws:iam::${ORCHESTRATOR}:role/crossdeploy/crossdeploy-deploy` }),
      aws.probe,
      options(),
    );
    expect(check(report, 'registry')).toMatchObject({ status: 'failed', account: { kind: 'registry' } });
    expect(check(report, 'registry').detail).toMatch(
      /deployRoleArn: arn:aws:iam::123456789012:role\/crossdeploy\/crossdeploy-deploy is in account 123456789012, but the environment's account is 222222222222/,
    );
    expect(aws.calls).toEqual([]);
    expect(report.checks.slice(1).every((c) => c.status === 'skipped')).toBe(true);
  });

  it('fault 5: the deploy role does not exist (the caller could look it up)', async () => {
    const aws = fakeAws({ assume: () => denied(), roleExists: false });
    const report = await runDoctor(target(), aws.probe, options());
    expect(check(report, 'assume-role').candidates?.[0]).toMatchObject({
      cause: 'role-missing',
      likelihood: 'confirmed',
    });
  });

  it("fault 5: the seed article's ARN — the target account with the caller's own role name", async () => {
    const roleArn = 'arn:aws:iam::222222222222:role/crossdeploy-deployer';
    const aws = fakeAws({ assume: () => denied('sts:AssumeRole', roleArn) });
    const report = await runDoctor(target({ deployRoleArn: roleArn }), aws.probe, options());
    const best = check(report, 'assume-role').candidates?.[0];
    expect(best).toMatchObject({
      cause: 'role-missing',
      likelihood: 'likely',
      account: { kind: 'registry' },
    });
  });

  it('fault 6: DurationSeconds above 3600 under role chaining', async () => {
    const aws = fakeAws({
      assume: (params) =>
        params.durationSeconds > 3600
          ? // gitlab-org/gitlab-runner#38370
            awsError(
              'ValidationError',
              'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
            )
          : undefined,
    });
    const report = await runDoctor(target(), aws.probe, options({ durationSeconds: 7200 }));
    expect(check(report, 'caller').detail).toMatch(
      /role session, so it may not ask for more than 3600 seconds/,
    );
    const assume = check(report, 'assume-role');
    expect(assume).toMatchObject({ status: 'failed', account: { kind: 'orchestrator' } });
    expect(assume.fix).toMatch(/at most 3600 seconds/);
  });

  it('fault 7: sts:SetSourceIdentity not allowed by the trust policy', async () => {
    const aws = fakeAws({
      // noqdev/iambic#357
      assume: () => denied('sts:SetSourceIdentity'),
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
    });
    const report = await runDoctor(target(), aws.probe, options());
    const assume = check(report, 'assume-role');
    expect(assume.candidates?.[0]).toMatchObject({ cause: 'source-identity', account: { kind: 'target' } });
    expect(assume.statements?.[0]?.policy).toBe('trust');
  });

  it('fault 7: sts:SetSourceIdentity not allowed by the caller, found by the retry without it', async () => {
    const aws = fakeAws({
      assume: () => denied(),
      withoutSourceIdentity: true,
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'implicitDeny' },
    });
    const report = await runDoctor(target(), aws.probe, options());
    const assume = check(report, 'assume-role');
    expect(assume.candidates?.[0]).toMatchObject({
      cause: 'source-identity',
      likelihood: 'confirmed',
      account: { kind: 'orchestrator' },
    });
  });

  it('fault 8: the deploy role may not pass the execution role', async () => {
    const aws = fakeAws({ canPassRole: 'implicitDeny' });
    const report = await runDoctor(target(), aws.probe, options());
    const exec = check(report, 'execution-role');
    expect(exec).toMatchObject({ status: 'failed', account: { kind: 'target', accountId: '222222222222' } });
    expect(exec.statements?.[0]).toEqual({
      policy: 'permissions',
      role: DEPLOY_ROLE,
      statement: {
        Sid: 'PassExecutionRoleToCloudFormation',
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: EXEC_ROLE,
        Condition: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
      },
    });
    expect(report.status).toBe('failed');
  });

  it('fault 8: an execution role that is missing or does not trust CloudFormation', async () => {
    const missing = await runDoctor(target(), fakeAws({ executionRole: undefined }).probe, options());
    expect(check(missing, 'execution-role').detail).toMatch(/there is no role/);
    const untrusting = await runDoctor(
      target(),
      fakeAws({ executionRole: { arn: EXEC_ROLE, trustPolicy: { Statement: [] } } }).probe,
      options(),
    );
    expect(check(untrusting, 'execution-role').statements?.[0]).toMatchObject({
      policy: 'trust',
      role: EXEC_ROLE,
      statement: { Principal: { Service: 'cloudformation.amazonaws.com' } },
    });
  });

  it('fault 9: the target region is not enabled — found by GetCallerIdentity at the regional endpoint', async () => {
    const aws = fakeAws({
      // Infisical/infisical#5531; STS API reference, RegionDisabledException
      identity: awsError(
        'RegionDisabledException',
        'STS is not activated in this region for account:222222222222. Your account administrator can activate STS in this region using the IAM Console.',
      ),
    });
    const report = await runDoctor(
      target({ region: 'ap-east-1', artifactsBucket: 'crossdeploy-artifacts-222222222222-ap-east-1' }),
      aws.probe,
      options(),
    );
    const identity = check(report, 'target-identity');
    expect(identity).toMatchObject({
      status: 'failed',
      account: { kind: 'target', accountId: '222222222222' },
    });
    expect(identity.fix).toMatch(/activate the ap-east-1 endpoint/);
    expect(statuses(report)).toMatchObject({ 'execution-role': 'skipped', 'artifacts-bucket': 'skipped' });
  });

  it("fault 10: the caller's own credentials are expired", async () => {
    const aws = fakeAws({
      // prowler-cloud/prowler#789
      caller: awsError('ExpiredToken', 'The security token included in the request is expired'),
    });
    const report = await runDoctor(target(), aws.probe, options({ mode: 'local' }));
    expect(check(report, 'caller')).toMatchObject({ status: 'failed', account: { kind: 'caller' } });
    expect(check(report, 'caller').fix).toMatch(/Refresh the credentials/);
    expect(aws.calls).toEqual(['sts:GetCallerIdentity']);
    expect(statuses(report)).toMatchObject({ 'assume-role': 'skipped' });
  });

  it('reports a session that lands in another account, and goes no further', async () => {
    const aws = fakeAws({
      identity: {
        arn: 'arn:aws:sts::999999999999:assumed-role/crossdeploy-deploy/x',
        account: '999999999999',
      },
    });
    const report = await runDoctor(target(), aws.probe, options());
    expect(check(report, 'target-identity').detail).toMatch(/account 999999999999/);
    expect(aws.calls).not.toContain('cloudformation:DescribeStacks');
  });

  it.each([
    ['UPDATE_ROLLBACK_FAILED', /continue-update-rollback --stack-name hello-world-prod/],
    ['ROLLBACK_COMPLETE', /delete-stack --stack-name hello-world-prod/],
    ['UPDATE_IN_PROGRESS', /Wait until it finishes/],
  ])('reports a stack in %s with its fix', async (status, fix) => {
    const report = await runDoctor(target(), fakeAws({ stackStatus: status }).probe, options());
    expect(check(report, 'stack-status')).toMatchObject({ status: 'failed' });
    expect(check(report, 'stack-status').fix).toMatch(fix);
  });

  it.each(['REVIEW_IN_PROGRESS', 'UPDATE_ROLLBACK_COMPLETE', undefined])(
    'lets a stack in %s be updated',
    async (status) => {
      const report = await runDoctor(target(), fakeAws({ stackStatus: status }).probe, options());
      expect(check(report, 'stack-status').status).toBe('passed');
    },
  );

  it('reports an artifacts bucket in another region, and one it cannot reach', async () => {
    const elsewhere = await runDoctor(target(), fakeAws({ bucketRegion: 'us-east-1' }).probe, options());
    expect(check(elsewhere, 'artifacts-bucket').detail).toMatch(/is in us-east-1, not eu-west-1/);
    const forbidden = await runDoctor(
      target(),
      fakeAws({ bucketRegion: awsError('AccessDenied', 'HeadBucket: AccessDenied') }).probe,
      options(),
    );
    expect(check(forbidden, 'artifacts-bucket')).toMatchObject({
      status: 'failed',
      account: { kind: 'target' },
    });
  });

  it('sends nothing to AWS for a simulated environment', async () => {
    const aws = fakeAws();
    const report = await runDoctor(target(), aws.probe, options({ simulated: true }));
    expect(aws.calls).toEqual([]);
    expect(check(report, 'caller').detail).toMatch(/runner: simulate/);
  });

  it('warns about a bucket name copied from another account or region', async () => {
    const report = await runDoctor(
      target({ artifactsBucket: 'crossdeploy-artifacts-111111111111-us-east-1' }),
      fakeAws().probe,
      options(),
    );
    expect(check(report, 'registry')).toMatchObject({ status: 'warning' });
    expect(check(report, 'registry').detail).toMatch(/names account 111111111111.*names region us-east-1/);
  });
});

// The HTTP routes -----------------------------------------------------------------------------------------

const SSO_SESSION =
  'arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0123456789abcdef/alice@example.com';
const releaser: Requester = {
  type: 'iam',
  arn: SSO_SESSION,
  principal: 'arn:aws:iam::123456789012:role/AWSReservedSSO_Release_0123456789abcdef',
};
const stranger: Requester = {
  type: 'iam',
  arn: 'arn:aws:sts::123456789012:assumed-role/Other/x',
  principal: 'arn:aws:iam::123456789012:role/Other',
};

function event(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    isBase64Encoded: false,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'example',
      domainPrefix: 'example',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
  };
}

describe('doctor routes', () => {
  const api = (scenario: Scenario = {}) => {
    const aws = fakeAws(scenario);
    let n = 0;
    const doctor = createDoctorApi({
      registry,
      store: new MemoryDoctorRunStore(),
      probeFor: () => aws.probe,
      clock,
      newId: () => `01J0RUN${String(++n).padStart(20, '0')}`,
      mode: 'api',
      expectedCallerRoleArn: DEPLOYER,
      isSimulated: (t) => t.env.runner === 'simulate',
      orchestratorAccount: '123456789012',
    });
    return { doctor, aws };
  };

  it('starts a run, answers 202 with the report, and the poll finishes drift detection', async () => {
    const { doctor, aws } = api({
      drift: [
        { state: 'running' },
        { state: 'done', stackDriftStatus: 'DRIFTED', drifted: ['HelloFunction (MODIFIED)'] },
      ],
    });
    const started = await doctor(
      event('POST', '/doctor/runs', { application: 'hello-world', environment: 'prod', drift: true }),
      releaser,
    );
    const body = expectValidResponse('POST', '/doctor/runs', started) as DoctorReport;
    expect(started.statusCode).toBe(202);
    expect(started.headers?.location).toBe(`/doctor/runs/${body.runId}`);
    expect(body.status).toBe('running');
    expect(body).not.toHaveProperty('pending');

    const first = await doctor(event('GET', `/doctor/runs/${body.runId}`), releaser);
    expect((expectValidResponse('GET', '/doctor/runs/{id}', first) as DoctorReport).status).toBe('running');
    const second = await doctor(event('GET', `/doctor/runs/${body.runId}`), releaser);
    const done = expectValidResponse('GET', '/doctor/runs/{id}', second) as DoctorReport;
    expect(done.status).toBe('warning');
    expect(done.checks.find((c) => c.id === 'drift')?.detail).toMatch(/HelloFunction \(MODIFIED\)/);
    // Each poll assumed the role afresh: credentials are never stored.
    expect(aws.calls.filter((c) => c === 'sts:AssumeRole')).toHaveLength(3);
  });

  it('refuses a requester the registry does not allow on the environment', async () => {
    const { doctor, aws } = api();
    const response = await doctor(
      event('POST', '/doctor/runs', { application: 'hello-world', environment: 'prod' }),
      stranger,
    );
    expect(response.statusCode).toBe(403);
    expectValidResponse('POST', '/doctor/runs', response);
    expect(aws.calls).toEqual([]);
  });

  it('hides a run from a requester not allowed on its environment', async () => {
    const { doctor } = api();
    const started = JSON.parse(
      String(
        (
          await doctor(
            event('POST', '/doctor/runs', { application: 'hello-world', environment: 'prod' }),
            releaser,
          )
        ).body,
      ),
    ) as DoctorReport;
    const response = await doctor(event('GET', `/doctor/runs/${started.runId}`), stranger);
    expect(response.statusCode).toBe(404);
    expectValidResponse('GET', '/doctor/runs/{id}', response);
  });

  it.each([
    ['an unknown application', { application: 'nope', environment: 'prod' }, 404, 'UNKNOWN_APPLICATION'],
    [
      'an unknown environment',
      { application: 'hello-world', environment: 'nope' },
      404,
      'UNKNOWN_ENVIRONMENT',
    ],
    ['an unknown field', { application: 'hello-world', environment: 'prod', extra: 1 }, 400, 'INVALID_FIELD'],
    ['a missing field', { application: 'hello-world' }, 400, 'INVALID_FIELD'],
  ])('refuses %s', async (_what, body, status, code) => {
    const { doctor } = api();
    const response = await doctor(event('POST', '/doctor/runs', body), releaser);
    expect(response.statusCode).toBe(status);
    expect(JSON.parse(String(response.body))).toMatchObject({ code });
    expectValidResponse('POST', '/doctor/runs', response);
  });

  it('refuses a body that is not JSON', async () => {
    const { doctor } = api();
    const response = await doctor(
      event('POST', '/doctor/runs', undefined, { 'content-type': 'text/plain' }),
      releaser,
    );
    expect(response.statusCode).toBe(415);
  });

  it('runs no AWS check for a simulated environment in local mode', async () => {
    const { doctor, aws } = api();
    const response = await doctor(
      event('POST', '/doctor/runs', { application: 'hello-world', environment: 'sim' }),
      alice,
    );
    expect(response.statusCode).toBe(202);
    expect(aws.calls).toEqual([]);
  });
});

describe('the template policy check (--template)', () => {
  const fixture = (path: string) =>
    readFileSync(new URL(`../fixtures/templates/${path}`, import.meta.url), 'utf8').replaceAll(
      '111111111111',
      prodEnv.accountId,
    );

  it('reports each finding of a hostile template with the resource, and fails the run', async () => {
    const report = await runDoctor(
      target(),
      fakeAws().probe,
      options({
        templatePolicy: (t) =>
          checkTemplatePolicy(t, { path: 'backdoor.yaml', text: fixture('hostile/backdoor-role.yaml') }),
      }),
    );
    expect(report.status).toBe('failed');
    const found = check(report, 'template-policy');
    expect(found.status).toBe('failed');
    expect(found.detail).toContain(
      'backdoor.yaml: the deploy job would refuse it (TEMPLATE_POLICY_VIOLATION)',
    );
    expect(found.detail).toContain(
      'BackdoorRole: role BackdoorRole trusts AWS principal arn:aws:iam::999999999999:root',
    );
    expect(found.detail).toContain('[admin-managed-policy]');
    expect(found.account).toEqual({ kind: 'registry' });
  });

  it('passes a benign template, and names the registry exceptions it relies on', async () => {
    const benign = await runDoctor(
      target(),
      fakeAws().probe,
      options({
        templatePolicy: (t) =>
          checkTemplatePolicy(t, { path: 't.yaml', text: fixture('benign/serverless-app.yaml') }),
      }),
    );
    expect(check(benign, 'template-policy')).toMatchObject({
      status: 'passed',
      detail: 't.yaml: no findings',
    });
    const excepted = await runDoctor(
      target({
        allowedTrustPrincipals: ['arn:aws:iam::999999999999:root'],
        allowedManagedPolicies: ['AdministratorAccess'],
      }),
      fakeAws().probe,
      options({
        templatePolicy: (t) =>
          checkTemplatePolicy(t, { path: 'b.yaml', text: fixture('hostile/backdoor-role.yaml') }),
      }),
    );
    expect(check(excepted, 'template-policy').status).toBe('passed');
    expect(check(excepted, 'template-policy').detail).toContain(
      'BackdoorRole uses the registry exception allowedTrustPrincipals: arn:aws:iam::999999999999:root',
    );
  });

  it("holds roles to the application prefix's boundary when the deploy role comes from the bootstrap", async () => {
    const bootstrapped = target({
      deployRoleArn: `arn:aws:iam::${prodEnv.accountId}:role/crossdeploy/crossdeploy-hello-deploy-${prodEnv.region}`,
      stackName: 'hello-prod',
    });
    const text = fixture('benign/serverless-app.json');
    const legacy = await runDoctor(
      bootstrapped,
      fakeAws().probe,
      options({ templatePolicy: (t) => checkTemplatePolicy(t, { path: 'a.json', text }) }),
    );
    expect(check(legacy, 'template-policy').detail).toContain(
      `has the PermissionsBoundary arn:aws:iam::${prodEnv.accountId}:policy/crossdeploy/crossdeploy-boundary-${prodEnv.region}, not arn:aws:iam::${prodEnv.accountId}:policy/crossdeploy/crossdeploy-hello-boundary-${prodEnv.region}`,
    );
    const prefixed = text.replace('crossdeploy-boundary-', 'crossdeploy-hello-boundary-');
    const passed = await runDoctor(
      bootstrapped,
      fakeAws().probe,
      options({ templatePolicy: (t) => checkTemplatePolicy(t, { path: 'b.json', text: prefixed }) }),
    );
    expect(check(passed, 'template-policy').status).toBe('passed');
  });

  it('adds no template check when no template is given', async () => {
    const report = await runDoctor(target(), fakeAws().probe, options());
    expect(report.checks.map((c) => c.id)).not.toContain('template-policy');
  });
});
