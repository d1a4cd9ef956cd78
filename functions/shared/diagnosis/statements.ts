/**
 * The exact IAM policy statements that fix a cross-account problem, with the real ARNs filled in. The doctor
 * prints them and docs/doctor.md explains them; target-account/template.yaml creates the same ones, so a
 * statement printed here is what that template would have written.
 */

/** A statement to add, and to which policy of which role. */
export interface PolicyFix {
  /** `permissions`: an identity policy of `role`; `trust`: the trust (assume role) policy of `role`. */
  policy: 'permissions' | 'trust';
  role: string;
  statement: Record<string, unknown>;
}

/** A reference to the registry's ExternalId, printed instead of the value: output travels further than the registry. */
export const EXTERNAL_ID_PLACEHOLDER = '<the externalId of this environment in the registry>';

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:(.*)\/)?([^/]+)$/;

export interface RoleArnParts {
  partition: string;
  account: string;
  /** The path between `role/` and the name, without slashes at either end ('' when none). */
  path: string;
  name: string;
}

export function parseRoleArn(arn: string): RoleArnParts | undefined {
  const match = ROLE_ARN.exec(arn);
  if (!match) return undefined;
  return {
    partition: match[1] ?? 'aws',
    account: match[2] ?? '',
    path: match[3] ?? '',
    name: match[4] ?? '',
  };
}

const SESSION_ARN = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/;

/** `arn:aws:sts::A:assumed-role/R/S` -> `arn:aws:iam::A:role/R` (the path is not in a session ARN). */
export function roleOfSession(arn: string): string | undefined {
  const match = SESSION_ARN.exec(arn);
  return match ? `arn:${match[1]}:iam::${match[2]}:role/${match[3]}` : undefined;
}

/** The caller side: the orchestrator's deployer role may assume exactly this deploy role, with SourceIdentity. */
export function callerPolicyStatement(callerRoleArn: string, deployRoleArn: string): PolicyFix {
  return {
    policy: 'permissions',
    role: callerRoleArn,
    statement: {
      Sid: 'AssumeCrossdeployDeployRole',
      Effect: 'Allow',
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      Resource: deployRoleArn,
    },
  };
}

/**
 * The target side: the deploy role trusts the orchestrator account, narrowed by `aws:PrincipalArn` to exactly
 * the deploy job role (when known) and the deployer role. Naming the account (not the role ARN) as the principal
 * survives a replacement of either role: IAM turns a role principal into its unique id, which a new role of the
 * same name does not have.
 */
export function trustPolicyStatement(options: {
  deployRoleArn: string;
  callerRoleArn: string;
  /** The orchestrator's deploy job role: the deploy job assumes the deploy role as its own principal. */
  deployJobRoleArn?: string;
  externalId?: boolean;
}): PolicyFix {
  const caller = parseRoleArn(options.callerRoleArn);
  const partition = caller?.partition ?? parseRoleArn(options.deployRoleArn)?.partition ?? 'aws';
  const account = caller?.account ?? '<orchestrator account id>';
  return {
    policy: 'trust',
    role: options.deployRoleArn,
    statement: {
      Sid: 'TrustCrossdeployDeployer',
      Effect: 'Allow',
      Principal: { AWS: `arn:${partition}:iam::${account}:root` },
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      Condition: {
        ArnEquals: {
          'aws:PrincipalArn':
            options.deployJobRoleArn && options.deployJobRoleArn !== options.callerRoleArn
              ? [options.deployJobRoleArn, options.callerRoleArn]
              : options.callerRoleArn,
        },
        ...(options.externalId ? { StringEquals: { 'sts:ExternalId': EXTERNAL_ID_PLACEHOLDER } } : {}),
      },
    },
  };
}

/** The deploy role may hand exactly the execution role to CloudFormation, and to nothing else. */
export function passRoleStatement(deployRoleArn: string, executionRoleArn: string): PolicyFix {
  return {
    policy: 'permissions',
    role: deployRoleArn,
    statement: {
      Sid: 'PassExecutionRoleToCloudFormation',
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: executionRoleArn,
      Condition: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
    },
  };
}

/** CloudFormation acts through the execution role only if that role trusts the CloudFormation service. */
export function executionTrustStatement(executionRoleArn: string): PolicyFix {
  return {
    policy: 'trust',
    role: executionRoleArn,
    statement: {
      Effect: 'Allow',
      Principal: { Service: 'cloudformation.amazonaws.com' },
      Action: 'sts:AssumeRole',
    },
  };
}

const asArray = (value: unknown): unknown[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** IAM's wildcard matching (`*` any run of characters, `?` one), case-sensitive like ARN conditions. */
const wildcard = (pattern: string, value: string, ignoreCase = false) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    ignoreCase ? 'i' : '',
  ).test(value);

/**
 * Whether a trust policy lets `principalArn` (a role ARN with its path) call sts:AssumeRole: an Allow statement
 * for the action whose principal is that role, or its account with an `aws:PrincipalArn` condition (ArnEquals,
 * ArnLike, StringEquals, StringLike) that matches it, or its account with no condition on the principal.
 * Deny statements and other conditions (ExternalId, SourceIdentity) are not weighed: this answers "is the role
 * named", which is what a deploy role written by target-account/template.yaml gets wrong when it is stale.
 */
export function trustNamesPrincipal(trustPolicy: unknown, principalArn: string): boolean {
  const role = parseRoleArn(principalArn);
  if (!role) return false;
  const root = `arn:${role.partition}:iam::${role.account}:root`;
  const statements = asArray((trustPolicy as { Statement?: unknown } | undefined)?.Statement);
  return statements.some((raw) => {
    if (typeof raw !== 'object' || raw === null) return false;
    const statement = raw as Record<string, unknown>;
    if (statement.Effect !== 'Allow') return false;
    if (
      !asArray(statement.Action).some((a) => typeof a === 'string' && wildcard(a, 'sts:AssumeRole', true))
    ) {
      return false;
    }
    const principal = statement.Principal;
    const named = (
      principal === '*' ? ['*'] : asArray((principal as { AWS?: unknown } | undefined)?.AWS)
    ).map(String);
    if (named.includes(principalArn)) return true;
    if (!named.some((p) => p === '*' || p === root || p === role.account)) return false;
    const conditions = (statement.Condition ?? {}) as Record<string, Record<string, unknown>>;
    const patterns: string[] = [];
    let constrained = false;
    for (const [operator, keys] of Object.entries(conditions)) {
      for (const [key, values] of Object.entries(keys ?? {})) {
        if (key.toLowerCase() !== 'aws:principalarn') continue;
        constrained = true;
        if (/^(ArnEquals|ArnLike|StringEquals|StringLike)$/.test(operator))
          patterns.push(...asArray(values).map(String));
      }
    }
    if (!constrained) return named.some((p) => p !== '*');
    return patterns.some((pattern) => wildcard(pattern, principalArn));
  });
}
