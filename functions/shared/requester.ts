import { createHash } from 'node:crypto';
import type { EnvironmentConfig } from './registry.ts';
import type { Requester } from './types.ts';

const ASSUMED_ROLE = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([\w+=,.@-]+)\/[\w+=,.@-]+$/;

/**
 * Turns the caller ARN from the IAM authorizer into the principal registry rules match. An assumed-role
 * session `arn:aws:sts::A:assumed-role/R/S` becomes `arn:aws:iam::A:role/R` (the role path is not in the
 * session ARN, so rules match by name or by path-less ARN).
 */
export function iamRequester(callerArn: string): Requester {
  const match = ASSUMED_ROLE.exec(callerArn);
  const principal = match ? `arn:${match[1]}:iam::${match[2]}:role/${match[3]}` : callerArn;
  return { type: 'iam', arn: callerArn, principal };
}

function wildcard(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** Whether `value` matches a registry pattern where `*` stands for any characters. */
export const wildcardMatch = (pattern: string, value: string): boolean => wildcard(pattern).test(value);

function roleName(principal: string): string | undefined {
  const match = /:role\/(?:.*\/)?([^/]+)$/.exec(principal);
  return match?.[1];
}

/** Whether the registry lets this requester deploy to this environment. */
export function isAllowed(requester: Requester, env: EnvironmentConfig): boolean {
  const rules = env.allowedRequesters;
  switch (requester.type) {
    case 'iam': {
      const name = roleName(requester.principal);
      return rules.iam.some((pattern) => {
        const re = wildcard(pattern);
        if (pattern.startsWith('arn:')) {
          // A role ARN with a path still matches the path-less principal derived from a session ARN.
          const pathless = pattern.replace(/:role\/(?:.*\/)?([^/]+)$/, ':role/$1');
          return re.test(requester.principal) || wildcard(pathless).test(requester.principal);
        }
        return name !== undefined && re.test(name);
      });
    }
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
