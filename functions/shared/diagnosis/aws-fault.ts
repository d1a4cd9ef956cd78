/**
 * An AWS error reduced to what the diagnosis reads: its kind, its code, and the principal, action and policy
 * named in AWS's message. Used by the diagnosis, the adapters and the doctor alike.
 */

export type FaultKind =
  | 'access-denied'
  | 'source-identity-denied'
  | 'pass-role-denied'
  | 'chaining-duration'
  | 'region-disabled'
  | 'expired-credentials'
  | 'invalid-credentials'
  | 'no-credentials'
  | 'throttled'
  | 'not-found'
  | 'other';

/** An AWS error reduced to what the diagnosis reads. Never carries credentials (errors never do). */
export interface AwsFault {
  kind: FaultKind;
  /** AWS's error code (the SDK error's name), e.g. `AccessDenied`. */
  code: string;
  /** AWS's message, trimmed: shown to operators as evidence. */
  message: string;
  /** From `User: <principal> is not authorized to perform: <action> on resource: <resource>`. */
  principal?: string;
  action?: string;
  resource?: string;
  /** From the newer texts: which kind of policy denied (`identity-based`, `resource-based`, `service control`...). */
  deniedBy?: { policy: string; explicit: boolean };
  /** RegionDisabledException names the account that must activate STS in the region. */
  account?: string;
}

const NOT_AUTHORIZED =
  /User: (\S+) is not authorized to perform: ([\w-]+:[\w*]+)(?: on resource: (\S+?))?(?=[\s,]|\.?$)/;
const IMPLICIT = /because no ([\w -]+?) policy allows/;
const EXPLICIT = /with an explicit deny in (?:a|an|the) ([\w -]+?) policy/;
const REGION_ACCOUNT = /for account:? ?(\d{12})/;

/** Reads any thrown value (SDK error, plain object from a test, string) into an AwsFault. */
export function classifyAwsError(error: unknown): AwsFault {
  const e = (error ?? {}) as { name?: unknown; Code?: unknown; code?: unknown; message?: unknown };
  const code = String(e.name ?? e.Code ?? e.code ?? 'Error');
  const message = (typeof e.message === 'string' ? e.message : String(error)).trim().slice(0, 600);
  const fault: AwsFault = { kind: 'other', code, message };
  const authz = NOT_AUTHORIZED.exec(message);
  if (authz) {
    fault.principal = authz[1];
    fault.action = authz[2];
    if (authz[3]) fault.resource = authz[3];
  }
  const implicit = IMPLICIT.exec(message);
  const explicit = EXPLICIT.exec(message);
  if (explicit?.[1]) fault.deniedBy = { policy: explicit[1], explicit: true };
  else if (implicit?.[1]) fault.deniedBy = { policy: implicit[1], explicit: false };
  const region = REGION_ACCOUNT.exec(message);
  if (code === 'RegionDisabledException' && region?.[1]) fault.account = region[1];

  if (code === 'RegionDisabledException' || /STS is not activated in this region/i.test(message)) {
    fault.kind = 'region-disabled';
  } else if (
    /^ExpiredToken(Exception)?$/.test(code) ||
    /security token included in the request is expired/i.test(message)
  ) {
    fault.kind = 'expired-credentials';
  } else if (
    /^(InvalidClientTokenId|UnrecognizedClientException|SignatureDoesNotMatch|InvalidSignatureException)$/.test(
      code,
    )
  ) {
    fault.kind = 'invalid-credentials';
  } else if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    fault.kind = 'no-credentials';
  } else if (/DurationSeconds exceeds the 1 hour session limit/i.test(message)) {
    fault.kind = 'chaining-duration';
  } else if (/^(Throttling|ThrottlingException|TooManyRequestsException|RequestLimitExceeded)$/.test(code)) {
    fault.kind = 'throttled';
  } else if (fault.action?.toLowerCase() === 'sts:setsourceidentity') {
    fault.kind = 'source-identity-denied';
  } else if (fault.action?.toLowerCase() === 'iam:passrole') {
    fault.kind = 'pass-role-denied';
  } else if (/^AccessDenied(Exception)?$/.test(code) || fault.action) {
    fault.kind = 'access-denied';
  } else if (/^(NoSuchEntity|NoSuchEntityException|NotFound|NoSuchBucket)$/.test(code)) {
    fault.kind = 'not-found';
  }
  return fault;
}
