import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { expectValidResponse } from '#test/support/openapi.ts';

/**
 * Runs the real CLI (bin/crossdeploy.mjs) as a child process against a small fake of the HTTP API on
 * loopback. The fake's answers evolve with each poll (QUEUED -> RUNNING -> final) and every one of them
 * is checked against openapi.yaml, so the fake cannot drift from the contract the real server obeys.
 */

const BIN = fileURLToPath(new URL('../../bin/crossdeploy.mjs', import.meta.url));
const COMMIT = '1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d';
const BASE = Date.UTC(2025, 0, 31, 14, 0, 0);
const at = (seconds: number) => new Date(BASE + seconds * 1000).toISOString();

type Scenario = 'success' | 'failure';
type Kind = 'deploy' | 'promotion' | 'rollback';
interface FakeDeployment {
  id: string;
  scenario: Scenario;
  kind: Kind;
  application: string;
  environment: string;
  ref: string;
  reason?: string;
  dryRun: boolean;
  /** Promotions and rollbacks: the deployment whose build output they deploy (no build of their own). */
  source?: { deploymentId: string; environment: string; release: number };
  rollbackOf?: number;
  /** An approver asked to deploy inside a freeze window (the fake pretends one is active). */
  freezeOverride?: boolean;
  /** The release number a successful real deployment gets. */
  release?: number;
  /** GET /deployments/{id} calls so far; each one moves the deployment one stage on. */
  polls: number;
}

const SOURCE_ID = '01JSOURCE00000000000000007';
const ALICE = { type: 'local', user: 'alice' };

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const FINAL_STAGE = 4;

interface FakeEvent {
  type: string;
  at: string;
  detail: Record<string, unknown>;
}

function eventsAt(d: FakeDeployment, stage: number): FakeEvent[] {
  const built = d.kind === 'deploy';
  const events: FakeEvent[] = [
    {
      type: 'REQUESTED',
      at: at(0),
      detail: { requester: ALICE, trigger: 'local', ...(built ? { ref: d.ref } : {}), dryRun: d.dryRun },
    },
  ];
  if (stage >= 1) {
    events.push({
      type: 'VALIDATED',
      at: at(1),
      detail: {
        kind: d.kind,
        ref: d.ref,
        targetAccount: '123456789012',
        region: 'eu-west-1',
        stackName: `${d.application}-${d.environment}`,
        ...(d.source
          ? {
              buildOutputFrom: d.source.deploymentId,
              sourceEnvironment: d.source.environment,
              resolvedCommit: COMMIT,
              ...(d.rollbackOf !== undefined ? { rollbackOf: d.rollbackOf } : {}),
            }
          : {}),
      },
    });
    if (d.freezeOverride) {
      events.push({
        type: 'FREEZE_OVERRIDDEN',
        at: at(1),
        detail: { window: 'year-end', endsAt: '2025-02-03T00:00:00.000Z', by: ALICE },
      });
    }
    if (built) events.push({ type: 'BUILD_STARTED', at: at(2), detail: { buildId: 'local:build' } });
  }
  if (stage >= 2) {
    if (built) {
      events.push({
        type: 'BUILD_FINISHED',
        at: at(36),
        detail: { buildId: 'local:build', status: 'SUCCEEDED', resolvedCommit: COMMIT },
      });
    }
    events.push(
      { type: 'LOCK_ACQUIRED', at: at(37), detail: { leaseExpiresAt: at(4000) } },
      {
        type: 'ROLE_ASSUMED',
        at: at(38),
        detail: {
          assumedRoleArn: `arn:aws:sts::123456789012:assumed-role/crossdeploy-deploy/${d.id}`,
          account: '123456789012',
        },
      },
      { type: 'DEPLOY_STARTED', at: at(39), detail: { buildId: 'local:deploy' } },
    );
  }
  if (stage >= 3 && d.scenario === 'success') {
    events.push(
      {
        type: 'DEPLOY_FINISHED',
        at: at(101),
        detail: { buildId: 'local:deploy', status: 'SUCCEEDED' },
      },
      { type: 'SUCCEEDED', at: at(102), detail: d.release !== undefined ? { release: d.release } : {} },
    );
  }
  if (stage >= 3 && d.scenario === 'failure') {
    events.push(
      { type: 'DEPLOY_FINISHED', at: at(60), detail: { buildId: 'local:deploy', status: 'FAILED' } },
      { type: 'SETTLED', at: at(61), detail: {} },
      {
        type: 'FAILED',
        at: at(62),
        detail: { code: 'DEPLOY_FAILED', message: 'the deploy job ended FAILED' },
      },
    );
  }
  if (stage >= 4) events.push({ type: 'LOCK_RELEASED', at: at(103), detail: {} });
  return events;
}

function deploymentAt(d: FakeDeployment, stage: number) {
  const base = {
    deploymentId: d.id,
    application: d.application,
    environment: d.environment,
    // As the real API: a promotion or rollback takes its source's ref when it is validated.
    ...(d.kind === 'deploy' || stage >= 1 ? { ref: d.ref } : {}),
    requester: ALICE,
    trigger: 'local',
    dryRun: d.dryRun,
    ...(d.reason !== undefined ? { reason: d.reason } : {}),
    requestedAt: at(0),
    kind: d.kind,
    ...(d.source ? { source: d.source } : {}),
    ...(d.rollbackOf !== undefined ? { rollbackOf: d.rollbackOf } : {}),
  };
  if (stage === 0) return { ...base, status: 'QUEUED', updatedAt: at(0) };
  const target = {
    targetAccount: '123456789012',
    targetRegion: 'eu-west-1',
    stackName: `${d.application}-${d.environment}`,
    ...(d.freezeOverride ? { freezeOverride: true } : {}),
  };
  if (stage === 1) return { ...base, ...target, status: 'RUNNING', phase: 'BUILDING', updatedAt: at(2) };
  const built = { ...base, ...target, resolvedCommit: COMMIT };
  if (stage === 2) return { ...built, status: 'RUNNING', phase: 'DEPLOYING', updatedAt: at(39) };
  if (d.scenario === 'success') {
    const release = d.release !== undefined ? { release: d.release } : {};
    return { ...built, ...release, status: 'SUCCEEDED', updatedAt: at(102), finishedAt: at(102) };
  }
  return {
    ...built,
    status: 'FAILED',
    updatedAt: at(62),
    finishedAt: at(62),
    errorCode: 'DEPLOY_FAILED',
    errorMessage: 'the deploy job ended FAILED',
  };
}

function logLinesAt(stage: number) {
  const lines = [];
  if (stage >= 1) {
    lines.push({ job: 'build', at: at(3), message: '+ sam build --template-file template.yaml' });
    lines.push({ job: 'build', at: at(35), message: 'Build Succeeded' });
  }
  if (stage >= 2) lines.push({ job: 'deploy', at: at(40), message: '+ sam deploy --stack-name hello-dev' });
  return lines;
}

const APPLICATIONS = {
  items: [
    {
      name: 'hello',
      defaultRef: 'main',
      environments: [
        {
          name: 'dev',
          accountId: '123456789012',
          region: 'eu-west-1',
          stackName: 'hello-dev',
          mode: 'reject',
        },
      ],
    },
  ],
};

function problem(
  status: number,
  code: string,
  title: string,
  detail: string,
  extra: Record<string, unknown> = {},
) {
  return {
    type: `https://crossdeploy.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title,
    status,
    detail,
    code,
    ...extra,
  };
}

interface RequestBody {
  application: string;
  environment?: string;
  ref?: string;
  reason?: string;
  dryRun?: boolean;
  overrideFreeze?: boolean;
}

class FakeApi {
  readonly deployments = new Map<string, FakeDeployment>();
  readonly received: Received[] = [];
  readonly contractErrors: string[] = [];
  private nextId = 1;
  private nextRelease = 1;
  private server: Server | undefined;
  url = '';

  async start() {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => {
        this.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        this.handle(req, body, res);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A deployment that already reached `stage` (FINAL_STAGE: over), for tests that need no waiting. */
  seed(scenario: Scenario, stage = FINAL_STAGE, extra: Partial<FakeDeployment> = {}): string {
    const id = this.newId();
    this.deployments.set(id, {
      id,
      scenario,
      kind: 'deploy',
      application: 'hello',
      environment: 'dev',
      ref: 'main',
      dryRun: false,
      ...(scenario === 'success' ? { release: this.nextRelease++ } : {}),
      polls: stage,
      ...extra,
    });
    return id;
  }

  private newId() {
    return `01JTEST${String(this.nextId++).padStart(19, '0')}`;
  }

  /** Records an accepted request and answers 202 as the real API does. */
  private accept(res: ServerResponse, path: string, request: RequestBody, fields: Partial<FakeDeployment>) {
    const id = this.newId();
    const dryRun = request.dryRun ?? false;
    const scenario: Scenario = request.application === 'broken' ? 'failure' : 'success';
    const d: FakeDeployment = {
      id,
      scenario,
      kind: 'deploy',
      application: request.application,
      environment: request.environment ?? '',
      ref: request.ref ?? 'main',
      dryRun,
      ...(scenario === 'success' && !dryRun ? { release: this.nextRelease++ } : {}),
      ...(request.overrideFreeze ? { freezeOverride: true } : {}),
      polls: 0,
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      ...fields,
    };
    this.deployments.set(id, d);
    const self = `/deployments/${id}`;
    return this.reply(res, 'POST', path, 202, {
      deploymentId: id,
      status: 'QUEUED',
      application: d.application,
      environment: d.environment,
      ...(d.kind === 'deploy' ? { ref: d.ref } : {}),
      kind: d.kind,
      ...(d.source ? { source: d.source } : {}),
      ...(d.rollbackOf !== undefined ? { rollbackOf: d.rollbackOf } : {}),
      dryRun: d.dryRun,
      links: { self, events: `${self}/events`, logs: `${self}/logs` },
    });
  }

  /** A refusal the real API records as a REJECTED deployment (hence the id in the problem). */
  private refuse(
    res: ServerResponse,
    path: string,
    status: number,
    code: string,
    title: string,
    detail: string,
  ) {
    const id = this.newId();
    return this.reply(
      res,
      'POST',
      path,
      status,
      problem(status, code, title, detail, { instance: `/deployments/${id}`, deploymentId: id }),
    );
  }

  async stop() {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private reply(res: ServerResponse, method: string, template: string, status: number, body: unknown) {
    const contentType = status >= 400 ? 'application/problem+json' : 'application/json';
    const text = JSON.stringify(body);
    try {
      expectValidResponse(method, template, {
        statusCode: status,
        headers: { 'content-type': contentType },
        body: text,
      });
    } catch (error) {
      this.contractErrors.push((error as Error).message);
    }
    res.writeHead(status, { 'content-type': contentType });
    res.end(text);
  }

  private handle(req: IncomingMessage, body: string, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').filter(Boolean);
    const notFound = (id: string) =>
      problem(404, 'NOT_FOUND', 'Not found', `no deployment ${JSON.stringify(id)}`, {
        instance: url.pathname,
      });

    if (method === 'POST' && url.pathname === '/deployments') {
      const request = JSON.parse(body) as RequestBody;
      if (request.application === 'busy') {
        const detail = 'busy/dev is busy with deployment 01JOTHER (lease until 2025-01-31T15:00:00.000Z)';
        return this.refuse(res, '/deployments', 409, 'ENVIRONMENT_BUSY', 'Environment busy', detail);
      }
      return this.accept(res, '/deployments', request, {});
    }
    if (method === 'POST' && url.pathname === '/promotions') {
      // As the test registry: prod takes promotions from staging only, and nothing else takes any.
      const request = JSON.parse(body) as RequestBody & { from: string; to: string };
      if (request.to !== 'prod' || request.from !== 'staging') {
        const detail =
          request.to === 'prod'
            ? `prod may be promoted only from staging, not from ${request.from}`
            : `${request.to} accepts no promotions`;
        return this.refuse(res, '/promotions', 403, 'PROMOTION_NOT_ALLOWED', 'Promotion not allowed', detail);
      }
      return this.accept(
        res,
        '/promotions',
        { ...request, environment: request.to },
        { kind: 'promotion', source: { deploymentId: SOURCE_ID, environment: request.from, release: 7 } },
      );
    }
    if (method === 'POST' && url.pathname === '/rollbacks') {
      const request = JSON.parse(body) as RequestBody & { environment: string; release: number };
      if (request.release > 41) {
        const detail = `${request.application}/${request.environment} has no release ${request.release}`;
        return this.refuse(res, '/rollbacks', 404, 'UNKNOWN_RELEASE', 'Unknown release', detail);
      }
      return this.accept(res, '/rollbacks', request, {
        kind: 'rollback',
        rollbackOf: request.release,
        source: { deploymentId: SOURCE_ID, environment: request.environment, release: request.release },
      });
    }
    if (method === 'GET' && url.pathname === '/applications') {
      return this.reply(res, method, '/applications', 200, APPLICATIONS);
    }
    if (method === 'GET' && url.pathname === '/deployments') {
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const offset = Number(url.searchParams.get('cursor') ?? 0);
      const all = [...this.deployments.values()]
        .filter((d) => d.application === url.searchParams.get('application'))
        .reverse()
        .map((d) => deploymentAt(d, Math.min(d.polls, FINAL_STAGE)));
      const items = all.slice(offset, offset + limit);
      const next = offset + items.length < all.length ? { nextCursor: String(offset + items.length) } : {};
      return this.reply(res, method, '/deployments', 200, { items, ...next });
    }
    const d = parts[0] === 'deployments' && parts[1] ? this.deployments.get(parts[1]) : undefined;
    const template = `/deployments/{id}${parts[2] ? `/${parts[2]}` : ''}`;
    if (!d) return this.reply(res, method, template, 404, notFound(parts[1] ?? ''));
    if (parts.length === 2) {
      d.polls++;
      return this.reply(res, method, template, 200, deploymentAt(d, Math.min(d.polls, FINAL_STAGE)));
    }
    if (parts[2] === 'follow') {
      // One poll of --wait: the record moves a stage on, as with GET /deployments/{id}. Every event is sent
      // (as the real API does within its overlap): the client keeps each once.
      d.polls++;
      const now = Math.min(d.polls, FINAL_STAGE);
      const items = eventsAt(d, now);
      const last = items.at(-1);
      return this.reply(res, method, template, 200, {
        deployment: deploymentAt(d, now),
        items,
        ...(last ? { nextCursor: Buffer.from(last.at).toString('base64url') } : {}),
      });
    }
    const stage = Math.min(d.polls, FINAL_STAGE);
    if (parts[2] === 'events') return this.reply(res, method, template, 200, { items: eventsAt(d, stage) });
    if (parts[2] === 'logs') {
      const lines = logLinesAt(stage);
      const cursor = url.searchParams.get('cursor');
      const from = cursor ? Number(Buffer.from(cursor, 'base64url').toString()) : 0;
      const limit = Number(url.searchParams.get('limit') ?? 200);
      const items = lines.slice(from, from + Math.min(limit, 2));
      const next = from + items.length;
      // As the real API: a cursor while the deployment runs or lines remain, none once all was read.
      const done = stage >= 3 && next >= lines.length;
      return this.reply(res, method, template, 200, {
        items,
        ...(done ? {} : { nextCursor: Buffer.from(String(next)).toString('base64url') }),
      });
    }
    return this.reply(res, method, template, 404, notFound(parts[1] ?? ''));
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(
  args: string[],
  options: { url?: string; env?: NodeJS.ProcessEnv; node?: string } = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, TZ: 'UTC', ...options.env };
  for (const name of ['CROSSDEPLOY_URL', 'CROSSDEPLOY_API_TOKEN', 'FORCE_COLOR', 'NO_COLOR']) {
    if (!options.env || !(name in options.env)) delete env[name];
  }
  const argv = options.url ? [...args, '--url', options.url] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(options.node ?? process.execPath, [BIN, ...argv], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: asserting that no escape sequence was printed
const ESCAPES = /\u001b|\r/;

describe('crossdeploy CLI against a fake API', () => {
  const api = new FakeApi();

  beforeAll(async () => {
    await api.start();
  });
  afterAll(async () => {
    await api.stop();
  });
  beforeEach(() => {
    api.received.length = 0;
  });

  it('deploys with --wait and prints one plain line per step when piped', async () => {
    const run = await runCli(
      ['deploy', 'hello', 'dev', '--ref', 'main', '--reason', 'release 1.2', '--wait'],
      { url: api.url },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(ESCAPES);
    const [first, ...rest] = run.stdout.trimEnd().split('\n');
    expect(first).toMatch(/^deploying hello\/dev \(ref main\) — deployment 01JTEST\d{19}$/);
    expect(rest).toEqual([
      'requested by alice (local) (ref main)',
      'validated: account 123456789012, eu-west-1, stack hello-dev',
      'build started',
      'build finished in 34s, commit 1a2b3c4',
      'lock acquired',
      'role assumed in account 123456789012 (crossdeploy-deploy)',
      'deploy started',
      'deploy finished in 1m02s',
      expect.stringMatching(/^succeeded in 1m42s, release \d+$/),
      'lock released',
    ]);

    const post = api.received.find((r) => r.method === 'POST');
    expect(JSON.parse(post?.body ?? '')).toEqual({
      application: 'hello',
      environment: 'dev',
      ref: 'main',
      reason: 'release 1.2',
    });
    expect(post?.headers['content-type']).toBe('application/json');
    expect(post?.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    // A loopback server is never sent a signature.
    expect(api.received.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(api.contractErrors).toEqual([]);
  });

  it('prints the final deployment with its events for --wait --json, and nothing else', async () => {
    const run = await runCli(['deploy', 'hello', 'dev', '--dry-run', '--wait', '--json'], { url: api.url });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({
      deploymentId: expect.stringMatching(/^01JTEST/),
      application: 'hello',
      environment: 'dev',
      status: 'SUCCEEDED',
      resolvedCommit: COMMIT,
      dryRun: true,
    });
    expect(result.events.map((e: { type: string }) => e.type)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'BUILD_STARTED',
      'BUILD_FINISHED',
      'LOCK_ACQUIRED',
      'ROLE_ASSUMED',
      'DEPLOY_STARTED',
      'DEPLOY_FINISHED',
      'SUCCEEDED',
      'LOCK_RELEASED',
    ]);
    expect(result.events[0]).toEqual({
      type: 'REQUESTED',
      at: at(0),
      detail: { requester: { type: 'local', user: 'alice' }, trigger: 'local', ref: 'main', dryRun: true },
    });
    expect(JSON.parse(api.received.find((r) => r.method === 'POST')?.body ?? '')).toEqual({
      application: 'hello',
      environment: 'dev',
      dryRun: true,
    });
  });

  it('exits 1 and says why when the deployment fails', async () => {
    const run = await runCli(['deploy', 'broken', 'dev', '--wait'], { url: api.url });
    expect(run.code).toBe(1);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toContain('deploy failed after 21s');
    expect(lines).toContain('failed after 1m02s: DEPLOY_FAILED — the deploy job ended FAILED');
    expect(lines.at(-1)).toMatch(/^job output: crossdeploy logs 01JTEST\d{19}$/);
  });

  it('exits 1 with the failed deployment as JSON', async () => {
    const run = await runCli(['deploy', 'broken', 'dev', '--wait', '--json'], { url: api.url });
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ status: 'FAILED', errorCode: 'DEPLOY_FAILED' });
    expect(result.events.at(-1)).toMatchObject({ type: 'LOCK_RELEASED' });
  });

  it('exits 1 with the problem detail and code when the environment is busy', async () => {
    const run = await runCli(['deploy', 'busy', 'dev', '--wait'], { url: api.url });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      '✗ Environment busy (409 ENVIRONMENT_BUSY): busy/dev is busy with deployment 01JOTHER',
    );
    expect(run.stderr).toMatch(/recorded as deployment 01JTEST\d{19}/);
  });

  it('prints the problem document for --json when the request is refused', async () => {
    const run = await runCli(['deploy', 'busy', 'dev', '--json'], { url: api.url });
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({
      status: 409,
      code: 'ENVIRONMENT_BUSY',
      title: 'Environment busy',
    });
  });

  it('without --wait prints the id and the status URL and exits 0', async () => {
    const run = await runCli(['deploy', 'hello', 'dev'], { url: api.url });
    expect(run.code).toBe(0);
    const id = /deployment (01JTEST\d{19}) queued/.exec(run.stdout)?.[1];
    expect(run.stdout).toBe(
      `deployment ${id} queued (hello/dev, ref main)\nstatus: ${api.url}/deployments/${id}\n`,
    );
    expect(api.received.filter((r) => r.method === 'GET')).toEqual([]);

    const json = await runCli(['deploy', 'hello', 'dev', '--json'], { url: api.url });
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: 'QUEUED',
      links: { self: expect.stringMatching(/^\/deployments\//) },
    });
  });

  it('shows a deployment with status, and exits 1 for one that failed', async () => {
    const id = api.seed('success');
    const status = await runCli(['status', id], { url: api.url });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`deployment ${id}  SUCCEEDED`);
    expect(status.stdout).toContain('ref         main@1a2b3c4');
    expect(status.stdout).toContain('requested   2025-01-31 14:00:00 by local:alice');
    expect(status.stdout).toContain('  succeeded in 1m42s');
    const json = await runCli(['status', id, '--json'], { url: api.url });
    expect(JSON.parse(json.stdout)).toMatchObject({ deploymentId: id, status: 'SUCCEEDED' });

    const failed = await runCli(['status', api.seed('failure')], { url: api.url });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('error       DEPLOY_FAILED: the deploy job ended FAILED');
  });

  it('exits 1 with the problem for an unknown deployment', async () => {
    const run = await runCli(['status', '01JNZZZZZZZZZZZZZZZZZZZZZZ'], { url: api.url });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('✗ Not found (404 NOT_FOUND): no deployment "01JNZZZZZZZZZZZZZZZZZZZZZZ"');
    const json = await runCli(['status', '01JNZZZZZZZZZZZZZZZZZZZZZZ', '--json'], { url: api.url });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });

  it('lists history as a table, and as { items, nextCursor } with --json', async () => {
    api.seed('success');
    const table = await runCli(['history', 'hello', 'dev', '--limit', '2'], { url: api.url });
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^ID\s+STATUS\s+RELEASE\s+KIND\s+REF\s+REQUESTER\s+REQUESTED\s+DURATION\s+ERROR\s+REASON$/,
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      /^01JTEST\d{19}\s+SUCCEEDED\s+\d+\s+deploy\s+main@1a2b3c4\s+local:alice\s+2025-01-31 14:00:00\s+1m42s$/,
    );
    expect(table.stderr).toMatch(/^older: crossdeploy history hello dev --limit 2 --cursor 2\n$/);
    expect(api.received.at(-1)?.url).toBe('/deployments?application=hello&environment=dev&limit=2');

    const json = await runCli(['history', 'hello', 'dev', '--limit', '2', '--json'], { url: api.url });
    const page = JSON.parse(json.stdout);
    expect(page.items).toHaveLength(2);
    expect(page.nextCursor).toBe('2');
  });

  it('shows promotions and rollbacks in history with their source and release numbers', async () => {
    const source = { deploymentId: SOURCE_ID, environment: 'staging', release: 7 };
    api.seed('success', FINAL_STAGE, { application: 'shop', environment: 'prod', kind: 'promotion', source });
    api.seed('success', FINAL_STAGE, {
      application: 'shop',
      environment: 'prod',
      kind: 'rollback',
      rollbackOf: 3,
      source: { ...source, environment: 'prod', release: 3 },
      freezeOverride: true,
    });
    const table = await runCli(['history', 'shop', 'prod'], { url: api.url });
    expect(table.code).toBe(0);
    const [, rollback, promotion] = table.stdout.trimEnd().split('\n');
    expect(rollback).toMatch(/\sSUCCEEDED\s+\d+\s+rollback of release 3, freeze override\s+main@1a2b3c4\s/);
    expect(promotion).toMatch(/\sSUCCEEDED\s+\d+\s+promotion from staging \(release 7\)\s+main@1a2b3c4\s/);
    expect(api.contractErrors).toEqual([]);
  });

  it('prints job output with logs, and --follow stops when the deployment is done', async () => {
    const id = api.seed('success');
    const logs = await runCli(['logs', id], { url: api.url });
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe(
      [
        '14:00:03 build  + sam build --template-file template.yaml',
        '14:00:35 build  Build Succeeded',
        '14:00:40 deploy + sam deploy --stack-name hello-dev',
        '',
      ].join('\n'),
    );

    const running = api.seed('success', 2);
    const follow = await runCli(['logs', running, '--follow', '--json'], { url: api.url });
    expect(follow.code).toBe(0);
    const items = follow.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(items.map((item: { message: string }) => item.message)).toEqual([
      '+ sam build --template-file template.yaml',
      'Build Succeeded',
      '+ sam deploy --stack-name hello-dev',
    ]);
  });

  it('lists applications, and prints the API body with --json', async () => {
    const table = await runCli(['apps'], { url: api.url });
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n').slice(0, 2)).toEqual([
      'APPLICATION  DEFAULT REF  ENVIRONMENT  ACCOUNT       REGION     STACK      MODE',
      'hello        main         dev          123456789012  eu-west-1  hello-dev  reject',
    ]);
    const json = await runCli(['apps', '--json'], { url: api.url });
    expect(JSON.parse(json.stdout)).toEqual(APPLICATIONS);
  });

  it('exits 2 on a usage error without contacting the API', async () => {
    const run = await runCli(['deploy', 'hello'], { url: api.url });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('missing arguments');
    expect(api.received).toEqual([]);
  });

  it('promotes with --wait: no build, the source named, the new release at the end', async () => {
    const run = await runCli(
      ['promote', 'hello', 'staging', 'prod', '--reason', 'weekly release', '--wait'],
      { url: api.url },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [first, ...rest] = run.stdout.trimEnd().split('\n');
    expect(first).toMatch(
      /^promoting hello staging → prod \(staging release 7\) — deployment 01JTEST\d{19}$/,
    );
    expect(rest).toEqual([
      'requested by alice (local)',
      'validated: account 123456789012, eu-west-1, stack hello-prod, promoting the build of 1a2b3c4 from staging',
      'lock acquired',
      'role assumed in account 123456789012 (crossdeploy-deploy)',
      'deploy started',
      'deploy finished in 1m02s',
      expect.stringMatching(/^succeeded in 1m42s, release \d+$/),
      'lock released',
    ]);
    const post = api.received.find((r) => r.method === 'POST');
    expect(post?.url).toBe('/promotions');
    expect(JSON.parse(post?.body ?? '')).toEqual({
      application: 'hello',
      from: 'staging',
      to: 'prod',
      reason: 'weekly release',
    });
    expect(post?.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(api.contractErrors).toEqual([]);
  });

  it('promotes without --wait: prints the id, what is promoted and the status URL', async () => {
    const run = await runCli(['promote', 'hello', 'staging', 'prod', '--dry-run'], { url: api.url });
    expect(run.code).toBe(0);
    const id = /deployment (01JTEST\d{19}) queued/.exec(run.stdout)?.[1];
    expect(run.stdout).toBe(
      `deployment ${id} queued (hello/prod, promotion from staging release 7, dry run)\nstatus: ${api.url}/deployments/${id}\n`,
    );
    const json = await runCli(['promote', 'hello', 'staging', 'prod', '--json'], { url: api.url });
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: 'QUEUED',
      kind: 'promotion',
      source: { deploymentId: SOURCE_ID, environment: 'staging', release: 7 },
    });
  });

  it('exits 1 with PROMOTION_NOT_ALLOWED and the rule when the registry does not allow the path', async () => {
    const run = await runCli(['promote', 'hello', 'dev', 'prod', '--wait'], { url: api.url });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      '✗ Promotion not allowed (403 PROMOTION_NOT_ALLOWED): prod may be promoted only from staging, not from dev',
    );
    expect(run.stderr).toMatch(/recorded as deployment 01JTEST\d{19}/);
    const json = await runCli(['promote', 'hello', 'prod', 'staging', '--json'], { url: api.url });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 403, code: 'PROMOTION_NOT_ALLOWED' });
  });

  it('rolls back with --wait and --override-freeze: the release redeployed and the override shown', async () => {
    const run = await runCli(['rollback', 'hello', 'prod', '41', '--override-freeze', '--wait'], {
      url: api.url,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [first, ...rest] = run.stdout.trimEnd().split('\n');
    expect(first).toMatch(/^rolling back hello\/prod to release 41 — deployment 01JTEST\d{19}$/);
    expect(rest.slice(0, 3)).toEqual([
      'requested by alice (local)',
      'validated: account 123456789012, eu-west-1, stack hello-prod, redeploying release 41 (the build of 1a2b3c4)',
      'freeze window "year-end" (until 2025-02-03T00:00:00.000Z) overridden by alice (local)',
    ]);
    expect(rest).not.toContain('build started');
    expect(rest.at(-2)).toMatch(/^succeeded in 1m42s, release \d+$/);
    const post = api.received.find((r) => r.method === 'POST');
    expect(post?.url).toBe('/rollbacks');
    expect(JSON.parse(post?.body ?? '')).toEqual({
      application: 'hello',
      environment: 'prod',
      release: 41,
      overrideFreeze: true,
    });

    const id = /deployment (01JTEST\d{19})/.exec(first ?? '')?.[1] ?? '';
    const status = await runCli(['status', id], { url: api.url });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(
      `kind        rollback of release 41, build output of deployment ${SOURCE_ID}`,
    );
    expect(status.stdout).toMatch(/\nrelease {5}\d+\n/);
    expect(status.stdout).toContain('freeze      a freeze window was overridden by an approver');
    expect(api.contractErrors).toEqual([]);
  });

  it('exits 1 with UNKNOWN_RELEASE for a release the environment never had', async () => {
    const run = await runCli(['rollback', 'hello', 'prod', '99'], { url: api.url });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('✗ Unknown release (404 UNKNOWN_RELEASE): hello/prod has no release 99');
  });

  it.each([
    ['promote without a target environment', ['promote', 'hello', 'staging'], 'missing arguments'],
    [
      'promote with a ref',
      ['promote', 'hello', 'staging', 'prod', '--ref', 'main'],
      '--ref is not an option of `promote`',
    ],
    ['rollback without a release', ['rollback', 'hello', 'prod'], 'missing arguments'],
    [
      'rollback to a release that is not a number',
      ['rollback', 'hello', 'prod', 'latest'],
      '<release> must be a release number',
    ],
    ['rollback to release 0', ['rollback', 'hello', 'prod', '0'], '<release> must be a release number'],
  ])('exits 2 for %s without contacting the API', async (_what, args, message) => {
    const run = await runCli(args, { url: api.url });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stderr).toContain(`crossdeploy ${args[0]} --help`);
    expect(api.received).toEqual([]);
  });

  it('exits 2 when nothing listens at the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const run = await runCli(['apps'], { env: { PORT: String(port) } });
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `crossdeploy: cannot reach crossdeploy at http://127.0.0.1:${port} (ECONNREFUSED) — is \`npm start\` running?\n`,
    );
  });

  const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find(
    (path) =>
      existsSync(path) &&
      Number(execFileSync(path, ['-p', 'process.versions.node.split(".")[0]']).toString()) < 24,
  );
  it.skipIf(!oldNode)('explains the Node version and exits 2 on Node < 24', async () => {
    const run = await runCli(['apps'], { node: oldNode as string });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^crossdeploy needs Node >= 24/);
  });
});
