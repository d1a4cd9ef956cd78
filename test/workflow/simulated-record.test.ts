import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkflowStarter } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry.ts';
import type { Requester } from '#shared/types.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import { createApi } from '../../functions/api/routes.ts';
import { createHandler as validateHandler } from '../../functions/validate-request/handler.ts';
import type { JobExecutor, JobOutcome } from '../../local/job-runner.ts';
import { createOrchestrator, type Orchestrator } from '../../local/orchestrator.ts';

/**
 * A `runner: simulate` deployment says so wherever it is read: the record, its events, every API answer and
 * history. Local mode is the only place jobs are simulated; in AWS the same registry entry runs CodeBuild,
 * so there the record must not claim a simulation.
 */

const env = (account: string, runner: 'simulate' | 'local' | 'codebuild') => ({
  accountId: account,
  region: 'eu-west-1',
  deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy/deploy`,
  executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy/cfn-exec`,
  stackName: `hello-world-${account}`,
  artifactsBucket: `artifacts-${account}-eu-west-1`,
  allowedRequesters: { local: ['*'], iam: ['ci-*'], schedule: ['nightly'] },
  runner,
});

const registry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git', localPath: '.' },
      environments: {
        prod: env('222222222222', 'simulate'),
        real: env('333333333333', 'local'),
      },
    },
  },
});

const alice: Requester = { type: 'local', user: 'alice' };

const BUILD_SUCCEEDED: JobOutcome = {
  status: 'SUCCEEDED',
  resolvedCommit: 'a'.repeat(40),
  exportedVariables: {
    BUILD_OUTPUT_VERSION_ID: 'sim-version-1',
    BUILD_OUTPUT_SHA256: createHash('sha256').update('sim').digest('hex'),
    RESOLVED_COMMIT: 'a'.repeat(40),
  },
};

const event = (name: string): APIGatewayProxyEventV2 =>
  JSON.parse(readFileSync(new URL(`../events/apigw/${name}`, import.meta.url), 'utf8'));

function postEvent(body: Record<string, unknown>): APIGatewayProxyEventV2 {
  const e = event('post-deployments.json');
  e.body = JSON.stringify(body);
  e.headers = { ...e.headers, 'content-length': String(Buffer.byteLength(e.body)) };
  return e;
}

function getEvent(template: string, id?: string, query?: Record<string, string>): APIGatewayProxyEventV2 {
  const e = event('get-deployment.json');
  const path = id === undefined ? template : template.replace('{id}', id);
  e.routeKey = `GET ${template}`;
  e.requestContext.routeKey = e.routeKey;
  e.rawPath = path;
  e.requestContext.http.path = path;
  if (id === undefined) delete e.pathParameters;
  else e.pathParameters = { id };
  if (query) {
    e.queryStringParameters = query;
    e.rawQueryString = new URLSearchParams(query).toString();
  }
  return e;
}

const dirs: string[] = [];
const orchestrators: Orchestrator[] = [];
afterEach(async () => {
  for (const o of orchestrators.splice(0)) {
    o.workflow.stop();
    await o.runner.stopAll();
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Local mode's own wiring (local/orchestrator.ts) with jobs that end at once, on a fresh table. */
async function localMode() {
  const { store } = await createTestStore();
  const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-sim-'));
  dirs.push(dataDir);
  const execute: JobExecutor = async (job) =>
    job.job === 'build' ? BUILD_SUCCEEDED : { status: 'SUCCEEDED' };
  const orchestrator = createOrchestrator({
    store,
    registry,
    registryPath: join(dataDir, 'registry.yaml'),
    dataDir,
    env: {},
    waitMs: 0,
    retryMs: 0,
    executeJob: execute,
  });
  orchestrators.push(orchestrator);
  const call = async (method: string, template: string, e: APIGatewayProxyEventV2) =>
    expectValidResponse(method, template, await orchestrator.api(e, alice)) as Record<string, unknown>;
  return { orchestrator, store, call };
}

async function settled(call: Awaited<ReturnType<typeof localMode>>['call'], id: string) {
  for (let i = 0; i < 400; i++) {
    // A scheduled request's record appears once the workflow's first step has run (404 until then).
    const body = await call('GET', '/deployments/{id}', getEvent('/deployments/{id}', id));
    if (typeof body.status === 'string' && !['QUEUED', 'RUNNING'].includes(body.status)) return body;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`deployment ${id} did not finish`);
}

describe('a runner: simulate deployment in local mode', () => {
  it('is marked simulated in its record, its events and every API answer', async () => {
    const { call, store } = await localMode();
    const accepted = await call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'prod', ref: 'main' }),
    );
    expect(accepted.simulated).toBe(true);
    const id = String(accepted.deploymentId);

    const done = await settled(call, id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', simulated: true });
    expect((await store.getDeployment(id))?.simulated).toBe(true);

    const events = await call('GET', '/deployments/{id}/events', getEvent('/deployments/{id}/events', id));
    const detail = (type: string) =>
      (events.items as { type: string; detail: Record<string, unknown> }[]).find((e) => e.type === type)
        ?.detail;
    expect(detail('REQUESTED')?.simulated).toBe(true);
    expect(detail('VALIDATED')?.simulated).toBe(true);
    expect(detail('SUCCEEDED')?.simulated).toBe(true);

    const history = await call(
      'GET',
      '/deployments',
      getEvent('/deployments', undefined, { application: 'hello-world', environment: 'prod' }),
    );
    expect(history.items).toEqual([expect.objectContaining({ deploymentId: id, simulated: true })]);
  });

  it('is marked simulated when a schedule started it (the workflow creates the record)', async () => {
    const { orchestrator, call } = await localMode();
    const id = '01JNSCHEDULE00000000000001';
    await orchestrator.workflow.start(id, {
      application: 'hello-world',
      environment: 'prod',
      ref: 'main',
      schedule: { name: 'nightly', scheduledTime: '2026-03-01T12:00:00Z' },
      requester: { type: 'schedule', scheduleName: 'nightly' },
    });
    expect(await settled(call, id)).toMatchObject({ status: 'SUCCEEDED', simulated: true });
  });

  it('leaves a runner: local deployment unmarked', async () => {
    const { orchestrator, call, store } = await localMode();
    // A real target would be reached through the machine's credentials: here it refuses, with no network.
    orchestrator.targets.preflight = async () => {
      throw new Error('no STS in this test');
    };
    const accepted = await call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'real', ref: 'main' }),
    );
    expect(accepted).not.toHaveProperty('simulated');
    const id = String(accepted.deploymentId);
    const done = await settled(call, id);
    expect(done.status).toBe('FAILED');
    expect(done).not.toHaveProperty('simulated');
    const events = await store.listEvents(id);
    expect(events.map((e) => e.type)).toContain('VALIDATED');
    for (const e of events) expect(e.detail).not.toHaveProperty('simulated');
  });
});

describe('the same registry entry in AWS (CodeBuild runs every job)', () => {
  const recording: WorkflowStarter = { start: async () => undefined };

  it('the API does not mark a runner: simulate environment simulated', async () => {
    const { store } = await createTestStore();
    const api = createApi({
      store,
      workflow: recording,
      logs: { read: async () => ({ items: [] }) },
      registry,
      clock: { now: () => new Date() },
      newId: () => '01JNAWS0000000000000000001',
    });
    const response = await api(postEvent({ application: 'hello-world', environment: 'prod', ref: 'main' }), {
      type: 'iam',
      arn: 'arn:aws:iam::123456789012:role/ci-deployer',
      principal: 'arn:aws:iam::123456789012:role/ci-deployer',
    });
    const body = expectValidResponse('POST', '/deployments', response) as Record<string, unknown>;
    expect(body).not.toHaveProperty('simulated');
    expect(await store.getDeployment('01JNAWS0000000000000000001')).not.toHaveProperty('simulated');
  });

  it('the workflow does not mark a scheduled request to it simulated', async () => {
    const { store } = await createTestStore();
    const validate = validateHandler(() => ({ store, registry, clock: { now: () => new Date() } }));
    const out = await validate({
      deploymentId: '01JNAWS0000000000000000002',
      input: {
        application: 'hello-world',
        environment: 'prod',
        ref: 'main',
        schedule: { name: 'nightly', scheduledTime: '2026-03-01T12:00:00Z' },
        requester: { type: 'schedule', scheduleName: 'nightly' },
      },
    });
    expect(out.outcome).toBe('VALIDATED');
    expect(await store.getDeployment('01JNAWS0000000000000000002')).not.toHaveProperty('simulated');
  });
});
