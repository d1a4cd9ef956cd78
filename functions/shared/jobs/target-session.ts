import type { AssumeRoleParams } from '../ports.ts';
import type { Target } from '../registry/registry.ts';
import { roleSessionName, sourceIdentity } from '../registry/requester.ts';
import type { Deployment } from '../types.ts';

/** The shortest session STS grants; the deploy job's helper asks for its own (≤ 3600 s, the chaining cap). */
export const PREFLIGHT_DURATION_SECONDS = 900;

/** The STS parameters for a deployment: the preflight, the settle step and the job's helper use the same. */
export function assumeParams(
  deployment: Deployment,
  target: Target,
  durationSeconds: number,
): AssumeRoleParams {
  return {
    roleArn: target.env.deployRoleArn,
    ...(target.env.externalId ? { externalId: target.env.externalId } : {}),
    sourceIdentity: sourceIdentity(deployment.requester),
    sessionName: roleSessionName(deployment.deploymentId),
    durationSeconds,
    region: target.env.region,
  };
}
