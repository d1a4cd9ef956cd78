import { afterEach, describe, expect, it } from 'vitest';
import type { WorkflowStarter } from '#shared/ports.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import type { Requester } from '#shared/types.ts';
import {
  BUILD_SUCCEEDED,
  getEvent,
  type LocalMode,
  postEvent,
  startLocalMode,
} from '#test/support/local-orchestrator.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import { createApi } from '../../functions/api/routes.ts';
import { validateStep } from '../../functions/validate-request/core.ts';
import { createHandler as validateHandler } from '../../functions/validate-request/handler.ts';

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
        // A real environment fed by promotion from the simulated one: its stand-in build outputs must never reach it.
        live: { ...env('444444444444', 'local'), promoteFrom: ['prod'] },
      },
    },
  },
});

const alice: Requester = { type: 'local', user: 'alice' };

const promotionEvent = (body: Record<string, unknown>) => {
  const event = postEvent(body);
  event.routeKey = 'POST /promotions';
  event.requestContext.routeKey = event.routeKey;
  event.rawPath = '/promotions';
  event.requestContext.http.path = '/promotions';
  return event;
};

const modes: LocalMode[] = [];
afterEach(async () => {
  for (const mode of modes.splice(0)) await mode.close();
});

async function localMode() {
  const mode = await startLocalMode(registry, { requester: alice });
  modes.push(mode);
  return mode;
}

describe('a runner: simulate deployment in local mode', () => {
  it('is marked simulated in its record, its events and every API answer', async () => {
    const { call, store, settled } = await localMode();
    const accepted = await call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'prod', ref: 'main' }),
    );
    expect(accepted.simulated).toBe(true);
    const id = String(accepted.deploymentId);

    const done = await settled(id);
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
    const { orchestrator, settled } = await localMode();
    const id = '01JNSCHEDULE00000000000001';
    await orchestrator.workflow.start(id, {
      application: 'hello-world',
      environment: 'prod',
      ref: 'main',
      schedule: { name: 'nightly', scheduledTime: '2026-03-01T12:00:00Z' },
      requester: { type: 'schedule', scheduleName: 'nightly' },
    });
    expect(await settled(id)).toMatchObject({ status: 'SUCCEEDED', simulated: true });
  });

  it('leaves a runner: local deployment unmarked', async () => {
    const { orchestrator, call, store, settled } = await localMode();
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
    const done = await settled(id);
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

describe('a simulated build output never reaches a real environment', () => {
  it('refuses to promote a simulated success into a runner: local environment (SIMULATED_SOURCE, recorded, nothing run)', async () => {
    const jobs: string[] = [];
    const mode = await startLocalMode(registry, {
      requester: alice,
      execute: async (job) => {
        jobs.push(job.job);
        return job.job === 'build' ? BUILD_SUCCEEDED : { status: 'SUCCEEDED' };
      },
    });
    modes.push(mode);
    const { call, store, settled } = mode;
    const simulated = await call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'prod', ref: 'main' }),
    );
    expect(await settled(String(simulated.deploymentId))).toMatchObject({
      status: 'SUCCEEDED',
      simulated: true,
    });
    jobs.length = 0;

    const refused = await call(
      'POST',
      '/promotions',
      promotionEvent({ application: 'hello-world', from: 'prod', to: 'live' }),
    );
    expect(refused).toMatchObject({ status: 409, code: 'SIMULATED_SOURCE' });
    const id = String(refused.deploymentId);
    expect(await store.getDeployment(id)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'SIMULATED_SOURCE',
    });
    expect(jobs).toEqual([]);
  });

  it('refuses in the workflow too, whatever the intake did (Validate Request checks the source again)', async () => {
    const mode = await localMode();
    const { call, store, settled } = mode;
    const simulated = await call(
      'POST',
      '/deployments',
      postEvent({ application: 'hello-world', environment: 'prod', ref: 'main' }),
    );
    await settled(String(simulated.deploymentId));
    const result = await validateStep(
      {
        deploymentId: '01JNSIMDST0000000000000001',
        input: {
          application: 'hello-world',
          environment: 'live',
          promoteFrom: 'prod',
          requester: alice,
          trigger: 'local',
        },
      },
      { store, registry, clock: { now: () => new Date() } },
    );
    expect(result).toEqual({ outcome: 'REJECTED', code: 'SIMULATED_SOURCE' });
    expect(await store.getDeployment('01JNSIMDST0000000000000001')).toMatchObject({
      status: 'REJECTED',
      errorCode: 'SIMULATED_SOURCE',
    });
  });
});
