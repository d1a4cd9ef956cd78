/**
 * The deploy job's template policy step, run for real: the deploy buildspec with the stand-in `aws`/`sam`
 * (test/support/run-buildspec.ts, as CodeBuild runs it), and the local runner's own driver
 * (local/buildspec-script.ts), on build outputs holding hostile and benign templates.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox, readBuildspec, removeSandboxes, runBuildspec } from '#test/support/run-buildspec.ts';
import {
  deployEnv,
  fixture,
  forProd,
  runLocalDriver,
  samDeploys,
  targetCalls,
} from '#test/support/template-policy-job.ts';
import {
  bundleTemplatePolicy,
  isYamlForbidden,
  renderDeployBuildspec,
} from '../../scripts/template-policy-bundle.ts';

afterAll(removeSandboxes);

describe('the deploy job runs the template policy before anything reaches the target', () => {
  it.each([
    [
      'the backdoor role',
      'hostile/backdoor-role.yaml',
      'BackdoorRole: role BackdoorRole trusts AWS principal arn:aws:iam::999999999999:root',
    ],
    [
      'a Fn::Sub-built outside principal',
      'hostile/sub-trust-principal.yaml',
      'PartnerRole: role PartnerRole trusts AWS principal arn:aws:iam::999999999999:root',
    ],
    [
      'an inline iam:* policy',
      'hostile/inline-iam-star.yaml',
      'EscalatorRole: EscalatorRole (AWS::IAM::Role) has an Allow statement RewriteAnyRole granting iam:*',
    ],
    [
      'a SAM function with Policies: AdministratorAccess',
      'hostile/sam-admin-policy.yaml',
      'AdminFunction: AdminFunction (AWS::Serverless::Function) attaches AdministratorAccess',
    ],
    [
      'a role without the boundary',
      'hostile/role-without-boundary.yaml',
      'UnboundedRole: role UnboundedRole has no PermissionsBoundary',
    ],
    [
      'a bucket policy that lets another account read',
      'hostile/resource-policies.yaml',
      'DataBucketPolicy: DataBucketPolicy (AWS::S3::BucketPolicy) allows AWS principal "arn:aws:iam::999999999999:root" in statement PartnerReads',
    ],
  ])('refuses %s: the job fails with the reason and sam deploy never runs', async (_, path, reason) => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, forProd(fixture(path)));
    const { code, stderr, calls } = await runBuildspec(sandbox, readBuildspec('deploy'), env);
    expect(code).not.toBe(0);
    expect(stderr).toContain('refusing to deploy: the template policy refuses');
    expect(stderr).toContain(reason);
    expect(samDeploys(calls)).toEqual([]);
    expect(targetCalls(calls)).toEqual([]);
  });

  it('deploys the benign serverless app', async () => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, fixture('benign/serverless-app.yaml'));
    const { code, stderr, calls, exported } = await runBuildspec(sandbox, readBuildspec('deploy'), env);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('crossdeploy: template policy: no findings');
    expect(samDeploys(calls)).toHaveLength(1);
    expect(exported.TEMPLATE_POLICY_REFUSED).toBeUndefined();
    expect(exported.TEMPLATE_POLICY_EXCEPTIONS).toBeUndefined();
  });

  it('local runner: exports TEMPLATE_POLICY_REFUSED from the failed job, and never runs sam deploy', async () => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, forProd(fixture('hostile/backdoor-role.yaml')));
    const { code, output, exported, calls } = await runLocalDriver(sandbox, env);
    expect(code, output).not.toBe(0);
    expect(exported.TEMPLATE_POLICY_REFUSED).toContain(
      'BackdoorRole: role BackdoorRole trusts AWS principal',
    );
    expect(exported.TEMPLATE_POLICY_REFUSED).toContain('[admin-managed-policy]');
    expect(exported.CROSSDEPLOY_FAILURE).toBe('TEMPLATE_POLICY_VIOLATION');
    expect(samDeploys(calls)).toEqual([]);
  });

  it('lets registry exceptions through and exports which were used', async () => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, forProd(fixture('hostile/backdoor-role.yaml')), {
      TEMPLATE_POLICY_EXCEPTIONS_JSON: JSON.stringify({
        allowedTrustPrincipals: ['arn:aws:iam::999999999999:root'],
        allowedManagedPolicies: ['AdministratorAccess'],
      }),
    });
    const { code, stderr, calls, exported } = await runBuildspec(sandbox, readBuildspec('deploy'), env);
    expect(code, stderr).toBe(0);
    expect(samDeploys(calls)).toHaveLength(1);
    expect(JSON.parse(exported.TEMPLATE_POLICY_EXCEPTIONS ?? '')).toEqual([
      {
        kind: 'allowedManagedPolicies',
        value: 'arn:aws:iam::aws:policy/AdministratorAccess',
        resource: 'BackdoorRole',
      },
      { kind: 'allowedTrustPrincipals', value: 'arn:aws:iam::999999999999:root', resource: 'BackdoorRole' },
    ]);
  });

  it("takes the application prefix and its boundary from the bootstrap's deploy role", async () => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, fixture('benign/serverless-app.yaml'), {
      DEPLOY_ROLE_ARN: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-deploy-eu-west-1',
    });
    const { code, stderr, calls } = await runBuildspec(sandbox, readBuildspec('deploy'), env);
    expect(code).not.toBe(0);
    expect(stderr).toContain(
      'not arn:aws:iam::222222222222:policy/crossdeploy/crossdeploy-hello-boundary-eu-west-1 [role-without-boundary]',
    );
    expect(samDeploys(calls)).toEqual([]);
  });

  it('fails closed when the check cannot run (no node on PATH)', async () => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, fixture('benign/serverless-app.yaml'));
    const text = readBuildspec('deploy').replace(
      '          node "$CROSSDEPLOY_WORK/template-policy.mjs"',
      '          no-such-node "$CROSSDEPLOY_WORK/template-policy.mjs"',
    );
    const { code, stderr, calls } = await runBuildspec(sandbox, text, env);
    expect(code).not.toBe(0);
    expect(stderr).toContain('the template policy check did not run');
    expect(samDeploys(calls)).toEqual([]);
  });

  it('buildspecs/deploy.yml holds the current bundle (run `node scripts/template-policy-bundle.ts`)', () => {
    const current = readBuildspec('deploy');
    expect(renderDeployBuildspec(current, bundleTemplatePolicy())).toBe(current);
    // YAML (and so CodeBuild and CloudFormation) refuses control characters other than tab and newline.
    expect([...current].filter(isYamlForbidden)).toEqual([]);
  });
});
