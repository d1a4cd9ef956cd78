import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/**
 * The bytes the client sent. API Gateway may hand them over base64-encoded; they are never re-serialised,
 * because Slack's signature is over exactly these bytes and the API's size limit counts them. Shared by the
 * API and the Slack routes (which already take their problem+json from this folder).
 */
export function rawBody(event: APIGatewayProxyEventV2): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}
