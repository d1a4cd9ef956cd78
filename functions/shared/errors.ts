/**
 * The one error module. Every class sets `name` explicitly (minifiers rename classes, and Step Functions
 * matches Catch/Retry on the name) and carries a stable `code` that the API, the audit record and the CLI show.
 */

export type ErrorCode =
  | 'MALFORMED_REQUEST'
  | 'INVALID_FIELD'
  | 'INVALID_REF'
  | 'INVALID_REASON'
  | 'UNKNOWN_APPLICATION'
  | 'UNKNOWN_ENVIRONMENT'
  | 'FORBIDDEN'
  | 'ENVIRONMENT_BUSY'
  | 'LOCK_WAIT_TIMEOUT'
  | 'ENVIRONMENT_FROZEN'
  | 'REF_NOT_ALLOWED'
  | 'PROMOTION_NOT_ALLOWED'
  | 'NOTHING_TO_PROMOTE'
  | 'SIMULATED_SOURCE'
  | 'UNKNOWN_RELEASE'
  | 'ALREADY_DEPLOYED'
  | 'SUPERSEDED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'NOT_FOUND'
  | 'BAD_CURSOR'
  | 'UNAUTHENTICATED'
  | 'ROLE_ASSUMPTION_DENIED'
  | 'WRONG_TARGET_ACCOUNT'
  | 'BUILD_FAILED'
  | 'DEPLOY_FAILED'
  | JobFailureCode
  | 'JOB_START_FAILED'
  | 'JOB_TIMED_OUT'
  | 'TEMPLATE_POLICY_VIOLATION'
  | 'REGISTRY_INVALID'
  | 'CONFIG_INVALID'
  | 'EXECUTION_FAILED'
  | 'EXECUTION_TIMED_OUT'
  | 'EXECUTION_ABORTED'
  | 'EXECUTION_NOT_FOUND'
  | 'ORCHESTRATOR_RESTARTED'
  | 'APPROVAL_REJECTED'
  | 'APPROVAL_TIMEOUT'
  | 'SELF_APPROVAL'
  | 'NOT_AN_APPROVER'
  | 'NOT_AWAITING_APPROVAL'
  | 'CHANGE_SET_STALE'
  | 'CHANGE_SET_FAILED'
  | 'STACK_UPDATE_FAILED'
  | 'INTERNAL';

/**
 * Why a build or deploy job refused, as the job itself reports it (the buildspecs export CROSSDEPLOY_FAILURE):
 * each refusal the README promises has a code of its own. WRONG_TARGET_ACCOUNT is shared with Assume Target Role.
 */
export const JOB_FAILURE_CODES = [
  'SAM_BUILD_FAILED',
  'SOURCE_LINK_OUTSIDE_TREE',
  'BUILD_OUTPUT_VERSION_NOT_FOUND',
  'CHECKSUM_MISMATCH',
  'BUILD_OUTPUT_HAS_SAMCONFIG',
  'BUILD_OUTPUT_HAS_SYMLINK',
  'ARTIFACT_PATH_ESCAPES',
  'BUILD_OUTPUT_REJECTED',
  'WRONG_TARGET_ACCOUNT',
  'TEMPLATE_POLICY_VIOLATION',
] as const;
export type JobFailureCode = (typeof JOB_FAILURE_CODES)[number];

export const isJobFailureCode = (value: unknown): value is JobFailureCode =>
  (JOB_FAILURE_CODES as readonly unknown[]).includes(value);

export abstract class CrossdeployError extends Error {
  abstract readonly code: ErrorCode;
  /** HTTP status when the error reaches the API; 500 for anything that is not the caller's fault. */
  readonly httpStatus: number = 500;
  /** Extra, non-secret facts for the problem document and the audit record. */
  readonly details: Record<string, unknown>;

  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: options.cause });
    this.details = options.details ?? {};
  }
}

/** The request itself is wrong: recorded as REJECTED, never retried. */
export class RequestRejectedError extends CrossdeployError {
  override readonly name = 'RequestRejectedError';
  readonly code: ErrorCode;
  override readonly httpStatus: number;
  constructor(
    code: ErrorCode,
    httpStatus: number,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

export class EnvironmentBusyError extends CrossdeployError {
  override readonly name = 'EnvironmentBusyError';
  readonly code = 'ENVIRONMENT_BUSY' as const;
  override readonly httpStatus = 409;
}

export class IdempotencyConflictError extends CrossdeployError {
  override readonly name = 'IdempotencyConflictError';
  readonly code = 'IDEMPOTENCY_KEY_REUSED' as const;
  override readonly httpStatus = 409;
}

export class RoleAssumptionError extends CrossdeployError {
  override readonly name = 'RoleAssumptionError';
  readonly code = 'ROLE_ASSUMPTION_DENIED' as const;
}

export class WrongTargetAccountError extends CrossdeployError {
  override readonly name = 'WrongTargetAccountError';
  readonly code = 'WRONG_TARGET_ACCOUNT' as const;
}

export class JobFailedError extends CrossdeployError {
  override readonly name = 'JobFailedError';
  readonly code: ErrorCode;
  constructor(job: 'build' | 'deploy', message: string, options?: { details?: Record<string, unknown> }) {
    super(message, options);
    this.code = job === 'build' ? 'BUILD_FAILED' : 'DEPLOY_FAILED';
  }
}

export class JobStartError extends CrossdeployError {
  override readonly name = 'JobStartError';
  readonly code = 'JOB_START_FAILED' as const;
}

export class RegistryError extends CrossdeployError {
  override readonly name = 'RegistryError';
  readonly code = 'REGISTRY_INVALID' as const;
}

export class ConfigError extends CrossdeployError {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID' as const;
}

/** A store write conflicted with a different existing value (an audit event is never overwritten). */
export class ConflictError extends CrossdeployError {
  override readonly name = 'ConflictError';
  readonly code = 'INTERNAL' as const;
}

/** An approver rejected the change set (SendTaskFailure with this name): the deployment ends REJECTED. */
export class ApprovalRejectedError extends CrossdeployError {
  override readonly name = 'ApprovalRejectedError';
  readonly code = 'APPROVAL_REJECTED' as const;
}

/** Nobody decided within the environment's approvalTimeoutMinutes: the deployment ends FAILED. */
export class ApprovalTimeoutError extends CrossdeployError {
  override readonly name = 'ApprovalTimeoutError';
  readonly code = 'APPROVAL_TIMEOUT' as const;
}

/**
 * CloudFormation refused to execute the approved change set because the stack changed after it was created
 * (status OBSOLETE, or InvalidChangeSetStatus): what was approved can no longer run as approved.
 */
export class ChangeSetStaleError extends CrossdeployError {
  override readonly name = 'ChangeSetStaleError';
  readonly code = 'CHANGE_SET_STALE' as const;
}

/** The change set could not be read, executed or was not there (not stale: missing, failed, denied). */
export class ChangeSetError extends CrossdeployError {
  override readonly name = 'ChangeSetError';
  readonly code = 'CHANGE_SET_FAILED' as const;
}

/** The executed change set ended the stack in a failed or rolled-back status. */
export class StackUpdateFailedError extends CrossdeployError {
  override readonly name = 'StackUpdateFailedError';
  readonly code = 'STACK_UPDATE_FAILED' as const;
}

/** Error names the state machine treats as the requester's problem: the deployment ends REJECTED. */
export const REJECTION_ERROR_NAMES = [
  'RequestRejectedError',
  'EnvironmentBusyError',
  'ApprovalRejectedError',
] as const;

/**
 * Reads the `{ Error, Cause }` a Catch puts at `$.error` back into a code and a message. Lambda puts its
 * error as JSON `{ errorType, errorMessage, trace }` into Cause; we keep the message, never the trace.
 */
export function describeWorkflowError(error: { Error?: string; Cause?: string }): {
  name: string;
  code: ErrorCode;
  message: string;
} {
  const name = error.Error ?? 'Error';
  let message = error.Cause ?? name;
  let code: ErrorCode | undefined;
  try {
    const cause = JSON.parse(error.Cause ?? '') as { errorMessage?: unknown; code?: unknown };
    if (typeof cause.errorMessage === 'string') message = cause.errorMessage;
    if (typeof cause.code === 'string') code = cause.code as ErrorCode;
  } catch {
    // Not JSON: States.* errors carry plain text causes.
  }
  return { name, code: code ?? codeForErrorName(name), message: message.slice(0, 1000) };
}

function codeForErrorName(name: string): ErrorCode {
  switch (name) {
    case 'EnvironmentBusyError':
      return 'ENVIRONMENT_BUSY';
    case 'RoleAssumptionError':
      return 'ROLE_ASSUMPTION_DENIED';
    case 'WrongTargetAccountError':
      return 'WRONG_TARGET_ACCOUNT';
    case 'JobStartError':
      return 'JOB_START_FAILED';
    case 'ApprovalRejectedError':
      return 'APPROVAL_REJECTED';
    case 'ApprovalTimeoutError':
      return 'APPROVAL_TIMEOUT';
    case 'ChangeSetStaleError':
      return 'CHANGE_SET_STALE';
    case 'ChangeSetError':
      return 'CHANGE_SET_FAILED';
    case 'StackUpdateFailedError':
      return 'STACK_UPDATE_FAILED';
    case 'States.Timeout':
    case 'States.HeartbeatTimeout':
      return 'JOB_TIMED_OUT';
    default:
      return 'INTERNAL';
  }
}

/** A dependency throttled or failed transiently: the state machine retries this name with backoff. */
export class TransientError extends CrossdeployError {
  override readonly name = 'TransientError';
  readonly code = 'INTERNAL' as const;
  override readonly httpStatus = 503;
}

/** Node's and the SDK's words for a dependency that did not answer this time (not for a refused request). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);
const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalFailure',
  'TimeoutError',
]);

/** Whether a call failed because its dependency was away or overloaded, so the same call may succeed later. */
export function isTransientError(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  if (error instanceof CrossdeployError) return false;
  const e = error as { name?: string; code?: string; $fault?: string; $retryable?: unknown } | undefined;
  if (!e) return false;
  return (
    TRANSIENT_CODES.has(e.code ?? '') ||
    TRANSIENT_NAMES.has(e.name ?? '') ||
    e.$fault === 'server' ||
    e.$retryable !== undefined
  );
}

/** The settle step could not confirm within its budget that nothing runs: try again later. */
export class NotSettledError extends CrossdeployError {
  override readonly name = 'NotSettledError';
  readonly code = 'INTERNAL' as const;
}
