/**
 * A hostile template end to end: the real deploy buildspec runs the template policy on the build output
 * (through the local runner's driver), and what that job reports drives the real workflow (ASL, job-events,
 * Record Failure). The deployment ends FAILED with TEMPLATE_POLICY_VIOLATION and `sam deploy` never ran.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox, removeSandboxes } from '#test/support/run-buildspec.ts';
import {
  deployEnv,
  fixture,
  forProd,
  runLocalDriver,
  samDeploys,
} from '#test/support/template-policy-job.ts';
import { createWorkflowHarness } from '#test/support/workflow.ts';

afterAll(removeSandboxes);

describe('a hostile template in the workflow', () => {
  it('ends FAILED with TEMPLATE_POLICY_VIOLATION naming the resource, and sam deploy is never invoked', async () => {
    const sandbox = createSandbox();
    const job = await runLocalDriver(
      sandbox,
      await deployEnv(sandbox, forProd(fixture('hostile/backdoor-role.yaml'))),
    );
    expect(job.code).not.toBe(0);
    expect(samDeploys(job.calls)).toEqual([]);

    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'FAILED', exported: job.exported };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'TEMPLATE_POLICY_VIOLATION' });
    expect(deployment?.errorMessage).toContain('BackdoorRole: role BackdoorRole trusts AWS principal');
    expect(deployment?.errorMessage).toContain('arn:aws:iam::999999999999:root');
  });

  it('records the registry exceptions a deployment used', async () => {
    const sandbox = createSandbox();
    const env = await deployEnv(sandbox, forProd(fixture('hostile/backdoor-role.yaml')), {
      TEMPLATE_POLICY_EXCEPTIONS_JSON: JSON.stringify({
        allowedTrustPrincipals: ['arn:aws:iam::999999999999:root'],
        allowedManagedPolicies: ['AdministratorAccess'],
      }),
    });
    const job = await runLocalDriver(sandbox, env);
    expect(job.code, job.output).toBe(0);

    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', exported: job.exported };
    const run = h.start({ application: 'hello-world', environment: 'staging' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment?.status).toBe('SUCCEEDED');
    expect(deployment?.templatePolicyExceptions).toEqual([
      {
        kind: 'allowedManagedPolicies',
        value: 'arn:aws:iam::aws:policy/AdministratorAccess',
        resource: 'BackdoorRole',
      },
      { kind: 'allowedTrustPrincipals', value: 'arn:aws:iam::999999999999:root', resource: 'BackdoorRole' },
    ]);
    const events = await h.store.listEvents(run.deploymentId);
    expect(events.map((e) => e.type)).toContain('TEMPLATE_POLICY_EXCEPTIONS_USED');
  });
});
