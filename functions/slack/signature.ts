import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack): HMAC-SHA256
 * with the app's signing secret over `v0:<timestamp>:<raw body>`, sent as `X-Slack-Signature: v0=<hex>`.
 * This is the route's only authentication (API Gateway's IAM authorization is off for it).
 */

/** Slack's documented window: a request older (or newer) than this is refused as a possible replay. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

const TIMESTAMP = /^\d{1,12}$/;

export type SignatureRefusal =
  | 'MISSING_TIMESTAMP'
  | 'MALFORMED_TIMESTAMP'
  | 'STALE_TIMESTAMP'
  | 'MISSING_SIGNATURE'
  | 'SIGNATURE_MISMATCH'
  | 'NO_SECRET';

export type SignatureCheck = { valid: true } | { valid: false; reason: SignatureRefusal };

/** The signature Slack computes. The body is hashed as received: bytes, never a re-serialised form. */
export function slackSignature(secret: string, timestamp: string, rawBody: Uint8Array): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`v0:${timestamp}:`, 'utf8');
  hmac.update(rawBody);
  return `v0=${hmac.digest('hex')}`;
}

export function verifySlackSignature(input: {
  secret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  rawBody: Uint8Array;
  now: Date;
}): SignatureCheck {
  // An empty key would make every signature computable by anyone.
  if (input.secret === '') return { valid: false, reason: 'NO_SECRET' };
  const { timestamp, signature } = input;
  if (timestamp === undefined || timestamp === '') return { valid: false, reason: 'MISSING_TIMESTAMP' };
  if (!TIMESTAMP.test(timestamp)) return { valid: false, reason: 'MALFORMED_TIMESTAMP' };
  const skew = Math.abs(Math.floor(input.now.getTime() / 1000) - Number(timestamp));
  if (skew > MAX_CLOCK_SKEW_SECONDS) return { valid: false, reason: 'STALE_TIMESTAMP' };
  if (signature === undefined || signature === '') return { valid: false, reason: 'MISSING_SIGNATURE' };

  const expected = Buffer.from(slackSignature(input.secret, timestamp, input.rawBody), 'utf8');
  const presented = Buffer.from(signature, 'utf8');
  // timingSafeEqual needs equal lengths; the length is no secret (it is fixed), the content is. Slack sends
  // lower-case hex, so anything else (upper case, another version prefix, a truncation) is a mismatch.
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    return { valid: false, reason: 'SIGNATURE_MISMATCH' };
  }
  return { valid: true };
}
