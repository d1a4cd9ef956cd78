import * as aws from '#shared/aws/runtime.ts';
import { logger, withLogKeys } from '#shared/logger.ts';
import type { Clock, DeploymentStore, RoleAssumer } from '#shared/ports.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { assumeTargetRole } from './core.ts';

type Deps = { store: DeploymentStore; registry: Registry; assumer: RoleAssumer; clock: Clock };

export const createHandler = (deps: () => Deps) => async (event: { deploymentId: string }) =>
  withLogKeys({ deploymentId: event.deploymentId }, async () => {
    const identity = await assumeTargetRole(event, deps());
    logger.info('target role assumed', {
      targetAccount: identity.account,
      assumedRoleArn: identity.assumedRoleArn,
    });
    return identity;
  });

export const handler = createHandler(() => ({
  store: aws.store(),
  registry: aws.registry(),
  assumer: aws.targetAccess(),
  clock: aws.clock,
}));
