// Named imports: `z.*` would bundle all of zod (locales included) into every function.
import { boolean, type output, strictObject, string } from 'zod';
import { RequestRejectedError } from './errors.ts';
import { findTarget, type Registry, type Target } from './registry.ts';
import { isAllowed } from './requester.ts';
import type { Requester } from './types.ts';

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

const requestSchema = strictObject({
  application: string().min(1).max(63),
  environment: string().min(1).max(63),
  ref: string().min(1).max(200).optional(),
  reason: string().max(MAX_REASON_LENGTH).optional(),
  dryRun: boolean().optional(),
});

export interface ValidRequest {
  application: string;
  environment: string;
  ref: string;
  reason?: string;
  dryRun: boolean;
  target: Target;
}

/** Validates the shape of a request body (already parsed JSON). */
export function parseRequestBody(body: unknown): output<typeof requestSchema> {
  const result = requestSchema.safeParse(body);
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

/** Full validation: shape, registry, ref, reason, requester. Throws RequestRejectedError with a code. */
export function validateRequest(body: unknown, requester: Requester, registry: Registry): ValidRequest {
  const request = parseRequestBody(body);
  const target = findTarget(registry, request.application, request.environment);
  if (!target) {
    const appKnown = Object.hasOwn(registry.applications, request.application);
    throw appKnown
      ? new RequestRejectedError(
          'UNKNOWN_ENVIRONMENT',
          404,
          `application "${request.application}" has no environment "${request.environment}"`,
        )
      : new RequestRejectedError(
          'UNKNOWN_APPLICATION',
          404,
          `no application "${request.application}" in the registry`,
        );
  }
  const ref = request.ref ?? target.app.defaultRef;
  const problem = refProblem(ref);
  if (problem)
    throw new RequestRejectedError('INVALID_REF', 400, `ref refused: ${problem}`, {
      details: { field: 'ref' },
    });
  // Control characters (other than tab and newline) could rewrite a terminal or a chat message.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  if (request.reason !== undefined && /[\u0000-\u0008\u000b-\u001f\u007f]/.test(request.reason)) {
    throw new RequestRejectedError('INVALID_REASON', 400, 'reason may not contain control characters');
  }
  if (!isAllowed(requester, target.env)) {
    throw new RequestRejectedError(
      'FORBIDDEN',
      403,
      `the requester may not deploy ${request.application} to ${request.environment}`,
    );
  }
  return {
    application: request.application,
    environment: request.environment,
    ref,
    ...(request.reason !== undefined ? { reason: request.reason } : {}),
    dryRun: request.dryRun ?? false,
    target,
  };
}
