import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobGroupMembers, processIdentity } from '../../local/processes.ts';
import {
  call,
  deploy,
  deployment,
  eventTypes,
  readRecord,
  type ServerProcess,
  startServer,
  TERMINAL,
  useLocalServer,
  waitFor,
  waitForTerminal,
} from './support/local-server.ts';

/**
 * The real local server (`node local/main.ts`) on a random port, driven over HTTP: the real handlers, the
 * real statemachine/deploy.asl.json, the real buildspecs run by bash, with stand-in `sam` and `aws` first on
 * PATH for `runner: local` environments and a fake STS endpoint behind the real StsTargetAccess.
 */

const local = useLocalServer();

const jobFiles = (dataDir: string) =>
  existsSync(join(dataDir, 'jobs'))
    ? readdirSync(join(dataDir, 'jobs')).filter((f) => f.endsWith('.json'))
    : [];

describe('local mode over HTTP', () => {
  it('deploys the requested commit (not the working copy), with its events, logs and a followable log stream', async () => {
    const { status, body } = await deploy(local.server.url, {
      application: 'demo',
      environment: 'staging',
      ref: local.fixture.commits.first,
      reason: 'e2e: first commit',
    });
    expect(status).toBe(202);
    const id = String(body.deploymentId);

    // Follow the log while it runs: newline-delimited JSON that ends when the deployment is terminal.
    const followed = await fetch(`${local.server.url}/deployments/${id}/logs?follow=true`);
    expect(followed.headers.get('content-type')).toContain('application/x-ndjson');
    const streamed = (await followed.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { job: string; message: string });

    const done = await waitForTerminal(local.server.url, id);
    // `runner: local`: a real deploy, never marked simulated.
    expect(done).not.toHaveProperty('simulated');
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      resolvedCommit: local.fixture.commits.first,
      targetAccount: '111111111111',
      buildOutput: { resolvedCommit: local.fixture.commits.first },
    });
    expect(await eventTypes(local.server.url, id)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'BUILD_STARTED',
      'BUILD_FINISHED',
      'LOCK_ACQUIRED',
      'ROLE_ASSUMED',
      'DEPLOY_STARTED',
      'DEPLOY_FINISHED',
      'LOCK_RELEASED',
      'SUCCEEDED',
    ]);

    // The build exported the first commit, not the second one nor the uncommitted working copy.
    expect(readRecord(local.fixture, `app-${id}.mjs`)).toContain('version one');
    const argv = readRecord(local.fixture, `argv-${id}`).trim().split('\n');
    expect(argv).toEqual(
      expect.arrayContaining([
        'deploy',
        '--stack-name=demo-staging',
        '--region=eu-west-1',
        '--role-arn=arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-cfn-exec',
        '--s3-bucket=crossdeploy-artifacts-111111111111-eu-west-1',
        '--no-confirm-changeset',
        'Stage="staging"',
      ]),
    );
    // The preflight went through the real StsTargetAccess to the (fake) STS endpoint.
    expect(local.fixture.sts.assumed).toContainEqual(
      expect.objectContaining({
        roleArn: 'arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deploy',
        sessionName: `crossdeploy-${id}`,
      }),
    );

    // Paged logs: build lines, then deploy lines; the cursor walks the whole log and then stops.
    const lines: { job: string; message: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await call(
        local.server.url,
        'GET',
        `/deployments/${id}/logs?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
        {
          template: '/deployments/{id}/logs',
        },
      );
      lines.push(...(page.body.items as typeof lines));
      cursor = page.body.nextCursor as string | undefined;
    } while (cursor);
    const messages = lines.map((l) => l.message);
    expect(messages).toContain('stand-in sam build done');
    expect(messages).toContain('stand-in sam deploy of demo-staging');
    expect(messages.some((m) => m.includes(`checking out ${local.fixture.commits.first}`))).toBe(true);
    expect(lines.findIndex((l) => l.job === 'deploy')).toBeGreaterThan(
      lines.findLastIndex((l) => l.job === 'build'),
    );
    expect(streamed.map((l) => l.message)).toEqual(messages);

    const bad = await call(local.server.url, 'GET', `/deployments/${id}/logs?cursor=bm90LWEtY3Vyc29y`, {
      template: '/deployments/{id}/logs',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('BAD_CURSOR');
  }, 90_000);

  it('builds the branch head by default, and answers a repeated Idempotency-Key with the same deployment', async () => {
    const key = { 'idempotency-key': 'e2e-key-1' };
    const { body } = await deploy(local.server.url, { application: 'demo', environment: 'staging' }, key);
    const id = String(body.deploymentId);
    const replay = await deploy(local.server.url, { application: 'demo', environment: 'staging' }, key);
    expect(replay.status).toBe(202);
    expect(replay.body.deploymentId).toBe(id);
    const reused = await deploy(
      local.server.url,
      { application: 'demo', environment: 'staging', reason: 'other' },
      key,
    );
    expect(reused.status).toBe(409);
    expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(reused.contentType).toContain('application/problem+json');
    expect(await waitForTerminal(local.server.url, id)).toMatchObject({
      status: 'SUCCEEDED',
      ref: 'main',
      resolvedCommit: local.fixture.commits.second,
    });
    expect(readRecord(local.fixture, `app-${id}.mjs`)).toContain('version two');
  }, 90_000);

  it('refuses bad requests with problem+json and starts nothing', async () => {
    const before = jobFiles(local.server.dataDir).length;
    const post = (raw: string, contentType = 'application/json', headers: Record<string, string> = {}) =>
      call(local.server.url, 'POST', '/deployments', {
        raw,
        headers: { 'content-type': contentType, ...headers },
        template: '/deployments',
      });
    const cases: [string, Promise<Awaited<ReturnType<typeof post>>>, number, string][] = [
      ['malformed JSON', post('{"application":'), 400, 'MALFORMED_REQUEST'],
      [
        'unknown field',
        post(JSON.stringify({ application: 'demo', environment: 'staging', x: 1 })),
        400,
        'INVALID_FIELD',
      ],
      [
        'a ref that is an option',
        post(JSON.stringify({ application: 'demo', environment: 'staging', ref: '--upload-pack=touch x' })),
        400,
        'INVALID_REF',
      ],
      [
        'unknown application',
        post(JSON.stringify({ application: 'nope', environment: 'staging' })),
        404,
        'UNKNOWN_APPLICATION',
      ],
      [
        'unknown environment',
        post(JSON.stringify({ application: 'demo', environment: 'nope' })),
        404,
        'UNKNOWN_ENVIRONMENT',
      ],
      [
        'requester not allowed',
        post(JSON.stringify({ application: 'demo', environment: 'guarded' })),
        403,
        'FORBIDDEN',
      ],
      ['wrong content type', post('application=demo', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [
        'a 2 MB body',
        post(JSON.stringify({ application: 'demo', environment: 'staging', reason: 'x'.repeat(2_000_000) })),
        413,
        'PAYLOAD_TOO_LARGE',
      ],
    ];
    for (const [what, reply, status, code] of cases) {
      const { status: actual, contentType, body } = await reply;
      expect({ what, status: actual, code: body.code }).toEqual({ what, status, code });
      expect(contentType).toContain('application/problem+json');
    }

    const missing = await call(local.server.url, 'GET', '/deployments/01NOSUCHDEPLOYMENT000000000', {
      template: '/deployments/{id}',
    });
    expect(missing.status).toBe(404);
    expect(missing.contentType).toContain('application/problem+json');

    // Refusals that name a target are recorded as REJECTED, and none of them started a job.
    const { body: guarded } = await call(
      local.server.url,
      'GET',
      '/deployments?application=demo&environment=guarded',
      {
        template: '/deployments',
      },
    );
    const items = guarded.items as { status: string; errorCode: string; jobs?: Record<string, unknown> }[];
    expect(items.length).toBeGreaterThanOrEqual(1);
    for (const item of items) {
      expect(item.status).toBe('REJECTED');
      expect(Object.keys(item.jobs ?? {})).toEqual([]);
    }
    expect(jobFiles(local.server.dataDir).length).toBe(before);

    // Reading takes the registry's say-so too: sealed lists neither readers nor this user.
    const sealed = await call(local.server.url, 'GET', '/deployments?application=demo&environment=sealed', {
      template: '/deployments',
    });
    expect(sealed.status).toBe(403);
    expect(sealed.contentType).toContain('application/problem+json');
    expect(sealed.body.code).toBe('FORBIDDEN');
  });

  it('runs 20 concurrent requests for one environment without overlapping deploys, and records them all', async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        deploy(local.server.url, { application: 'demo', environment: 'busy', reason: `concurrent ${i}` }),
      ),
    );
    const ids = replies.map((r) => String(r.body.deploymentId));
    for (const r of replies) {
      expect([202, 409]).toContain(r.status);
      if (r.status === 409) expect(r.body.code).toBe('ENVIRONMENT_BUSY');
    }
    const finals = await Promise.all(ids.map((id) => waitForTerminal(local.server.url, id, 110_000)));
    for (const d of finals) expect(TERMINAL.has(String(d.status))).toBe(true);
    const succeeded = finals.filter((d) => d.status === 'SUCCEEDED');
    expect(succeeded.length).toBeGreaterThanOrEqual(1);
    for (const d of finals.filter((f) => f.status !== 'SUCCEEDED')) {
      expect(d).toMatchObject({ status: 'REJECTED', errorCode: 'ENVIRONMENT_BUSY' });
    }

    // No two `sam deploy` runs of the environment overlapped.
    const intervals = new Map<string, { start: bigint; end?: bigint }>();
    for (const line of readRecord(local.fixture, 'deploys.log').trim().split('\n')) {
      const [kind, at, stack, id] = line.split(' ');
      if (stack !== 'demo-busy' || !id || !at) continue;
      const interval = intervals.get(id) ?? { start: 0n };
      if (kind === 'start') interval.start = BigInt(at);
      else interval.end = BigInt(at);
      intervals.set(id, interval);
    }
    expect(intervals.size).toBe(succeeded.length);
    const sorted = [...intervals.values()].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i - 1]?.end).toBeDefined();
      expect(sorted[i]!.start > sorted[i - 1]!.end!).toBe(true);
    }

    // History holds every request, newest first.
    const { body } = await call(
      local.server.url,
      'GET',
      '/deployments?application=demo&environment=busy&limit=100',
      {
        template: '/deployments',
      },
    );
    const history = body.items as { deploymentId: string; requestedAt: string }[];
    expect(new Set(history.map((h) => h.deploymentId))).toEqual(new Set(ids));
    const times = history.map((h) => h.requestedAt);
    expect([...times].sort().reverse()).toEqual(times);
  }, 120_000);

  it('simulate mode runs the real buildspecs and records the commands it would run', async () => {
    const before = existsSync(join(local.fixture.records, 'deploys.log'))
      ? readRecord(local.fixture, 'deploys.log')
      : '';
    const { body } = await deploy(local.server.url, {
      application: 'demo',
      environment: 'sim',
      dryRun: true,
    });
    const id = String(body.deploymentId);
    const done = await waitForTerminal(local.server.url, id);
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      targetAccount: '333333333333',
      dryRun: true,
      simulated: true,
    });
    expect(String(done.changeSet)).toContain('change(s)');
    const { body: logs } = await call(local.server.url, 'GET', `/deployments/${id}/logs?limit=1000`);
    const messages = (logs.items as { message: string }[]).map((l) => l.message);
    expect(messages).toContain(
      'would run: sam build --template-file=template.yaml --build-dir=.aws-sam/build',
    );
    expect(messages).toContain(
      'would run: aws sts get-caller-identity --profile target --query Account --output text',
    );
    const samDeploy = messages.find((m) => m.startsWith('would run: sam deploy '));
    expect(samDeploy).toContain('--stack-name=demo-sim');
    expect(samDeploy).toContain('--no-execute-changeset');
    // Neither the test's stand-ins nor STS were used: the simulation answered.
    expect(existsSync(join(local.fixture.records, `argv-${id}`))).toBe(false);
    expect(readFileSync(join(local.fixture.records, 'deploys.log'), 'utf8')).toBe(before);
    expect(local.fixture.sts.assumed.some((a) => a.sessionName === `crossdeploy-${id}`)).toBe(false);
  }, 90_000);

  it('fails a deployment whose build output carries samconfig.toml with BUILD_OUTPUT_HAS_SAMCONFIG, and never runs sam deploy', async () => {
    // A branch whose commit adds app/src/samconfig.toml, made without touching the working copy.
    const git = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@example.com', ...args], {
        cwd: local.fixture.repo,
        encoding: 'utf8',
        env: { ...process.env, ...env },
        input: args[0] === 'hash-object' ? 'version = 0.1\n' : undefined,
      }).trim();
    const index = { GIT_INDEX_FILE: join(local.fixture.root, 'samconfig-index') };
    git(['read-tree', local.fixture.commits.second], index);
    const blob = git(['hash-object', '-w', '--stdin']);
    git(['update-index', '--add', '--cacheinfo', `100644,${blob},app/src/samconfig.toml`], index);
    const tree = git(['write-tree'], index);
    const commit = git(['commit-tree', tree, '-p', local.fixture.commits.second, '-m', 'samconfig']);
    git(['branch', 'with-samconfig', commit]);

    const { body } = await deploy(local.server.url, {
      application: 'demo',
      environment: 'staging',
      ref: 'with-samconfig',
    });
    const id = String(body.deploymentId);
    const done = await waitForTerminal(local.server.url, id);
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'BUILD_OUTPUT_HAS_SAMCONFIG' });
    const { body: logs } = await call(local.server.url, 'GET', `/deployments/${id}/logs?limit=1000`);
    const messages = (logs.items as { message: string }[]).map((l) => l.message);
    expect(messages).toContain(
      'crossdeploy: refusing the build output: it contains src/samconfig.toml; a build output must not carry SAM CLI configuration',
    );
    expect(existsSync(join(local.fixture.records, `argv-${id}`))).toBe(false);
  }, 90_000);

  it('promotes the exact build output without a build, refuses a direct ref, and rolls back to a release', async () => {
    const post = (path: string, body: Record<string, unknown>) =>
      call(local.server.url, 'POST', path, { body, template: path });
    const built = async (ref: string) => {
      const { body } = await deploy(local.server.url, { application: 'demo', environment: 'sim', ref });
      return waitForTerminal(local.server.url, String(body.deploymentId));
    };
    const promote = async () => {
      const { status, body } = await post('/promotions', {
        application: 'demo',
        from: 'sim',
        to: 'sim-prod',
      });
      expect(status).toBe(202);
      return waitForTerminal(local.server.url, String(body.deploymentId));
    };

    const first = await built(local.fixture.commits.first);
    const one = await promote();
    expect(one).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'promotion',
      targetAccount: '666666666666',
      buildOutput: first.buildOutput,
      resolvedCommit: local.fixture.commits.first,
      source: { deploymentId: first.deploymentId, environment: 'sim' },
      release: 1,
    });
    expect(await eventTypes(local.server.url, String(one.deploymentId))).not.toContain('BUILD_STARTED');

    const direct = await deploy(local.server.url, {
      application: 'demo',
      environment: 'sim-prod',
      ref: 'main',
    });
    expect(direct.status).toBe(403);
    expect(direct.body).toMatchObject({ code: 'REF_NOT_ALLOWED' });

    await built(local.fixture.commits.second);
    const two = await promote();
    expect(two).toMatchObject({
      status: 'SUCCEEDED',
      resolvedCommit: local.fixture.commits.second,
      release: 2,
    });

    const { status, body } = await post('/rollbacks', {
      application: 'demo',
      environment: 'sim-prod',
      release: 1,
    });
    expect(status).toBe(202);
    const back = await waitForTerminal(local.server.url, String(body.deploymentId));
    expect(back).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'rollback',
      rollbackOf: 1,
      buildOutput: first.buildOutput,
      release: 3,
    });
    const { body: history } = await call(
      local.server.url,
      'GET',
      '/deployments?application=demo&environment=sim-prod',
      {
        template: '/deployments',
      },
    );
    // Newest first: the rollback, the second promotion, the refused direct ref (no release), the first promotion.
    expect(
      (history.items as { status: string; release?: number }[]).map((d) => d.release ?? d.status),
    ).toEqual([3, 2, 'REJECTED', 1]);
  }, 120_000);
});

describe('access', () => {
  it('a loopback server refuses requests addressed to another host name (DNS rebinding)', async () => {
    const { port } = new URL(local.server.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/applications', headers: { host: `attacker.example:${port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.once('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('with CROSSDEPLOY_API_TOKEN set, every request needs the bearer token', async () => {
    const token = 'e2e-token-0123456789abcdef';
    const guarded = await startServer(local.fixture, mkdtempSync(join(local.fixture.root, 'token-')), {
      CROSSDEPLOY_API_TOKEN: token,
    });
    local.track(guarded);
    const none = await call(guarded.url, 'GET', '/applications');
    expect(none.status).toBe(401);
    expect(none.contentType).toContain('application/problem+json');
    const wrong = await call(guarded.url, 'POST', '/deployments', {
      body: { application: 'demo', environment: 'staging' },
      headers: { authorization: `Bearer ${token}x` },
    });
    expect(wrong.status).toBe(401);
    const right = await call(guarded.url, 'GET', '/applications', {
      headers: { authorization: `Bearer ${token}` },
      template: '/applications',
    });
    expect(right.status).toBe(200);
    expect(jobFiles(guarded.dataDir)).toEqual([]);
    await guarded.stop();
  }, 60_000);
});

describe('crash safety', () => {
  const flag = () => join(local.fixture.records, 'slow.flag');
  const pidFile = () => join(local.fixture.records, 'slow.pid');
  const waitForSlowJob = () =>
    waitFor('the deploy job to run', () =>
      existsSync(pidFile()) ? Number(readFileSync(pidFile(), 'utf8')) : undefined,
    );
  /** The restarted server of the first test, with a deploy job running: the second test stops it. */
  let restarted: { server: ServerProcess; jobPid: number } | undefined;

  it('after kill -9 during a deploy job, a restart stops the surviving job, fails the deployment and releases the lock', async () => {
    const dataDir = mkdtempSync(join(local.fixture.root, 'crash-'));
    rmSync(pidFile(), { force: true });
    writeFileSync(flag(), '');
    const first = await startServer(local.fixture, dataDir);
    local.track(first);
    const { body } = await deploy(first.url, { application: 'demo', environment: 'slow' });
    const id = String(body.deploymentId);
    const jobPid = await waitForSlowJob();
    const busy = await deploy(first.url, { application: 'demo', environment: 'slow' });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('ENVIRONMENT_BUSY');

    await first.stop('SIGKILL');
    // The job is in its own process group: it outlived the server.
    expect(processIdentity(jobPid)).toBeDefined();

    const second = await startServer(local.fixture, dataDir);
    local.track(second);
    expect(processIdentity(jobPid)).toBeUndefined();
    const done = await deployment(second.url, id);
    expect(done).toMatchObject({ status: 'FAILED', errorCode: 'ORCHESTRATOR_RESTARTED' });
    const types = await eventTypes(second.url, id);
    expect(types).toEqual(expect.arrayContaining(['DEPLOY_STARTED', 'SETTLED', 'FAILED', 'LOCK_RELEASED']));
    // Freed before the deployment reads FAILED.
    expect(types.slice(-2)).toEqual(['LOCK_RELEASED', 'FAILED']);
    expect(second.output()).toContain('ORCHESTRATOR_RESTARTED');

    // The lock is free again: the environment takes the next deployment, which gets as far as its deploy job.
    rmSync(pidFile(), { force: true });
    const again = await deploy(second.url, { application: 'demo', environment: 'slow' });
    expect(again.status).toBe(202);
    restarted = { server: second, jobPid: await waitForSlowJob() };
  }, 120_000);

  it('SIGTERM stops the server and leaves no job process behind', async () => {
    if (!restarted) throw new Error('needs the running server of the previous test');
    const { server: running, jobPid } = restarted;
    expect(processIdentity(jobPid)).toBeDefined();
    const exit = await running.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(processIdentity(jobPid)).toBeUndefined();
    for (const file of jobFiles(running.dataDir)) {
      const record = JSON.parse(readFileSync(join(running.dataDir, 'jobs', file), 'utf8')) as {
        pgid?: number;
        startTime?: number;
      };
      if (record.pgid !== undefined && record.startTime !== undefined) {
        expect(jobGroupMembers({ pgid: record.pgid, startTime: record.startTime })).toEqual([]);
      }
    }
    unlinkSync(flag());
  }, 60_000);
});
