import { recordEvent } from '#shared/deployments/record.ts';
import { JobStartError, WrongTargetAccountError } from '#shared/errors.ts';
import { assumeParams, PREFLIGHT_DURATION_SECONDS } from '#shared/jobs/target-session.ts';
import type { AssumedIdentity, Clock, DeploymentStore, RoleAssumer } from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';

/**
 * Proves, before any deploy job starts, that the deployer can assume the target role and that the session
 * lands in the environment's account (a role_arn naming the wrong account would otherwise deploy there).
 * Only non-secret facts leave this step.
 */
export async function assumeTargetRole(
  input: { deploymentId: string },
  deps: { store: DeploymentStore; registry: Registry; assumer: RoleAssumer; clock: Clock },
): Promise<AssumedIdentity> {
  const deployment = await deps.store.getDeployment(input.deploymentId);
  if (!deployment) throw new JobStartError(`deployment ${input.deploymentId} does not exist`);
  const target = findTarget(deps.registry, deployment.application, deployment.environment);
  if (!target)
    throw new JobStartError(`${deployment.application}/${deployment.environment} left the registry`);
  const params = assumeParams(deployment, target, PREFLIGHT_DURATION_SECONDS);
  const identity = await deps.assumer.preflight(params);
  if (identity.account !== target.env.accountId) {
    throw new WrongTargetAccountError(
      `assuming ${target.env.deployRoleArn} gave a session in account ${identity.account}, but ${deployment.environment} is account ${target.env.accountId}; nothing was deployed`,
      { details: { expected: target.env.accountId, actual: identity.account } },
    );
  }
  const expectedRole = target.env.deployRoleArn.split('/').pop();
  const assumedRole = /:assumed-role\/([^/]+)\//.exec(identity.assumedRoleArn)?.[1];
  // A session whose ARN names no role (a user, a federated session) is not the deploy role: refused too.
  if (!expectedRole || !assumedRole || assumedRole !== expectedRole) {
    throw new WrongTargetAccountError(
      assumedRole
        ? `the session is for role ${assumedRole}, not the registry's deploy role ${expectedRole}; nothing was deployed`
        : `the session ${identity.assumedRoleArn} is not a session of the registry's deploy role ${expectedRole}; nothing was deployed`,
    );
  }
  await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'ROLE_ASSUMED', {
    assumedRoleArn: identity.assumedRoleArn,
    account: identity.account,
    sourceIdentity: params.sourceIdentity,
    sessionName: params.sessionName,
  });
  return identity;
}
