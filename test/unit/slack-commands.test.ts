import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../functions/slack/commands.ts';

describe('slash command grammar', () => {
  describe('deploy', () => {
    it.each([
      ['app and environment', 'hello-world staging', { application: 'hello-world', environment: 'staging' }],
      ['a ref', 'hello-world staging release/1.2', { ref: 'release/1.2' }],
      ['a reason after --', 'hello-world staging -- fix the login bug', { reason: 'fix the login bug' }],
      [
        'a ref and a reason',
        'hello-world staging v1.2.3 -- hotfix for INC-42',
        { ref: 'v1.2.3', reason: 'hotfix for INC-42' },
      ],
      ['a double-quoted reason', 'hello-world staging -- "fix the bug"', { reason: 'fix the bug' }],
      ['a single-quoted reason', "hello-world staging main -- 'fix the bug'", { reason: 'fix the bug' }],
      [
        'a reason in curly quotes',
        'hello-world staging -- \u201cfix the bug\u201d',
        { reason: 'fix the bug' },
      ],
      [
        'a reason that keeps inner quotes',
        'hello-world staging -- say "hi" twice',
        { reason: 'say "hi" twice' },
      ],
      ['a reason containing --', 'hello-world staging -- before -- after', { reason: 'before -- after' }],
      ['extra spaces and a non-breaking space', '  hello-world\u00a0 staging   main  ', { ref: 'main' }],
      ['Slack-escaped characters', 'hello-world staging -- a &lt;b&gt; &amp; c', { reason: 'a <b> & c' }],
      ['a bare -- (no reason)', 'hello-world staging main --', { ref: 'main' }],
    ])('reads %s', (_what, text, expected) => {
      const command = parseCommand(text);
      expect(command).toMatchObject({ kind: 'deploy', ...expected });
    });

    it('does not read the words of a reason without -- as a ref', () => {
      const command = parseCommand('hello-world staging fix the bug');
      expect(command.kind).toBe('invalid');
      expect(command).toMatchObject({ message: expect.stringContaining('a reason goes after `--`') });
    });

    it('refuses a quoted reason without --', () => {
      expect(parseCommand('hello-world staging "fix"').kind).toBe('invalid');
      expect(parseCommand('hello-world staging main "fix it"').kind).toBe('invalid');
    });

    it('refuses a shell command split into words', () => {
      expect(parseCommand('hello-world prod main;rm -rf /').kind).toBe('invalid');
    });

    it('leaves judging names and refs to validation (one word stays one ref)', () => {
      expect(parseCommand('hello-world prod main;rm')).toEqual({
        kind: 'deploy',
        application: 'hello-world',
        environment: 'prod',
        ref: 'main;rm',
      });
      expect(parseCommand('Hello_World ../etc --upload-pack=x')).toMatchObject({
        kind: 'deploy',
        ref: '--upload-pack=x',
      });
    });

    it.each([
      ['one word', 'hello-world'],
      ['only a reason', '-- because'],
    ])('asks for an application and environment given %s', (_what, text) => {
      expect(parseCommand(text)).toMatchObject({
        kind: 'invalid',
        message: expect.stringContaining('name an application'),
      });
    });
  });

  it.each([
    [
      'status',
      'status 01JNTEST000000000000000001',
      { kind: 'status', deploymentId: '01JNTEST000000000000000001' },
    ],
    ['STATUS in capitals', 'STATUS abc', { kind: 'status', deploymentId: 'abc' }],
    [
      'history',
      'history hello-world prod',
      { kind: 'history', application: 'hello-world', environment: 'prod' },
    ],
    ['help', 'help', { kind: 'help' }],
    ['an empty command as help', '   ', { kind: 'help' }],
    [
      'promote',
      'promote hello-world staging prod',
      { kind: 'promote', application: 'hello-world', from: 'staging', to: 'prod' },
    ],
    [
      'promote with a quoted reason',
      'Promote hello-world staging prod -- "weekly release"',
      { kind: 'promote', application: 'hello-world', from: 'staging', to: 'prod', reason: 'weekly release' },
    ],
    [
      'rollback with the release as a number',
      'rollback hello-world prod 41',
      { kind: 'rollback', application: 'hello-world', environment: 'prod', release: 41 },
    ],
    [
      'rollback with a reason',
      'rollback hello-world prod 41 -- login broken in 42',
      {
        kind: 'rollback',
        application: 'hello-world',
        environment: 'prod',
        release: 41,
        reason: 'login broken in 42',
      },
    ],
  ])('reads %s', (_what, text, expected) => {
    expect(parseCommand(text)).toEqual(expected);
  });

  it.each([
    ['status without an id', 'status'],
    ['status with two ids', 'status a b'],
    ['status with a reason', 'status a -- why'],
    ['history with one name', 'history hello-world'],
    ['history with three names', 'history hello-world prod extra'],
    ['control characters', 'hello-world staging ma\u0007in'],
    ['promote with one environment', 'promote hello-world staging'],
    ['promote with a reason not after --', 'promote hello-world staging prod weekly release'],
    ['rollback without a release', 'rollback hello-world prod'],
    ['rollback to a release that is not a number', 'rollback hello-world prod latest'],
    ['rollback to release 0', 'rollback hello-world prod 0'],
    ['rollback to a fractional release', 'rollback hello-world prod 4.5'],
    ['rollback to a release with a sign', 'rollback hello-world prod +41'],
    ['rollback to an overlong release number', 'rollback hello-world prod 12345678901'],
    ['an overlong command', `hello-world staging -- ${'x'.repeat(1_000)}`],
  ])('refuses %s', (_what, text) => {
    expect(parseCommand(text).kind).toBe('invalid');
  });
});
