import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { defaultUrl, type Parsed, parseCli } from '#local/cli/args.ts';
import { UsageError } from '#local/cli/errors.ts';
import { formatDuration, painter, refAndCommit } from '#local/cli/format.ts';
import { createClient } from '#local/cli/http.ts';
import { createProgressView, describeEvents, liveText } from '#local/cli/progress.ts';
import type { DeploymentView, EventView } from '#local/cli/schemas.ts';
import { type AwsCredentials, authFor, signRequest } from '#local/cli/signing.ts';
import { renderHistory, renderLogLine, renderStatus } from '#local/cli/views.ts';
import { type CliIo, main } from '#local/cli.ts';

const plain = painter(false);
const COMMIT = '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';

/** A stream that remembers what was written, optionally pretending to be a terminal. */
function capture(isTTY = false) {
  const stream = {
    text: '',
    isTTY,
    columns: 80,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
  };
  return stream;
}

/** Runs the CLI in-process with fake streams and a fetch that must not be called unless given. */
async function runCli(argv: string[], overrides: Partial<CliIo> = {}) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, {
    stdout,
    stderr,
    env: {},
    fetch: async () => {
      throw new Error('fetch must not be called');
    },
    sleep: async () => {},
    onInterrupt: () => () => {},
    ...overrides,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const jsonResponse = (status: number, body: unknown, type = 'application/json') =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': type } });

const ev = (type: string, at: string, detail: Record<string, unknown> = {}): EventView => ({
  type,
  at,
  detail,
});
const t = (seconds: number) => new Date(Date.UTC(2025, 0, 31, 14, 0, 0) + seconds * 1000).toISOString();

const SUCCESS_EVENTS: EventView[] = [
  ev('REQUESTED', t(0), {
    requester: { type: 'local', user: 'alice' },
    trigger: 'local',
    ref: 'main',
    dryRun: false,
  }),
  ev('VALIDATED', t(1), {
    ref: 'main',
    targetAccount: '123456789012',
    region: 'eu-west-1',
    stackName: 'hello-dev',
  }),
  ev('BUILD_STARTED', t(2), { buildId: 'local:build-1' }),
  ev('BUILD_FINISHED', t(36), { buildId: 'local:build-1', status: 'SUCCEEDED', resolvedCommit: COMMIT }),
  ev('LOCK_ACQUIRED', t(37), { leaseExpiresAt: t(4000) }),
  ev('ROLE_ASSUMED', t(38), {
    assumedRoleArn: 'arn:aws:sts::123456789012:assumed-role/crossdeploy-deploy/01JDEP',
    account: '123456789012',
  }),
  ev('DEPLOY_STARTED', t(39), { buildId: 'local:deploy-1' }),
  ev('DEPLOY_FINISHED', t(101), { buildId: 'local:deploy-1', status: 'SUCCEEDED' }),
  ev('SUCCEEDED', t(102)),
  ev('LOCK_RELEASED', t(103)),
];

const deployment = (overrides: Partial<DeploymentView> = {}): DeploymentView => ({
  deploymentId: '01JDEP',
  application: 'hello',
  environment: 'dev',
  ref: 'main',
  requester: { type: 'local', user: 'alice' },
  trigger: 'local',
  dryRun: false,
  status: 'RUNNING',
  requestedAt: t(0),
  updatedAt: t(0),
  ...overrides,
});

describe('argument parsing', () => {
  const globalsOf = (parsed: Parsed) => {
    if (!('globals' in parsed)) throw new Error('parsed as a help request');
    return parsed.globals;
  };

  it('parses deploy with its options and the default local URL', () => {
    const parsed = parseCli(
      ['deploy', 'hello', 'dev', '--ref', 'v1.2', '--reason', 'hotfix', '--dry-run', '--wait'],
      {},
    );
    expect(parsed.command).toEqual({
      name: 'deploy',
      application: 'hello',
      environment: 'dev',
      ref: 'v1.2',
      reason: 'hotfix',
      dryRun: true,
      overrideFreeze: false,
      wait: true,
    });
    expect(globalsOf(parsed)).toEqual({ url: new URL('http://127.0.0.1:3000'), json: false });
  });

  it('parses promote with its target environment and --override-freeze', () => {
    expect(
      parseCli(['promote', 'hello', 'staging', 'prod', '--reason', 'weekly', '--override-freeze'], {})
        .command,
    ).toEqual({
      name: 'promote',
      application: 'hello',
      from: 'staging',
      to: 'prod',
      reason: 'weekly',
      dryRun: false,
      overrideFreeze: true,
      wait: false,
    });
  });

  it('parses rollback with the release as a number', () => {
    expect(parseCli(['rollback', 'hello', 'prod', '41', '--dry-run', '--wait'], {}).command).toEqual({
      name: 'rollback',
      application: 'hello',
      environment: 'prod',
      release: 41,
      dryRun: true,
      overrideFreeze: false,
      wait: true,
    });
  });

  it('accepts global options anywhere on the line', () => {
    const parsed = parseCli(
      ['--json', 'history', 'hello', '--url', 'http://127.0.0.1:4000', 'dev', '--limit', '5'],
      {},
    );
    expect(parsed.command).toEqual({ name: 'history', application: 'hello', environment: 'dev', limit: 5 });
    expect(globalsOf(parsed).url.href).toBe('http://127.0.0.1:4000/');
    expect(globalsOf(parsed).json).toBe(true);
  });

  it('takes the URL from CROSSDEPLOY_URL, else from PORT', () => {
    expect(defaultUrl({ CROSSDEPLOY_URL: 'https://x.example', PORT: '9' })).toBe('https://x.example');
    expect(defaultUrl({ PORT: '4321' })).toBe('http://127.0.0.1:4321');
    expect(defaultUrl({})).toBe('http://127.0.0.1:3000');
  });

  it('takes the token from --token over CROSSDEPLOY_API_TOKEN', () => {
    const env = { CROSSDEPLOY_API_TOKEN: 'env-token' };
    expect(globalsOf(parseCli(['apps'], env)).token).toBe('env-token');
    expect(globalsOf(parseCli(['apps', '--token', 'flag'], env)).token).toBe('flag');
  });

  it('treats --help on a command as that command’s help', () => {
    expect(parseCli(['logs', '--help'], {}).command).toEqual({ name: 'help', topic: 'logs' });
    expect(parseCli(['help', 'deploy'], {}).command).toEqual({ name: 'help', topic: 'deploy' });
    expect(parseCli(['-h'], {}).command).toEqual({ name: 'help' });
  });

  it('shows help even when CROSSDEPLOY_URL is broken', () => {
    expect(parseCli(['--help'], { CROSSDEPLOY_URL: 'nonsense' })).toEqual({ command: { name: 'help' } });
    expect(() => parseCli(['apps'], { CROSSDEPLOY_URL: 'nonsense' })).toThrow(/"nonsense" is not a URL/);
  });

  it.each([
    [[], /no command given/],
    [['launch'], /unknown command "launch"/],
    [['deploy', 'hello'], /missing arguments: `deploy` takes <application> <environment>/],
    [['status', 'a', 'b'], /too many arguments/],
    [['status', '--wait', '01JDEP'], /--wait is not an option of `status`/],
    [['apps', '--bogus'], /unknown option '--bogus'/],
    [['deploy', 'hello', 'dev', '--ref'], /--ref/],
    [['history', 'hello', 'dev', '--limit', '0'], /--limit must be a whole number from 1 to 100/],
    [['history', 'hello', 'dev', '--limit', '2.5'], /--limit must be a whole number/],
    [['status', '../../applications'], /is not a deployment id/],
    [['deploy', ' ', 'dev'], /<application> must not be empty/],
    [['apps', '--url', 'not a url'], /is not a URL/],
    [['apps', '--url', 'ftp://127.0.0.1'], /must be http or https/],
    [['apps', '--url', 'http://u:p@127.0.0.1:3000'], /must not contain credentials/],
    [['promote', 'hello', 'staging'], /missing arguments: `promote` takes <application> <from> <to>/],
    [['promote', 'hello', 'staging', 'prod', '--ref', 'main'], /--ref is not an option of `promote`/],
    [['rollback', 'hello', 'prod'], /`rollback` takes <application> <environment> <release>/],
    [['rollback', 'hello', 'prod', 'v41'], /<release> must be a release number .*not "v41"/],
    [['rollback', 'hello', 'prod', '-1'], /unknown option|<release> must be a release number/],
    [['rollback', 'hello', 'prod', '0'], /<release> must be a release number/],
    [['rollback', 'hello', 'prod', '4.5'], /<release> must be a release number/],
    [['status', '01JDEP', '--override-freeze'], /--override-freeze is not an option of `status`/],
  ])('rejects %j as a usage error', (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(UsageError);
    expect(() => parseCli(argv, {})).toThrow(message);
  });

  it('exits 2 on a usage error, sends nothing, and points at the command’s help', async () => {
    const result = await runCli(['history', 'hello', 'dev', '--limit', 'lots']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('crossdeploy: --limit must be a whole number');
    expect(result.stderr).toContain('Run `crossdeploy history --help` for usage.');
  });

  it('prints help on stdout and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^crossdeploy — deploy SAM applications/);
    expect(result.stdout).toContain('Exit codes: 0 success, 1 deployment failed or rejected');
  });
});

describe('progress lines', () => {
  it('renders each step of a successful deployment as a plain line', () => {
    expect(describeEvents(SUCCESS_EVENTS).map((step) => step.text)).toEqual([
      'requested by alice (local) (ref main)',
      'validated: account 123456789012, eu-west-1, stack hello-dev',
      'build started',
      'build finished in 34s, commit 1a2b3c4',
      'lock acquired',
      'role assumed in account 123456789012 (crossdeploy-deploy)',
      'deploy started',
      'deploy finished in 1m02s',
      'succeeded in 1m42s',
      'lock released',
    ]);
  });

  it('names the release a successful deployment became', () => {
    expect(describeEvents([ev('SUCCEEDED', t(102), { release: 42 })])[0]?.text).toBe('succeeded, release 42');
  });

  it('says what a promotion and a rollback deploy instead of a build', () => {
    const validated = (detail: Record<string, unknown>) =>
      describeEvents([
        ev('VALIDATED', t(1), { targetAccount: '123456789012', resolvedCommit: COMMIT, ...detail }),
      ])[0]?.text;
    expect(validated({ kind: 'promotion', sourceEnvironment: 'staging' })).toBe(
      'validated: account 123456789012, promoting the build of 1a2b3c4 from staging',
    );
    expect(validated({ kind: 'rollback', sourceEnvironment: 'prod', rollbackOf: 41 })).toBe(
      'validated: account 123456789012, redeploying release 41 (the build of 1a2b3c4)',
    );
  });

  it('shows a freeze override with the window, its end and who overrode it', () => {
    const steps = describeEvents([
      ev('FREEZE_OVERRIDDEN', t(1), {
        window: 'year-end',
        endsAt: '2027-01-05T00:00:00.000Z',
        by: { type: 'iam', arn: 'x', principal: 'arn:aws:iam::123456789012:role/Release' },
      }),
    ]);
    expect(steps).toEqual([
      {
        mark: 'warn',
        text: 'freeze window "year-end" (until 2027-01-05T00:00:00.000Z) overridden by arn:aws:iam::123456789012:role/Release',
      },
    ]);
  });

  it('explains a skipped promotion with its reason, as a warning rather than a failure', () => {
    const steps = describeEvents([
      ev('SKIPPED', t(2), { code: 'ALREADY_DEPLOYED', message: 'prod already runs this build output' }),
    ]);
    expect(steps).toEqual([
      { mark: 'warn', text: 'skipped: ALREADY_DEPLOYED — prod already runs this build output' },
    ]);
  });

  it('does not announce a build for a promotion passing through the BUILDING phase', () => {
    const promotion = deployment({ kind: 'promotion', phase: 'BUILDING' });
    expect(liveText(promotion, SUCCESS_EVENTS.slice(0, 2), 0)).toBe('preparing the recorded build output');
    expect(liveText(deployment({ phase: 'BUILDING' }), SUCCESS_EVENTS.slice(0, 2), 0)).toBe(
      'starting the build',
    );
  });

  it('leaves the job starts to the live line on a terminal', () => {
    const texts = describeEvents(SUCCESS_EVENTS, true).map((step) => step.text);
    expect(texts).not.toContain('build started');
    expect(texts).not.toContain('deploy started');
    expect(texts).toContain('build finished in 34s, commit 1a2b3c4');
  });

  it('explains a failure with its code and message', () => {
    const events = [
      ...SUCCESS_EVENTS.slice(0, 7),
      ev('DEPLOY_FINISHED', t(60), { status: 'FAILED' }),
      ev('SETTLED', t(61)),
      ev('FAILED', t(62), { code: 'DEPLOY_FAILED', message: 'the deploy job ended FAILED' }),
    ];
    const steps = describeEvents(events).slice(-3);
    expect(steps).toEqual([
      { mark: 'fail', text: 'deploy failed after 21s' },
      { mark: 'info', text: 'settled' },
      { mark: 'fail', text: 'failed after 1m02s: DEPLOY_FAILED — the deploy job ended FAILED' },
    ]);
  });

  it('says when the environment is busy', () => {
    const events = [
      ...SUCCESS_EVENTS.slice(0, 4),
      ev('REJECTED', t(40), {
        code: 'ENVIRONMENT_BUSY',
        message: 'hello/dev is busy with deployment 01JOTHER',
      }),
    ];
    expect(describeEvents(events).at(-1)).toEqual({
      mark: 'fail',
      text: 'environment busy: hello/dev is busy with deployment 01JOTHER',
    });
  });

  it('strips terminal escape sequences from server-provided text', () => {
    const events = [
      ev('FAILED', t(1), { code: 'DEPLOY_FAILED', message: 'bad\u001b[2J\u001b]0;pwned\u0007 stack' }),
    ];
    expect(describeEvents(events)[0]?.text).toBe('failed: DEPLOY_FAILED — bad stack');
  });

  it('shows the running job with its elapsed time', () => {
    const building = SUCCESS_EVENTS.slice(0, 3);
    expect(liveText(deployment({ phase: 'BUILDING' }), building, Date.parse(t(14)))).toBe(
      'build running 12s',
    );
    const deploying = SUCCESS_EVENTS.slice(0, 7);
    expect(liveText(deployment({ phase: 'DEPLOYING' }), deploying, Date.parse(t(99)))).toBe(
      'deploy running 1m00s',
    );
    expect(liveText(deployment({ status: 'QUEUED' }), [], Date.parse(t(1)))).toBe('queued');
    expect(liveText(deployment({ phase: 'WAITING_FOR_LOCK' }), SUCCESS_EVENTS.slice(0, 4), 0)).toBe(
      'waiting for the lock',
    );
    expect(liveText(deployment({ status: 'SUCCEEDED' }), SUCCESS_EVENTS, 0)).toBeUndefined();
  });

  it('prints one plain line per new event when piped, never twice', () => {
    const out = capture(false);
    const view = createProgressView(out, { live: false, paint: plain });
    view.update(deployment(), SUCCESS_EVENTS.slice(0, 2), 0);
    view.update(deployment(), SUCCESS_EVENTS.slice(0, 2), 0);
    view.tick(0);
    view.update(deployment({ status: 'SUCCEEDED' }), SUCCESS_EVENTS, 0);
    view.finish();
    expect(out.text.split('\n')).toEqual([...describeEvents(SUCCESS_EVENTS).map((step) => step.text), '']);
    expect(out.text).not.toContain('\r');
  });

  it('redraws a live line in place on a terminal and clears it at the end', () => {
    const out = capture(true);
    const view = createProgressView(out, { live: true, paint: plain });
    view.update(deployment({ phase: 'BUILDING' }), SUCCESS_EVENTS.slice(0, 3), Date.parse(t(5)));
    expect(out.text).toContain('✓ validated: account 123456789012');
    expect(out.text).toMatch(/build running 3s$/);
    view.tick(Date.parse(t(6)));
    expect(out.text.endsWith(' build running 4s')).toBe(true);
    expect(out.text.split('\r\u001b[2K').at(-1)).toMatch(/^\S build running 4s$/);
    view.update(deployment({ status: 'SUCCEEDED' }), SUCCESS_EVENTS, Date.parse(t(104)));
    view.finish();
    expect(out.text).toContain('\r\u001b[2K✓ build finished in 34s, commit 1a2b3c4\n');
    expect(out.text.endsWith('· lock released\n')).toBe(true);
  });

  describe('whom a queued deployment waits behind', () => {
    const BUILT = SUCCESS_EVENTS.slice(0, 4);
    const waitingEvent = ev('LOCK_WAITING', t(37), { behind: '01JHOLDER', reason: 'HOLDS_LOCK' });
    const waiting = (deploymentId: string, reason: string) =>
      deployment({
        phase: 'WAITING_FOR_LOCK',
        waitStartedAt: t(37),
        waitingBehind: { deploymentId, reason },
      });

    it('shows the current blocker from the record in the live line, with the time waited', () => {
      expect(liveText(waiting('01JHOLDER', 'HOLDS_LOCK'), [...BUILT, waitingEvent], Date.parse(t(49)))).toBe(
        'waiting 12s for the environment: deployment 01JHOLDER is deploying',
      );
      // The event still names the first blocker; the record has moved on.
      expect(
        liveText(waiting('01JEARLIER', 'EARLIER_REQUEST'), [...BUILT, waitingEvent], Date.parse(t(97))),
      ).toBe('waiting 1m00s for the environment: an earlier request, 01JEARLIER, goes first');
      // Once the lock is acquired, the leftover waitingBehind is not shown.
      const acquired = { ...waiting('01JHOLDER', 'HOLDS_LOCK'), phase: 'DEPLOYING' };
      expect(liveText(acquired, [...BUILT, waitingEvent], 0)).toBe('assuming the target role');
    });

    it('prints a new line when piped each time the blocker changes, and the first one only once', () => {
      const out = capture(false);
      const view = createProgressView(out, { live: false, paint: plain });
      view.update(waiting('01JHOLDER', 'HOLDS_LOCK'), [...BUILT, waitingEvent], 0);
      view.update(waiting('01JHOLDER', 'HOLDS_LOCK'), [...BUILT, waitingEvent], 0);
      view.update(waiting('01JEARLIER', 'EARLIER_REQUEST'), [...BUILT, waitingEvent], 0);
      view.update(waiting('01JEARLIER', 'EARLIER_REQUEST'), [...BUILT, waitingEvent], 0);
      view.update(waiting('01JNEXT', 'HOLDS_LOCK'), [...BUILT, waitingEvent], 0);
      view.finish();
      expect(out.text.split('\n').slice(4)).toEqual([
        'waiting for the environment: deployment 01JHOLDER is deploying',
        'now waiting: an earlier request, 01JEARLIER, goes first',
        'now waiting: deployment 01JNEXT is deploying',
        '',
      ]);
    });

    it('does not repeat the first blocker when the record is read before its LOCK_WAITING event', () => {
      const out = capture(false);
      const view = createProgressView(out, { live: false, paint: plain });
      view.update(waiting('01JHOLDER', 'HOLDS_LOCK'), BUILT, 0);
      view.update(waiting('01JHOLDER', 'HOLDS_LOCK'), [...BUILT, waitingEvent], 0);
      view.finish();
      expect(out.text.match(/01JHOLDER/g)).toHaveLength(1);
    });

    it('updates the live line on a terminal when the blocker changes', () => {
      // What a terminal shows last: the live line is redrawn after a clear-line, below printed lines.
      const lastLine = (text: string) =>
        text.split(new RegExp(`\n|\r${String.fromCharCode(27)}\\[2K`)).at(-1);
      const out = capture(true);
      const view = createProgressView(out, { live: true, paint: plain });
      view.update(waiting('01JHOLDER', 'HOLDS_LOCK'), [...BUILT, waitingEvent], Date.parse(t(40)));
      expect(lastLine(out.text)).toMatch(
        /^\S waiting 3s for the environment: deployment 01JHOLDER is deploying$/,
      );
      view.update(waiting('01JEARLIER', 'EARLIER_REQUEST'), [...BUILT, waitingEvent], Date.parse(t(41)));
      expect(out.text).toContain('· now waiting: an earlier request, 01JEARLIER, goes first\n');
      expect(lastLine(out.text)).toMatch(
        /^\S waiting 4s for the environment: an earlier request, 01JEARLIER, goes first$/,
      );
      view.finish();
    });

    it('shows the current blocker in status while waiting, and not once it is over', () => {
      const options = { paint: plain, now: Date.parse(t(162)), timeZone: 'UTC', decorated: false };
      const lines = renderStatus(waiting('01JEARLIER', 'EARLIER_REQUEST'), [...BUILT, waitingEvent], options);
      expect(lines).toContain('waiting     an earlier request, 01JEARLIER, goes first (for 2m05s)');
      const done = renderStatus(
        { ...waiting('01JEARLIER', 'EARLIER_REQUEST'), status: 'SUCCEEDED', phase: undefined },
        SUCCESS_EVENTS,
        options,
      );
      expect(done.join('\n')).not.toMatch(/^waiting/m);
    });
  });
});

describe('history table', () => {
  it('lists id, status, ref and commit, requester, time, duration and error code', () => {
    const items: DeploymentView[] = [
      deployment({
        deploymentId: '01JC',
        status: 'RUNNING',
        requestedAt: t(600),
        requester: { type: 'iam', arn: 'x', principal: 'arn:aws:iam::123456789012:role/Release' },
      }),
      deployment({
        deploymentId: '01JB',
        status: 'FAILED',
        resolvedCommit: COMMIT,
        finishedAt: t(95),
        errorCode: 'DEPLOY_FAILED',
      }),
      deployment({
        deploymentId: '01JA',
        status: 'SUCCEEDED',
        ref: COMMIT,
        resolvedCommit: COMMIT,
        dryRun: true,
        finishedAt: t(3725),
      }),
    ];
    const lines = renderHistory(items, { paint: plain, now: Date.parse(t(645)), timeZone: 'UTC' });
    expect(lines).toEqual([
      'ID    STATUS               RELEASE  KIND    REF           REQUESTER     REQUESTED            DURATION  ERROR          REASON',
      '01JC  RUNNING              -        deploy  main          role/Release  2025-01-31 14:10:00  45s…',
      '01JB  FAILED               -        deploy  main@1a2b3c4  local:alice   2025-01-31 14:00:00  1m35s     DEPLOY_FAILED',
      '01JA  SUCCEEDED (dry run)  -        deploy  1a2b3c4       local:alice   2025-01-31 14:00:00  1h02m',
    ]);
  });

  it('shows the kind, release, source and freeze override of promotions, rollbacks and skips', () => {
    const source = { deploymentId: '01JSRC', environment: 'staging', release: 7 };
    const done = { resolvedCommit: COMMIT, finishedAt: t(102) };
    const items: DeploymentView[] = [
      deployment({
        ...done,
        deploymentId: '01JD',
        status: 'SKIPPED',
        kind: 'promotion',
        source,
        requester: { type: 'schedule', scheduleName: 'promote-weekly' },
        errorCode: 'ALREADY_DEPLOYED',
      }),
      deployment({
        ...done,
        deploymentId: '01JC',
        status: 'SUCCEEDED',
        release: 43,
        kind: 'rollback',
        rollbackOf: 41,
        source: { deploymentId: '01JR41', environment: 'dev', release: 41 },
        freezeOverride: true,
      }),
      deployment({
        ...done,
        deploymentId: '01JB',
        status: 'SUCCEEDED',
        release: 42,
        kind: 'promotion',
        source,
      }),
    ];
    const lines = renderHistory(items, { paint: plain, now: Date.parse(t(645)), timeZone: 'UTC' });
    expect(lines.map((line) => line.split(/\s{2,}/).slice(0, 4))).toEqual([
      ['ID', 'STATUS', 'RELEASE', 'KIND'],
      ['01JD', 'SKIPPED', '-', 'promotion from staging (release 7)'],
      ['01JC', 'SUCCEEDED', '43', 'rollback of release 41, freeze override'],
      ['01JB', 'SUCCEEDED', '42', 'promotion from staging (release 7)'],
    ]);
    expect(lines[1]).toMatch(/ALREADY_DEPLOYED$/);
  });

  it('shows a skipped promotion in status as an outcome, not an error', () => {
    const skipped = deployment({
      status: 'SKIPPED',
      kind: 'promotion',
      source: { deploymentId: '01JSRC', environment: 'staging', release: 7 },
      finishedAt: t(2),
      errorCode: 'ALREADY_DEPLOYED',
      errorMessage: 'dev already runs this build output',
    });
    const lines = renderStatus(skipped, [], { paint: plain, now: 0, timeZone: 'UTC', decorated: false });
    expect(lines).toContain(
      'kind        promotion from staging (release 7), build output of deployment 01JSRC',
    );
    expect(lines).toContain('outcome     ALREADY_DEPLOYED: dev already runs this build output');
    expect(lines.join('\n')).not.toContain('error');
  });

  it('formats durations and refs compactly', () => {
    expect([
      formatDuration(0),
      formatDuration(59_999),
      formatDuration(61_000),
      formatDuration(7_260_000),
    ]).toEqual(['0s', '59s', '1m01s', '2h01m']);
    expect(refAndCommit(undefined, undefined)).toBe('-');
    expect(refAndCommit('v1', COMMIT)).toBe('v1@1a2b3c4');
  });

  it('prints log lines with time and job', () => {
    const line = { job: 'build', at: '2025-01-31T14:00:05.000Z', message: 'Build Succeeded\u001b[0m' };
    expect(renderLogLine(line, plain, 'UTC')).toBe('14:00:05 build  Build Succeeded');
  });
});

describe('request signing', () => {
  const credentials: AwsCredentials = {
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  };

  it('signs execute-api URLs with the region from the host, and never sends the token there', () => {
    const url = new URL('https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com');
    expect(authFor(url, undefined, {})).toEqual({ kind: 'sigv4', region: 'eu-west-1' });
    expect(authFor(url, 'secret', {})).toEqual({ kind: 'sigv4', region: 'eu-west-1' });
  });

  it('does not sign loopback URLs', () => {
    for (const href of ['http://127.0.0.1:3000', 'http://localhost:3000', 'http://[::1]:3000']) {
      expect(authFor(new URL(href), undefined, { AWS_REGION: 'eu-west-1' })).toEqual({ kind: 'none' });
    }
  });

  it('uses the bearer token for a local server on another address, and SigV4 for a custom domain', () => {
    expect(authFor(new URL('http://10.0.0.5:3000'), 'tok', {})).toEqual({ kind: 'bearer', token: 'tok' });
    expect(authFor(new URL('https://deploy.example.com'), undefined, { AWS_REGION: 'us-east-2' })).toEqual({
      kind: 'sigv4',
      region: 'us-east-2',
    });
    expect(() => authFor(new URL('https://deploy.example.com'), undefined, {})).toThrow(/set AWS_REGION/);
  });

  it('produces a SigV4 Authorization header for execute-api that matches the request sent', async () => {
    const date = new Date('2015-08-30T12:36:00Z');
    const request = {
      url: new URL(
        'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/deployments?application=hello&environment=dev%20x',
      ),
      method: 'GET',
      headers: { accept: 'application/json', 'user-agent': 'crossdeploy-cli' },
    };
    const signed = await signRequest(request, 'eu-west-1', credentials, date);
    const authorization = signed.headers.authorization ?? '';
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20150830\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
    );
    expect(signed.headers['x-amz-date']).toBe('20150830T123600Z');
    expect(signed.headers.host).toBeUndefined();
    // Recomputed here from what would go on the wire: the signature covers exactly that request.
    expect(authorization.split('Signature=')[1]).toBe(independentSignature(signed, 'eu-west-1', date));
  });

  it('adds the session token of temporary credentials', async () => {
    const signed = await signRequest(
      {
        url: new URL('https://x1.execute-api.us-east-1.amazonaws.com/applications'),
        method: 'GET',
        headers: {},
      },
      'us-east-1',
      { ...credentials, sessionToken: 'SESSION' },
      new Date('2025-01-31T00:00:00Z'),
    );
    expect(signed.headers['x-amz-security-token']).toBe('SESSION');
    expect(signed.headers.authorization).toContain('x-amz-security-token');
  });

  it('signs requests to a deployed API and leaves local ones alone', async () => {
    const sent: Request[] = [];
    const fetchSpy: typeof fetch = async (input, init) => {
      sent.push(new Request(input, init));
      return jsonResponse(200, { items: [] });
    };
    const options = {
      fetch: fetchSpy,
      credentials: async () => async () => credentials,
      sleep: async () => {},
    };
    const remote = new URL('https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com');
    await createClient({ ...options, baseUrl: remote, auth: authFor(remote, undefined, {}) }).get(
      '/applications',
    );
    const local = new URL('http://127.0.0.1:3000');
    await createClient({ ...options, baseUrl: local, auth: authFor(local, undefined, {}) }).get(
      '/applications',
    );
    const lan = new URL('http://10.1.2.3:3000');
    await createClient({ ...options, baseUrl: lan, auth: authFor(lan, 'tok', {}) }).get('/applications');

    expect(sent[0]?.headers.get('authorization')).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, /,
    );
    expect(sent[1]?.headers.get('authorization')).toBeNull();
    expect(sent[1]?.headers.get('x-amz-date')).toBeNull();
    expect(sent[2]?.headers.get('authorization')).toBe('Bearer tok');
  });

  /** SigV4 by the book (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), GET only. */
  function independentSignature(
    request: { url: URL; method: string; headers: Record<string, string> },
    region: string,
    date: Date,
  ): string {
    const sha = (data: string) => createHash('sha256').update(data).digest('hex');
    const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const enc = (s: string) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const signedHeaders =
      /SignedHeaders=([^,]+)/.exec(request.headers.authorization ?? '')?.[1]?.split(';') ?? [];
    const headers: Record<string, string> = { ...request.headers, host: request.url.host };
    const amzDate = date.toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = amzDate.slice(0, 8);
    const canonicalUri = request.url.pathname
      .split('/')
      .map((segment) => enc(segment))
      .join('/');
    const canonicalQuery = [...request.url.searchParams]
      .map(([k, v]) => `${enc(k)}=${enc(v)}`)
      .sort()
      .join('&');
    const canonicalRequest = [
      request.method,
      canonicalUri,
      canonicalQuery,
      ...signedHeaders.map((name) => `${name}:${headers[name]?.trim()}`),
      '',
      signedHeaders.join(';'),
      sha(''),
    ].join('\n');
    const scope = `${day}/${region}/execute-api/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha(canonicalRequest)].join('\n');
    let key = hmac(`AWS4${credentials.secretAccessKey}`, day);
    for (const part of [region, 'execute-api', 'aws4_request']) key = hmac(key, part);
    return createHmac('sha256', key).update(stringToSign).digest('hex');
  }
});

describe('exit codes', () => {
  it('exits 0 for a skipped promotion: the target already runs what was asked for', async () => {
    const skipped = deployment({ status: 'SKIPPED', kind: 'promotion', errorCode: 'ALREADY_DEPLOYED' });
    const result = await runCli(['status', '01JDQ2Z7R4K8V9XG3N5T6W1YBC'], {
      fetch: async (input) =>
        String(input).endsWith('/events')
          ? jsonResponse(200, { items: [ev('SKIPPED', t(2), { code: 'ALREADY_DEPLOYED' })] })
          : jsonResponse(200, skipped),
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('skipped: ALREADY_DEPLOYED');
  });

  it('exits 1 with the problem detail and code when the API refuses', async () => {
    const problem = {
      type: 'https://crossdeploy.dev/problems/environment-busy',
      title: 'Environment busy',
      status: 409,
      detail: 'hello/dev is busy with deployment 01JOTHER',
      code: 'ENVIRONMENT_BUSY',
      deploymentId: '01JREJ',
    };
    const result = await runCli(['deploy', 'hello', 'dev'], {
      fetch: async () => jsonResponse(409, problem, 'application/problem+json'),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'Environment busy (409 ENVIRONMENT_BUSY): hello/dev is busy with deployment 01JOTHER',
    );
    expect(result.stderr).toContain('recorded as deployment 01JREJ');
  });

  it('prints the problem document on stdout with --json', async () => {
    const problem = {
      type: 'https://crossdeploy.dev/problems/not-found',
      title: 'Not found',
      status: 404,
      detail: 'no deployment "01JDQ2Z7R4K8V9XG3N5T6W1YBC"',
      code: 'NOT_FOUND',
    };
    const result = await runCli(['status', '01JDQ2Z7R4K8V9XG3N5T6W1YBC', '--json'], {
      fetch: async () => jsonResponse(404, problem, 'application/problem+json'),
    });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual(problem);
  });

  it('exits 2 when crossdeploy cannot be reached, and says how to start it', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const result = await runCli(['apps'], {
      fetch: async () => {
        throw refused;
      },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'cannot reach crossdeploy at http://127.0.0.1:3000 (ECONNREFUSED) — is `npm start` running?',
    );
  });

  it('exits 2 when the URL answers with something that is not the API', async () => {
    const result = await runCli(['apps'], {
      fetch: async () =>
        new Response('<html></html>', { status: 200, headers: { 'content-type': 'text/html' } }),
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/not JSON: is --url pointing at a crossdeploy API\?/);
  });

  it('retries a POST after a 503 with the same Idempotency-Key', async () => {
    const keys: (string | null)[] = [];
    let calls = 0;
    const result = await runCli(['deploy', 'hello', 'dev'], {
      fetch: async (input, init) => {
        keys.push(new Request(input, init).headers.get('idempotency-key'));
        calls++;
        if (calls === 1) return jsonResponse(503, { message: 'Service Unavailable' });
        return jsonResponse(202, { deploymentId: '01JNEW', status: 'QUEUED', ref: 'main' });
      },
    });
    expect(result.code).toBe(0);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(result.stdout).toBe(
      'deployment 01JNEW queued (hello/dev, ref main)\nstatus: http://127.0.0.1:3000/deployments/01JNEW\n',
    );
  });

  it('waits for the outcome event when the record reads final first (the lock is released before the final write)', async () => {
    // The events a server has written when its record already reads SUCCEEDED: lock released, outcome not yet.
    const before = [...SUCCESS_EVENTS.slice(0, 8), ev('LOCK_RELEASED', t(101))];
    const after = [...before, ev('SUCCEEDED', t(102), { release: 7 })];
    let eventReads = 0;
    const result = await runCli(['deploy', 'hello', 'dev', '--wait'], {
      now: () => 0,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        const path = new URL(request.url).pathname;
        if (request.method === 'POST') {
          return jsonResponse(202, { deploymentId: '01JDEP', status: 'QUEUED', ref: 'main' });
        }
        if (path.endsWith('/follow'))
          return jsonResponse(200, {
            deployment: deployment({ status: 'SUCCEEDED', release: 7 }),
            items: eventReads++ === 0 ? before : after,
          });
        throw new Error(`--wait reads only the follow route, not ${path}`);
      },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('succeeded in 1m42s, release 7\n');
    expect(result.stdout).not.toMatch(/^succeeded$/m);
  });

  it('follows with one GET per poll, 1 s apart for the first 10 s, then backing off to 5 s while nothing changes', async () => {
    let clock = 0;
    const sleeps: number[] = [];
    const paths: string[] = [];
    const changes = new Map([
      [0, [SUCCESS_EVENTS[0]!]],
      [30_000, SUCCESS_EVENTS.slice(0, 3)],
    ]);
    const result = await runCli(['deploy', 'hello', 'dev', '--wait'], {
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      fetch: async (input, init) => {
        const request = new Request(input, init);
        const url = new URL(request.url);
        if (request.method === 'POST') {
          return jsonResponse(202, { deploymentId: '01JDEP', status: 'QUEUED', ref: 'main' });
        }
        paths.push(`${url.pathname}${url.search ? '?cursor' : ''}`);
        const done = clock >= 60_000;
        const at = [...changes.keys()].filter((t) => t <= clock).pop() ?? 0;
        const items = done ? SUCCESS_EVENTS : changes.get(at)!;
        return jsonResponse(200, {
          deployment: done
            ? deployment({ status: 'SUCCEEDED', release: 7 })
            : deployment({ status: 'RUNNING' }),
          items,
          nextCursor: Buffer.from(items.at(-1)!.at).toString('base64url'),
        });
      },
    });
    expect(result.code).toBe(0);
    expect(new Set(paths)).toEqual(
      new Set(['/deployments/01JDEP/follow', '/deployments/01JDEP/follow?cursor']),
    );
    // 1 s for the first 10 s; then 1, 2, 4, 5, 5 s... while nothing changes; back to 1 s after the change at 30 s.
    expect(sleeps.slice(0, 10)).toEqual(Array(10).fill(1_000));
    expect(sleeps.slice(10, 15)).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    const afterChange = sleeps.findIndex((_, i) => sleeps.slice(0, i).reduce((a, b) => a + b, 0) >= 30_000);
    expect(sleeps[afterChange]).toBe(1_000);
    expect(Math.max(...sleeps)).toBe(5_000);
  });
});
