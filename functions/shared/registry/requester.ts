import { createHash } from 'node:crypto';
import type { Requester } from '../types.ts';
import type { EnvironmentConfig } from './registry.ts';

const ASSUMED_ROLE = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([\w+=,.@-]+)\/[\w+=,.@-]+$/;
/** IAM paths: `/` or `/…/` of printable ASCII (IAM's own pattern for the Path parameter). */
const ROLE_PATH = /^\/(?:[\x21-\x7e]+\/)?$/;

/**
 * Turns the caller ARN from the IAM authorizer into the principal registry rules match. An assumed-role
 * session `arn:aws:sts::A:assumed-role/R/S` becomes the role `arn:aws:iam::A:role/<path>R`. The session ARN
 * carries no path: pass the role's path when the boundary resolved it (resolveIamRequester), otherwise the
 * principal is path-less and rules that depend on the path do not match it.
 */
export function iamRequester(callerArn: string, rolePath?: string): Requester {
  const match = ASSUMED_ROLE.exec(callerArn);
  if (!match) return { type: 'iam', arn: callerArn, principal: callerArn };
  const path = rolePath !== undefined && ROLE_PATH.test(rolePath) ? rolePath : undefined;
  const principal = `arn:${match[1]}:iam::${match[2]}:role${path ?? '/'}${match[3]}`;
  return { type: 'iam', arn: callerArn, principal, ...(path !== undefined ? { rolePath: path } : {}) };
}

/** Looks up an IAM role's path (`/`, `/release-managers/`), or undefined when it cannot be known. */
export interface RolePaths {
  rolePath(account: string, roleName: string): Promise<string | undefined>;
}

/** The IAM requester with its role's path resolved where the port can (the boundary of the API). */
export async function resolveIamRequester(callerArn: string, rolePaths: RolePaths): Promise<Requester> {
  const match = ASSUMED_ROLE.exec(callerArn);
  if (!match?.[2] || !match[3]) return iamRequester(callerArn);
  return iamRequester(callerArn, await rolePaths.rolePath(match[2], match[3]));
}

/** What rule matching needs to know about the orchestrator itself. */
export interface RuleScope {
  /**
   * The account the orchestrator runs in. A bare role-name rule (`Developer*`) names roles of this account
   * only; without it, bare names match no IAM principal.
   */
  orchestratorAccount?: string | undefined;
}

/** The requester lists of an environment (allowedRequesters, approvers, readers). */
export type RequesterRules = EnvironmentConfig['allowedRequesters'];

function wildcard(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Whether `value` matches a registry pattern where `*` stands for any characters. */
export const wildcardMatch = (pattern: string, value: string): boolean => wildcard(pattern).test(value);

// IAM rules ------------------------------------------------------------------------------------------------

/**
 * IAM's ARN matching, as the IAM User Guide describes it for the Resource element ("Using wildcards in
 * resource ARNs"): `*` is any run of characters and `?` any one character, both within one colon-separated
 * segment; only a `*` that ends a segment may run past a colon; the service segment takes no wildcard;
 * matching is case-sensitive. This matcher is narrower where that text is loose: a rule must have all six
 * segments, and only the `*` that ends the resource may cross a colon.
 */
const ARN_FIELDS = 6;
/** Stands for an unknown role path: only the resource's final `*` (which matches any text) consumes it. */
const UNKNOWN = '\u0000';

function splitArn(arn: string): string[] | undefined {
  const fields = arn.split(':');
  if (fields.length < ARN_FIELDS || fields[0] !== 'arn') return undefined;
  return [...fields.slice(0, ARN_FIELDS - 1), fields.slice(ARN_FIELDS - 1).join(':')];
}

function globField(glob: string, last: boolean): RegExp {
  const chars = [...glob];
  let source = '';
  for (const [i, char] of chars.entries()) {
    if (char === '*') source += last && i === chars.length - 1 ? '[\\s\\S]*' : `[^:${UNKNOWN}]*`;
    else if (char === '?') source += `[^:${UNKNOWN}]`;
    else source += char.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Whether an ARN rule matches an ARN, field by field. The service field is compared literally. */
export function arnRuleMatches(rule: string, arn: string): boolean {
  if (rule.includes(UNKNOWN)) return false;
  const ruleFields = splitArn(rule);
  const arnFields = splitArn(arn);
  if (!ruleFields || !arnFields) return false;
  return ruleFields.every((glob, i) => {
    const value = arnFields[i] ?? '';
    if (i === 2) return glob === value;
    return globField(glob, i === ARN_FIELDS - 1).test(value);
  });
}

const ROLE_PRINCIPAL = /^arn:([^:]+):iam::(\d{12}):role(\/(?:.*\/)?)([^/]+)$/;
const BARE_NAME = /^[\w+=,.@*?-]+$/;

function iamRuleMatches(rule: string, requester: Requester & { type: 'iam' }, scope: RuleScope): boolean {
  const role = ROLE_PRINCIPAL.exec(requester.principal);
  if (!rule.startsWith('arn:')) {
    // A bare name is a role of the orchestrator's account, on any path: the name is all it looks at.
    if (!role || !BARE_NAME.test(rule) || scope.orchestratorAccount === undefined) return false;
    return role[2] === scope.orchestratorAccount && globField(rule, false).test(role[4] ?? '');
  }
  const sessionRole = ASSUMED_ROLE.test(requester.arn);
  if (!sessionRole || requester.rolePath !== undefined || !role)
    return arnRuleMatches(rule, requester.principal);
  // A session whose role path is unknown: the rule must match whatever the path is, the root path and any other.
  const [, partition, account, , name] = role;
  return (
    arnRuleMatches(rule, `arn:${partition}:iam::${account}:role/${name}`) &&
    arnRuleMatches(rule, `arn:${partition}:iam::${account}:role/${UNKNOWN}/${name}`)
  );
}

/** Whether the requester is on one of these lists (allowedRequesters, approvers or readers). */
export function isAllowed(requester: Requester, rules: RequesterRules, scope: RuleScope): boolean {
  switch (requester.type) {
    case 'iam':
      return rules.iam.some((rule) => iamRuleMatches(rule, requester, scope));
    case 'slack':
      return rules.slack.some(
        (rule) => rule.team === requester.teamId && (!rule.users || rule.users.includes(requester.userId)),
      );
    case 'schedule':
      return rules.schedule.some((pattern) => wildcard(pattern).test(requester.scheduleName));
    case 'local':
      return rules.local.some((pattern) => wildcard(pattern).test(requester.user));
  }
}

/** Who may deploy to the environment. */
export const mayDeploy = (requester: Requester, env: EnvironmentConfig, scope: RuleScope): boolean =>
  isAllowed(requester, env.allowedRequesters, scope);

/** Who may override the environment's freeze windows. */
export const mayOverrideFreeze = (requester: Requester, env: EnvironmentConfig, scope: RuleScope): boolean =>
  isAllowed(requester, env.approvers, scope);

/**
 * Who may read the environment's deployments, events and logs: its `readers` when it lists them, otherwise
 * whoever may deploy there or approve there.
 */
export function mayRead(requester: Requester, env: EnvironmentConfig, scope: RuleScope): boolean {
  if (env.readers) return isAllowed(requester, env.readers, scope);
  return mayDeploy(requester, env, scope) || mayOverrideFreeze(requester, env, scope);
}

function roleName(principal: string): string | undefined {
  const match = /:role\/(?:.*\/)?([^/]+)$/.exec(principal);
  return match?.[1];
}

/** A one-line, human form for history and chat. */
export function describeRequester(requester: Requester): string {
  switch (requester.type) {
    case 'iam':
      return requester.principal;
    case 'slack':
      return `slack:${requester.teamId}/${requester.userName ?? requester.userId}`;
    case 'schedule':
      return `schedule:${requester.scheduleName}`;
    case 'local':
      return `local:${requester.user}`;
  }
}

const SOURCE_IDENTITY_CHARS = /[^\w+=,.@-]/g;

/**
 * STS SourceIdentity: 2–64 characters of `[\w+=,.@-]`, never starting with `aws:`. It survives role
 * chaining into the target account's CloudTrail, so it is readable (type and a short id) and unique (a hash).
 */
export function sourceIdentity(requester: Requester): string {
  const full = JSON.stringify(requester);
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  const short = (() => {
    switch (requester.type) {
      case 'iam':
        return roleName(requester.principal) ?? requester.principal.split(':').pop() ?? 'iam';
      case 'slack':
        return requester.userName ?? requester.userId;
      case 'schedule':
        return requester.scheduleName;
      case 'local':
        return requester.user;
    }
  })();
  const readable = `${requester.type}-${short}`.replace(SOURCE_IDENTITY_CHARS, '_').slice(0, 64 - 9);
  return `${readable}-${hash}`;
}

/** STS RoleSessionName: derived from the deployment id, which links CloudTrail to the record. */
export function roleSessionName(deploymentId: string): string {
  return `crossdeploy-${deploymentId}`.replace(SOURCE_IDENTITY_CHARS, '_').slice(0, 64);
}
