import { runSimulation } from '@cloud-copilot/iam-simulate';

/**
 * One IAM authorization decision, computed by @cloud-copilot/iam-simulate (a maintained evaluator of IAM
 * policy documents: explicit deny wins, an Allow is needed in the identity policies and in the permissions
 * boundary, Action/NotAction/Resource/NotResource globbing, every condition operator). It also checks each
 * action, resource ARN and condition key against AWS's published IAM reference data, so a misspelt action in a
 * template makes the test throw instead of passing for the wrong reason.
 *
 * Not modelled (and not used by these templates): SCPs, RCPs, session policies, VPC endpoint policies.
 */

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

export interface Request {
  /** The role ARN with its path (aws:PrincipalArn is set from it), or a service principal such as `lambda.amazonaws.com`. */
  principal: string;
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
  /** Identity policies of the principal (none for a service principal). */
  identity?: unknown[];
  boundary?: unknown;
  /** A resource policy, e.g. the trust policy of the role for sts:AssumeRole. */
  resourcePolicy?: unknown;
}

const ROLE = /^arn:aws[a-z-]*:iam::(\d{12}):role\//;

/** The account a resource belongs to: from its ARN, or (S3, IAM-less ARNs) the given default. */
const accountOf = (arn: string, fallback: string) =>
  /^arn:[^:]*:[^:]*:[^:]*:(\d{12}):/.exec(arn)?.[1] ?? fallback;

export async function evaluate(request: Request): Promise<Decision> {
  const role = ROLE.exec(request.principal);
  const principalAccount = role?.[1];
  const context: Record<string, string | string[]> = {
    ...(role
      ? { 'aws:PrincipalArn': request.principal, 'aws:PrincipalAccount': principalAccount ?? '' }
      : {}),
    ...request.context,
  };
  const result = await runSimulation(
    {
      request: {
        principal: request.principal,
        action: request.action,
        resource: {
          resource: request.resource,
          accountId: accountOf(request.resource, principalAccount ?? '000000000000'),
        },
        contextVariables: context,
      },
      identityPolicies: (request.identity ?? []).map((policy, i) => ({ name: `identity-${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(request.boundary
        ? { permissionBoundaryPolicies: [{ name: 'boundary', policy: request.boundary }] }
        : {}),
      ...(request.resourcePolicy ? { resourcePolicy: request.resourcePolicy } : {}),
    },
    {},
  );
  if (result.resultType === 'error') {
    throw new Error(
      `iam-simulate refused ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`,
    );
  }
  if (result.resultType !== 'single') {
    throw new Error(
      `${request.action} on ${request.resource}: expected one resource, got ${result.resultType}`,
    );
  }
  const ignored = result.result.ignoredContextKeys ?? [];
  // A context key the action does not have would be dropped silently, and a condition on it never match.
  const meant = ignored.filter((key) => !key.toLowerCase().startsWith('aws:principal'));
  if (meant.length > 0) {
    throw new Error(
      `${request.action} on ${request.resource} does not take the context keys ${meant.join(', ')}`,
    );
  }
  return result.overallResult as Decision;
}
