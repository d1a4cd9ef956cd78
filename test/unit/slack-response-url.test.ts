import { describe, expect, it, vi } from 'vitest';
import { logger } from '#shared/logger.ts';
import { slackHooksOnly } from '../../functions/slack/core.ts';
import { acceptableResponseUrl } from '../../functions/slack/signed.ts';

/** The one check both Slack routes put a response_url through before anything is posted to it. */
describe('acceptableResponseUrl', () => {
  const good = 'https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN';

  it("takes Slack's own hooks URL", () => {
    expect(acceptableResponseUrl(good, slackHooksOnly)).toBe(good);
  });

  it.each([
    ['another host', 'https://attacker.example/collect'],
    ['a look-alike host', 'https://hooks.slack.com.attacker.example/x'],
    ['plain http', good.replace('https:', 'http:')],
    ['credentials in the URL', good.replace('https://', 'https://user:pass@')],
    ['more than 2048 characters', `${good}/${'a'.repeat(2048)}`],
    ['no URL at all', 'not a url'],
  ])('refuses %s, logging the host only', (_, value) => {
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    expect(acceptableResponseUrl(value, slackHooksOnly)).toBeUndefined();
    expect(JSON.stringify(warn.mock.calls)).not.toContain('96rGlfmibIGlgcZRskXaIFfN');
    expect(JSON.stringify(warn.mock.calls)).not.toContain('collect');
    warn.mockRestore();
  });

  it('refuses nothing given without a log line', () => {
    expect(acceptableResponseUrl(null, slackHooksOnly)).toBeUndefined();
    expect(acceptableResponseUrl(undefined, slackHooksOnly)).toBeUndefined();
  });
});
