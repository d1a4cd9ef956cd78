import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { CrossdeployError, type ErrorCode } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';

/**
 * The one place where errors become HTTP: RFC 9457 problem documents. Caller mistakes keep their message
 * (it names the field and the rule); anything on our side gets a generic detail, and the original goes
 * to the log only, so stack traces and raw SDK messages never reach a client.
 */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://crossdeploy.dev/problems/';

const TITLES: Record<ErrorCode, string> = {
  MALFORMED_REQUEST: 'Malformed request',
  INVALID_FIELD: 'Invalid field',
  INVALID_REF: 'Invalid ref',
  INVALID_REASON: 'Invalid reason',
  UNKNOWN_APPLICATION: 'Unknown application',
  UNKNOWN_ENVIRONMENT: 'Unknown environment',
  FORBIDDEN: 'Forbidden',
  ENVIRONMENT_BUSY: 'Environment busy',
  LOCK_WAIT_TIMEOUT: 'Waited too long for the environment',
  ENVIRONMENT_FROZEN: 'Environment frozen',
  REF_NOT_ALLOWED: 'Ref not allowed here',
  PROMOTION_NOT_ALLOWED: 'Promotion not allowed',
  NOTHING_TO_PROMOTE: 'Nothing to promote',
  SIMULATED_SOURCE: 'Simulated build output',
  UNKNOWN_RELEASE: 'Unknown release',
  ALREADY_DEPLOYED: 'Already deployed',
  SUPERSEDED: 'Superseded by a newer request',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  IDEMPOTENCY_KEY_REUSED: 'Idempotency key reused',
  NOT_FOUND: 'Not found',
  BAD_CURSOR: 'Bad cursor',
  UNAUTHENTICATED: 'Unauthenticated',
  ROLE_ASSUMPTION_DENIED: 'Role assumption denied',
  WRONG_TARGET_ACCOUNT: 'Wrong target account',
  BUILD_FAILED: 'Build failed',
  DEPLOY_FAILED: 'Deploy failed',
  SAM_BUILD_FAILED: 'sam build failed',
  SOURCE_LINK_OUTSIDE_TREE: 'Symbolic link outside the source tree',
  BUILD_OUTPUT_VERSION_NOT_FOUND: 'Build output version not found',
  CHECKSUM_MISMATCH: 'Build output checksum mismatch',
  BUILD_OUTPUT_HAS_SAMCONFIG: 'Build output carries SAM CLI configuration',
  BUILD_OUTPUT_HAS_SYMLINK: 'Build output has a symbolic link',
  ARTIFACT_PATH_ESCAPES: 'Artifact path leaves the build output',
  BUILD_OUTPUT_REJECTED: 'Build output rejected',
  JOB_START_FAILED: 'Job start failed',
  JOB_TIMED_OUT: 'Job timed out',
  TEMPLATE_POLICY_VIOLATION: 'Template policy violation',
  REGISTRY_INVALID: 'Registry invalid',
  CONFIG_INVALID: 'Configuration invalid',
  EXECUTION_FAILED: 'Execution failed',
  EXECUTION_TIMED_OUT: 'Execution timed out',
  EXECUTION_ABORTED: 'Execution aborted',
  EXECUTION_NOT_FOUND: 'Execution never started',
  ORCHESTRATOR_RESTARTED: 'Orchestrator restarted',
  APPROVAL_REJECTED: 'Change set rejected',
  APPROVAL_TIMEOUT: 'No approval in time',
  SELF_APPROVAL: 'Self-approval not allowed',
  NOT_AN_APPROVER: 'Not an approver',
  NOT_AWAITING_APPROVAL: 'Not awaiting approval',
  CHANGE_SET_STALE: 'Change set stale',
  CHANGE_SET_FAILED: 'Change set failed',
  STACK_UPDATE_FAILED: 'Stack update failed',
  INTERNAL: 'Internal error',
};

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  deploymentId?: string;
  /** The request field the problem is about, when there is one (400s). */
  field?: string;
}

export interface ProblemContext {
  instance?: string;
  deploymentId?: string;
  /** Quoted in generic details so an operator can find the logged original. */
  requestId?: string;
}

export const problemType = (code: ErrorCode) => `${TYPE_BASE}${code.toLowerCase().replaceAll('_', '-')}`;

export function problem(
  code: ErrorCode,
  status: number,
  detail: string,
  context: ProblemContext = {},
): ProblemDocument {
  return {
    type: problemType(code),
    title: TITLES[code],
    status,
    detail,
    code,
    ...(context.instance !== undefined ? { instance: context.instance } : {}),
    ...(context.deploymentId !== undefined ? { deploymentId: context.deploymentId } : {}),
  };
}

export function internalDetail(requestId?: string): string {
  const quote = requestId ? ` (request id ${requestId})` : '';
  return `The request could not be completed because of an error on the server${quote}. It has been logged.`;
}

/** Any thrown value as a problem document. Server-side failures are logged here, with the original error. */
export function problemFromError(error: unknown, context: ProblemContext = {}): ProblemDocument {
  if (error instanceof CrossdeployError && error.httpStatus < 500) {
    const doc = problem(error.code, error.httpStatus, error.message, context);
    const field = error.details.field;
    return typeof field === 'string' && field !== '' ? { ...doc, field } : doc;
  }
  logger.error('request failed on the server', { error, requestId: context.requestId });
  if (error instanceof CrossdeployError) {
    return problem(error.code, error.httpStatus, internalDetail(context.requestId), context);
  }
  return problem('INTERNAL', 500, internalDetail(context.requestId), context);
}

export function problemResponse(
  doc: ProblemDocument,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: doc.status,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(doc),
  };
}

export const errorResponse = (error: unknown, context: ProblemContext = {}) =>
  problemResponse(problemFromError(error, context));
