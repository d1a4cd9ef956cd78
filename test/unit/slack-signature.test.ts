import { describe, expect, it } from 'vitest';
import {
  MAX_CLOCK_SKEW_SECONDS,
  slackSignature,
  verifySlackSignature,
} from '../../functions/slack/signature.ts';

// Slack's documented example (https://api.slack.com/authentication/verifying-requests-from-slack).
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const TIMESTAMP = '1531420618';
const BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
const AT = (seconds: number) => new Date(seconds * 1000);

const check = (overrides: Partial<Parameters<typeof verifySlackSignature>[0]> = {}) =>
  verifySlackSignature({
    secret: SECRET,
    timestamp: TIMESTAMP,
    signature: SIGNATURE,
    rawBody: Buffer.from(BODY, 'utf8'),
    now: AT(Number(TIMESTAMP)),
    ...overrides,
  });

describe('Slack request signatures', () => {
  it("computes Slack's documented test vector", () => {
    expect(slackSignature(SECRET, TIMESTAMP, Buffer.from(BODY))).toBe(SIGNATURE);
  });

  it("accepts Slack's documented request at its own time (the clock is injected: the vector is from 2018)", () => {
    expect(check()).toEqual({ valid: true });
  });

  it.each([
    ['one second later', 1],
    ['one second earlier', -1],
    [`${MAX_CLOCK_SKEW_SECONDS} s later`, MAX_CLOCK_SKEW_SECONDS],
    [`${MAX_CLOCK_SKEW_SECONDS} s earlier`, -MAX_CLOCK_SKEW_SECONDS],
  ])('accepts it when the clock reads %s', (_what, skew) => {
    expect(check({ now: AT(Number(TIMESTAMP) + skew) })).toEqual({ valid: true });
  });

  it.each([
    ['301 s old', 301],
    ['301 s in the future', -301],
  ])('refuses a timestamp %s as stale', (_what, age) => {
    expect(check({ now: AT(Number(TIMESTAMP) + age) })).toEqual({ valid: false, reason: 'STALE_TIMESTAMP' });
  });

  it.each([
    ['the timestamp header plus one', { timestamp: String(Number(TIMESTAMP) + 1) }],
    ['the timestamp header minus one', { timestamp: String(Number(TIMESTAMP) - 1) }],
    ['a trailing newline on the body', { rawBody: Buffer.from(`${BODY}\n`) }],
    ['the wrong secret', { secret: '8f742231b10e8888abcd99yyyzzz85a6' }],
    ['a short signature', { signature: SIGNATURE.slice(0, -1) }],
    ['an empty hex part', { signature: 'v0=' }],
    ['an upper-case signature', { signature: `v0=${SIGNATURE.slice(3).toUpperCase()}` }],
    ['a v1= prefix', { signature: `v1=${SIGNATURE.slice(3)}` }],
    ['a signature without prefix', { signature: SIGNATURE.slice(3) }],
    ['a signature with trailing space', { signature: `${SIGNATURE} ` }],
    ['the body re-serialised (decoded)', { rawBody: Buffer.from(decodeURIComponent(BODY)) }],
    [
      'the base64 of the body instead of the body',
      { rawBody: Buffer.from(Buffer.from(BODY).toString('base64')) },
    ],
  ])('refuses %s as a mismatch', (_what, overrides) => {
    expect(check(overrides)).toEqual({ valid: false, reason: 'SIGNATURE_MISMATCH' });
  });

  it.each([
    ['no timestamp', { timestamp: undefined }, 'MISSING_TIMESTAMP'],
    ['an empty timestamp', { timestamp: '' }, 'MISSING_TIMESTAMP'],
    ['a timestamp that is not a number', { timestamp: '1531420618.5' }, 'MALFORMED_TIMESTAMP'],
    ['a negative timestamp', { timestamp: '-1531420618' }, 'MALFORMED_TIMESTAMP'],
    ['no signature', { signature: undefined }, 'MISSING_SIGNATURE'],
    ['an empty signing secret', { secret: '' }, 'NO_SECRET'],
  ])('refuses %s', (_what, overrides, reason) => {
    expect(check(overrides)).toEqual({ valid: false, reason });
  });

  it('signs bytes, not text: a body that is not UTF-8 verifies exactly as sent', () => {
    const bytes = Buffer.from([0x74, 0x65, 0x78, 0x74, 0x3d, 0xff, 0xfe]);
    const signature = slackSignature(SECRET, TIMESTAMP, bytes);
    expect(check({ rawBody: bytes, signature })).toEqual({ valid: true });
    expect(check({ rawBody: Buffer.from(bytes.toString('utf8')), signature })).toEqual({
      valid: false,
      reason: 'SIGNATURE_MISMATCH',
    });
  });
});
