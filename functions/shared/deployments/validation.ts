// zod/mini with only the English messages: a fifth of zod's size in every function that validates requests.
import {
  boolean,
  config,
  int,
  maxLength,
  minimum,
  minLength,
  optional,
  strictObject,
  string,
  type ZodMiniType,
} from 'zod/mini';
import { en } from 'zod/v4/locales';
import { RequestRejectedError } from '../errors.ts';
import { activeFreeze } from '../registry/calendar.ts';
import { type EnvironmentConfig, findTarget, type Registry, type Target } from '../registry/registry.ts';
import { mayDeploy, mayOverrideFreeze, type RuleScope, wildcardMatch } from '../registry/requester.ts';
import type { Requester } from '../types.ts';

/**
 * The one validation core. The API runs it synchronously; the workflow's Validate Request runs it again
 * because scheduled deployments never pass through the API.
 */

export const MAX_REASON_LENGTH = 500;
const COMMIT_SHA = /^[0-9a-f]{40}$/;
const REF_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

/** Why a ref is refused, or undefined when it is acceptable. */
export function refProblem(ref: string): string | undefined {
  if (COMMIT_SHA.test(ref)) return undefined;
  if (!REF_NAME.test(ref)) {
    return 'a ref is a 40-hex commit SHA or a name of letters, digits, ".", "_", "/" and "-" that starts with a letter or digit (at most 200 characters)';
  }
  if (ref.includes('..')) return 'a ref may not contain ".."';
  if (ref.includes('//')) return 'a ref may not contain "//"';
  if (ref.includes('@{')) return 'a ref may not contain "@{"';
  if (ref.endsWith('/') || ref.endsWith('.')) return 'a ref may not end with "/" or "."';
  if (ref.split('/').some((part) => part.startsWith('.') || part.endsWith('.lock'))) {
    return 'no ref component may start with "." or end with ".lock"';
  }
  // CodeBuild reads `pr/<n>` as a pull request, not a branch.
  if (/^pr\/\d+$/.test(ref)) return 'refs of the form pr/<number> are read by CodeBuild as pull requests';
  return undefined;
}

config(en());

const name = string().check(minLength(1), maxLength(63));
const common = {
  application: name,
  reason: optional(string().check(maxLength(MAX_REASON_LENGTH))),
  dryRun: optional(boolean()),
  /** Deploy inside a freeze window: honoured only for the environment's approvers, and audited. */
  overrideFreeze: optional(boolean()),
};
const requestSchema = strictObject({
  ...common,
  environment: name,
  ref: optional(string().check(minLength(1), maxLength(200))),
});
const promotionSchema = strictObject({ ...common, from: name, to: name });
const rollbackSchema = strictObject({ ...common, environment: name, release: int().check(minimum(1)) });

export type DeploymentKind = 'deploy' | 'promotion' | 'rollback';

export interface ValidRequest {
  kind: DeploymentKind;
  application: string;
  environment: string;
  /** Direct deploys: the ref to build. Promotions and rollbacks deploy a recorded build output instead. */
  ref?: string;
  reason?: string;
  dryRun: boolean;
  target: Target;
  /** A promotion's source environment, or a rollback's release number. */
  promoteFrom?: string;
  release?: number;
  /** Set when an approver deploys inside a freeze window. */
  freezeOverride?: { window: string; endsAt: string };
  /** The request asked to override a freeze (the workflow checks again at validation and at lock time). */
  overrideFreeze?: true;
}

function parse<T>(schema: ZodMiniType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
    const detail =
      issue?.code === 'unrecognized_keys'
        ? `unknown field(s): ${issue.keys.join(', ')}`
        : `${field || 'body'}: ${issue?.message ?? 'invalid'}`;
    throw new RequestRejectedError('INVALID_FIELD', 400, detail, { details: { field } });
  }
  return result.data;
}

function targetOf(registry: Registry, application: string, environment: string): Target {
  const target = findTarget(registry, application, environment);
  if (target) return target;
  throw Object.hasOwn(registry.applications, application)
    ? new RequestRejectedError(
        'UNKNOWN_ENVIRONMENT',
        404,
        `application "${application}" has no environment "${environment}"`,
      )
    : new RequestRejectedError('UNKNOWN_APPLICATION', 404, `no application "${application}" in the registry`);
}

function checkReason(reason: string | undefined) {
  // Control characters (other than tab and newline) could rewrite a terminal or a chat message.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  if (reason !== undefined && /[\u0000-\u0008\u000b-\u001f\u007f]/.test(reason)) {
    throw new RequestRejectedError('INVALID_REASON', 400, 'reason may not contain control characters');
  }
}

function checkRequester(requester: Requester, target: Target, scope: RuleScope) {
  if (!mayDeploy(requester, target.env, scope)) {
    throw new RequestRejectedError(
      'FORBIDDEN',
      403,
      `the requester may not deploy ${target.application} to ${target.environment}`,
    );
  }
}

/**
 * A freeze window refuses the request, naming the window and when it ends. An approver's explicit
 * override passes, and the caller records it.
 */
export function checkFreeze(
  env: EnvironmentConfig,
  requester: Requester,
  override: boolean,
  now: Date,
  scope: RuleScope,
): { window: string; endsAt: string } | undefined {
  const freeze = activeFreeze(env.freezeWindows, now);
  if (!freeze) return undefined;
  const approver = mayOverrideFreeze(requester, env, scope);
  if (override && approver) return { window: freeze.name, endsAt: freeze.endsAt };
  throw new RequestRejectedError(
    'ENVIRONMENT_FROZEN',
    409,
    `deployments are frozen by "${freeze.name}" until ${freeze.endsAt}` +
      (override ? "; only the environment's approvers may override a freeze" : ''),
    { details: { window: freeze.name, endsAt: freeze.endsAt } },
  );
}

function finishValidation(
  kind: DeploymentKind,
  target: Target,
  request: {
    reason?: string | undefined;
    dryRun?: boolean | undefined;
    overrideFreeze?: boolean | undefined;
  },
  requester: Requester,
  now: Date,
  scope: RuleScope,
  extra: { ref?: string; promoteFrom?: string; release?: number },
): ValidRequest {
  checkReason(request.reason);
  checkRequester(requester, target, scope);
  const freezeOverride = checkFreeze(target.env, requester, request.overrideFreeze === true, now, scope);
  return {
    kind,
    application: target.application,
    environment: target.environment,
    ...extra,
    ...(request.reason !== undefined ? { reason: request.reason } : {}),
    dryRun: request.dryRun ?? false,
    target,
    ...(freezeOverride ? { freezeOverride } : {}),
    ...(request.overrideFreeze === true ? { overrideFreeze: true as const } : {}),
  };
}

/** A direct deploy of a ref: shape, registry, ref rules and the environment's ref policy, reason, requester, freeze. */
export function validateRequest(
  body: unknown,
  requester: Requester,
  registry: Registry,
  now: Date = new Date(),
  scope: RuleScope = {},
): ValidRequest {
  const request = parse(requestSchema, body);
  const target = targetOf(registry, request.application, request.environment);
  const ref = request.ref ?? target.app.defaultRef;
  const problem = refProblem(ref);
  if (problem) {
    throw new RequestRejectedError('INVALID_REF', 400, `ref refused: ${problem}`, {
      details: { field: 'ref' },
    });
  }
  // Who asks is checked before the ref policy, which is not shown to those who may not deploy here.
  checkRequester(requester, target, scope);
  const allowed = target.env.allowedRefs;
  if (!allowed.some((pattern) => (COMMIT_SHA.test(ref) ? pattern === '*' : wildcardMatch(pattern, ref)))) {
    throw new RequestRejectedError(
      'REF_NOT_ALLOWED',
      403,
      allowed.length === 0
        ? `${target.environment} accepts promotions and rollbacks only, not a ref`
        : `${target.environment} accepts only the refs ${allowed.join(', ')}`,
      { details: { field: 'ref' } },
    );
  }
  return finishValidation('deploy', target, request, requester, now, scope, { ref });
}

/** A promotion: the target must list the source environment in its promoteFrom. */
export function validatePromotion(
  body: unknown,
  requester: Requester,
  registry: Registry,
  now: Date = new Date(),
  scope: RuleScope = {},
): ValidRequest {
  const request = parse(promotionSchema, body);
  targetOf(registry, request.application, request.from);
  const target = targetOf(registry, request.application, request.to);
  if (!target.env.promoteFrom.includes(request.from)) {
    throw new RequestRejectedError(
      'PROMOTION_NOT_ALLOWED',
      403,
      target.env.promoteFrom.length === 0
        ? `${request.to} accepts no promotions`
        : `${request.to} may be promoted only from ${target.env.promoteFrom.join(', ')}, not from ${request.from}`,
    );
  }
  return finishValidation('promotion', target, request, requester, now, scope, { promoteFrom: request.from });
}

/** A rollback: redeploy release N of the environment (the build output and registry parameters it used). */
export function validateRollback(
  body: unknown,
  requester: Requester,
  registry: Registry,
  now: Date = new Date(),
  scope: RuleScope = {},
): ValidRequest {
  const request = parse(rollbackSchema, body);
  const target = targetOf(registry, request.application, request.environment);
  return finishValidation('rollback', target, request, requester, now, scope, { release: request.release });
}

/** The validator for each way of asking for a deployment (the API's three routes, chat's three commands). */
export const validateByKind = {
  deploy: validateRequest,
  promotion: validatePromotion,
  rollback: validateRollback,
} satisfies Record<DeploymentKind, unknown>;
