import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { painter } from '#local/cli/format.ts';
import type { DeploymentView } from '#local/cli/schemas.ts';
import { renderHistory, renderStatus } from '#local/cli/views.ts';
import { type CliIo, main } from '#local/cli.ts';

/** What a newcomer meets first: version, typos, refusals that say what to do instead, well-formed ids. */

const plain = painter(false);
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function capture() {
  const stream = {
    text: '',
    isTTY: false,
    columns: 80,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
  };
  return stream;
}

interface Sent {
  method: string;
  path: string;
}

/** The CLI in-process against a fetch that answers from `routes` ("METHOD /path" -> [status, body]). */
async function runCli(argv: string[], routes: Record<string, [number, unknown]> = {}) {
  const stdout = capture();
  const stderr = capture();
  const sent: Sent[] = [];
  const fetch: CliIo['fetch'] = async (input, init) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    sent.push({ method, path: url.pathname });
    const route = routes[`${method} ${url.pathname}`];
    if (!route) throw new Error(`unexpected ${method} ${url.pathname}`);
    const [status, body] = route;
    const type = status >= 400 ? 'application/problem+json' : 'application/json';
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': type } });
  };
  const code = await main(argv, {
    stdout,
    stderr,
    env: {},
    fetch,
    sleep: async () => {},
    onInterrupt: () => () => {},
  });
  return { code, stdout: stdout.text, stderr: stderr.text, sent };
}

const APPLICATIONS: [number, unknown] = [
  200,
  {
    items: [
      {
        name: 'hello-world',
        defaultRef: 'main',
        environments: [
          {
            name: 'staging',
            accountId: '111111111111',
            region: 'eu-west-1',
            stackName: 'hello-world-staging',
          },
          { name: 'prod', accountId: '222222222222', region: 'eu-west-1', stackName: 'hello-world-prod' },
        ],
      },
    ],
  },
];

const problem = (status: number, code: string, detail: string, extra: Record<string, unknown> = {}) =>
  [status, { type: 'about:blank', title: 'Refused', status, code, detail, ...extra }] as [number, unknown];

describe('crossdeploy --version', () => {
  it("prints the package's version and exits 0 without calling the API", async () => {
    const run = await runCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`crossdeploy ${VERSION}\n`);
    expect(run.sent).toEqual([]);
  });

  it('is listed in the help', async () => {
    const run = await runCli(['--help']);
    expect(run.stdout).toMatch(/^\s+--version\s/m);
  });
});

describe('did you mean', () => {
  it('suggests the closest command for a misspelt one (exit 2, nothing sent)', async () => {
    const run = await runCli(['deplyo', 'hello-world', 'staging']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "deplyo"; did you mean "deploy"?');
    expect(run.sent).toEqual([]);
  });

  it('suggests nothing when no command is close', async () => {
    const run = await runCli(['xyzzy']);
    expect(run.code).toBe(2);
    expect(run.stderr).not.toContain('did you mean');
  });

  it("suggests the closest application from the API's list when the API does not know it", async () => {
    const run = await runCli(['deploy', 'hello-wrld', 'staging'], {
      'POST /deployments': problem(404, 'UNKNOWN_APPLICATION', 'no application "hello-wrld" in the registry'),
      'GET /applications': APPLICATIONS,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('UNKNOWN_APPLICATION');
    expect(run.stderr).toContain('did you mean "hello-world"?');
    expect(run.stderr).not.toContain('recorded as deployment');
  });

  it("suggests the closest of the application's environments", async () => {
    const run = await runCli(['promote', 'hello-world', 'stagin', 'prod'], {
      'POST /promotions': problem(
        404,
        'UNKNOWN_ENVIRONMENT',
        'application "hello-world" has no environment "stagin"',
      ),
      'GET /applications': APPLICATIONS,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('did you mean "staging"?');
  });

  it('history of a misspelt application (which reads as forbidden) suggests the closest one', async () => {
    const run = await runCli(['history', 'hello-wrld', 'staging'], {
      'GET /deployments': problem(403, 'FORBIDDEN', 'you may not read hello-wrld/staging'),
      'GET /applications': APPLICATIONS,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('did you mean "hello-world"?');
  });

  it('still reports the refusal when the list cannot be read', async () => {
    const run = await runCli(['deploy', 'hello-wrld', 'staging'], {
      'POST /deployments': problem(404, 'UNKNOWN_APPLICATION', 'no application "hello-wrld" in the registry'),
      'GET /applications': problem(403, 'FORBIDDEN', 'no'),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no application "hello-wrld" in the registry');
    expect(run.stderr).not.toContain('did you mean');
  });
});

describe('REF_NOT_ALLOWED', () => {
  it('says how to get a build into the environment instead: promote', async () => {
    const run = await runCli(['deploy', 'hello-world', 'prod', '--ref', 'main'], {
      'POST /deployments': problem(
        403,
        'REF_NOT_ALLOWED',
        'prod accepts promotions and rollbacks only, not a ref',
        {
          field: 'ref',
        },
      ),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('crossdeploy promote hello-world <from> prod');
  });
});

describe('deployment ids', () => {
  it.each([
    ['too short', '01M9033'],
    ['a letter Crockford base32 leaves out', '01M9033YKKQK93AFSA2Y3BHHJU'],
    ['too long', '01M9033YKKQK93AFSA2Y3BHHJEX'],
    ['a path', '../../applications'],
  ])('refuses an id that is %s as a usage error (exit 2), sending nothing', async (_what, id) => {
    for (const command of ['status', 'logs']) {
      const run = await runCli([command, id]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('is not a deployment id');
      expect(run.sent).toEqual([]);
    }
  });

  it('accepts a ULID in lower case and asks for it in upper case', async () => {
    const id = '01M9033YKKQK93AFSA2Y3BHHJE';
    const run = await runCli(['status', id.toLowerCase(), '--json'], {
      [`GET /deployments/${id}`]: problem(404, 'NOT_FOUND', `no deployment "${id}"`),
    });
    expect(run.sent).toEqual([{ method: 'GET', path: `/deployments/${id}` }]);
    expect(run.code).toBe(1);
  });
});

const t = (seconds: number) => new Date(Date.UTC(2025, 0, 31, 14, 0, 0) + seconds * 1000).toISOString();
const deployment = (overrides: Partial<DeploymentView> = {}): DeploymentView => ({
  deploymentId: '01JDQ2Z7R4K8V9XG3N5T6W1YBC',
  application: 'hello-world',
  environment: 'staging',
  ref: 'main',
  requester: { type: 'local', user: 'alice' },
  trigger: 'local',
  dryRun: false,
  status: 'SUCCEEDED',
  requestedAt: t(0),
  updatedAt: t(60),
  finishedAt: t(60),
  ...overrides,
});

describe('history and status wording', () => {
  it('history shows each deployment’s reason', () => {
    const lines = renderHistory(
      [deployment({ reason: 'weekly release' }), deployment({ deploymentId: '01JDQ2Z7R4K8V9XG3N5T6W1YBD' })],
      {
        paint: plain,
        now: Date.parse(t(100)),
        timeZone: 'UTC',
      },
    );
    expect(lines[0]).toMatch(/REASON/);
    expect(lines[1]).toContain('weekly release');
  });

  it('status repeats no word in a row (no "account account")', () => {
    const lines = renderStatus(
      deployment({
        reason: 'first try',
        targetAccount: '111111111111',
        targetRegion: 'eu-west-1',
        stackName: 'hello-world-staging',
        release: 1,
      }),
      [],
      { paint: plain, now: Date.parse(t(100)), timeZone: 'UTC', decorated: false },
    );
    expect(lines.join('\n')).toContain('111111111111');
    for (const line of lines) expect(line).not.toMatch(/\b(\w+)\s+\1\b/i);
  });
});
