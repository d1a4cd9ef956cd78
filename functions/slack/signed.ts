import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { logger } from '#shared/logger.ts';
import type { Clock } from '#shared/ports.ts';
import { rawBody } from '../api/http.ts';
import { problem, problemResponse } from '../api/problem.ts';
import { verifySlackSignature } from './signature.ts';

/**
 * What every route Slack calls (the slash command, the buttons) checks before reading a byte of the body:
 * its size, then Slack's signature over the raw bytes. Refusals are problem+json (Slack shows them as a
 * failure, which is right: nobody but Slack should be calling) and an audit log line without the body
 * (it carries a response_url) or the presented signature.
 */

export interface SignedRequestDeps {
  /** The signing secret (read once per process and cached by the caller). */
  signingSecret: () => Promise<string>;
  clock: Clock;
}

export type SignedRequest =
  | {
      ok: true;
      raw: Buffer;
      /** The presented signature: one (timestamp, body) pair, the key replay claims are made on. */
      signature: string;
      audit: { requestId: string; sourceIp: string | undefined; bodyBytes: number };
    }
  | { ok: false; response: APIGatewayProxyStructuredResultV2 };

export async function readSignedRequest(
  event: APIGatewayProxyEventV2,
  deps: SignedRequestDeps,
  options: { instance: string; maxBodyBytes: number },
): Promise<SignedRequest> {
  const raw = rawBody(event);
  const audit = {
    requestId: event.requestContext?.requestId ?? '',
    sourceIp: event.requestContext?.http?.sourceIp,
    bodyBytes: raw.byteLength,
  };
  if (raw.byteLength > options.maxBodyBytes) {
    logger.warn('slack request refused', {
      audit: 'refused',
      code: 'PAYLOAD_TOO_LARGE',
      status: 413,
      ...audit,
    });
    return {
      ok: false,
      response: problemResponse(
        problem('PAYLOAD_TOO_LARGE', 413, `the body may be at most ${options.maxBodyBytes} bytes`, {
          instance: options.instance,
        }),
      ),
    };
  }
  const timestamp = header(event, 'x-slack-request-timestamp');
  const signature = header(event, 'x-slack-signature');
  const check = verifySlackSignature({
    secret: await deps.signingSecret(),
    timestamp,
    signature,
    rawBody: raw,
    now: deps.clock.now(),
  });
  if (!check.valid) {
    logger.warn('slack request refused', {
      audit: 'refused',
      code: 'UNAUTHENTICATED',
      status: 401,
      reason: check.reason,
      requestTimestamp: timestamp?.slice(0, 20),
      ...audit,
    });
    return {
      ok: false,
      response: problemResponse(
        problem('UNAUTHENTICATED', 401, 'the request is not signed by Slack with this app’s signing secret', {
          instance: options.instance,
        }),
      ),
    };
  }
  return { ok: true, raw, signature: signature ?? '', audit };
}

export function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  // API Gateway lower-cases header names; local callers may not.
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) return value;
  }
  return undefined;
}

/** A form body decoded strictly as UTF-8 (Slack sends nothing else); undefined when it is not. */
export function readForm(raw: Buffer): URLSearchParams | undefined {
  try {
    return new URLSearchParams(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch {
    return undefined;
  }
}

/**
 * The response_url of a signed request, if it is one Slack would give: at most 2048 characters, no
 * credentials in it, on an allowed host (Slack's hooks host in production). Otherwise undefined, logged by host
 * only: even a refused URL may be a live credential.
 */
export function acceptableResponseUrl(
  value: string | null | undefined,
  allowed: (url: URL) => boolean,
): string | undefined {
  if (!value) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url && value.length <= 2048 && !url.username && !url.password && allowed(url)) return value;
  logger.warn('response_url refused; nothing is posted to it', { host: url?.hostname.slice(0, 100) });
  return undefined;
}
