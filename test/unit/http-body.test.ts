import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { rawBody } from '../../functions/api/http.ts';

/**
 * The bytes a client sent, as the API and the Slack routes read them: Slack's signature is over exactly these
 * bytes, and the API's size limit counts them, so API Gateway's base64 encoding is undone and nothing is
 * re-serialised.
 */

const slash = (): APIGatewayProxyEventV2 =>
  JSON.parse(
    readFileSync(new URL('../events/slack/slash-command.json', import.meta.url), 'utf8'),
  ) as APIGatewayProxyEventV2;
const withBody = (body: string | undefined | null, isBase64Encoded: boolean): APIGatewayProxyEventV2 =>
  ({ ...slash(), body, isBase64Encoded }) as APIGatewayProxyEventV2;

describe('rawBody', () => {
  it('returns a plain body as its UTF-8 bytes, multi-byte characters included', () => {
    const text = 'text=hello-world%20dev&user_name=j%C3%BCrgen → ünïcode';
    const bytes = rawBody(withBody(text, false));
    expect(bytes.equals(Buffer.from(text, 'utf8'))).toBe(true);
    expect(bytes.byteLength).toBeGreaterThan(text.length);
  });

  it('decodes a base64 body to the bytes that were sent, invalid UTF-8 kept as it is', () => {
    const sent = Buffer.from([0x74, 0x3d, 0xff, 0xfe, 0x00, 0x41]);
    const bytes = rawBody(withBody(sent.toString('base64'), true));
    expect(bytes.equals(sent)).toBe(true);
  });

  it('reads the real slash-command fixture as the bytes Slack signed', () => {
    const event = slash();
    const expected = event.isBase64Encoded
      ? Buffer.from(event.body ?? '', 'base64')
      : Buffer.from(event.body ?? '', 'utf8');
    expect(rawBody(event).equals(expected)).toBe(true);
    expect(rawBody(event).byteLength).toBeGreaterThan(0);
  });

  it.each([
    ['absent', undefined],
    ['null', null],
    ['empty', ''],
  ])('returns no bytes for a %s body, base64 or not', (_, body) => {
    expect(rawBody(withBody(body, false)).byteLength).toBe(0);
    expect(rawBody(withBody(body, true)).byteLength).toBe(0);
  });
});
