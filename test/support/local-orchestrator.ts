import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { Registry } from '#shared/registry/registry.ts';
import type { Requester } from '#shared/types.ts';
import { expectValidResponse } from '#test/support/openapi.ts';
import { createTestStore } from '#test/support/store.ts';
import type { JobExecutor, JobOutcome } from '../../local/job-runner.ts';
import { createOrchestrator, type Orchestrator } from '../../local/orchestrator.ts';

/**
 * Local mode's own wiring (local/orchestrator.ts: the real handlers, the real ASL on the local engine, the
 * API and chat route) in this process, on a fresh dynalite table, with jobs that end at once.
 */

export const BUILD_SUCCEEDED: JobOutcome = {
  status: 'SUCCEEDED',
  resolvedCommit: 'a'.repeat(40),
  exportedVariables: {
    BUILD_OUTPUT_VERSION_ID: 'test-version-1',
    BUILD_OUTPUT_SHA256: createHash('sha256').update('test').digest('hex'),
    RESOLVED_COMMIT: 'a'.repeat(40),
  },
};

const fixture = (name: string): APIGatewayProxyEventV2 =>
  JSON.parse(readFileSync(new URL(`../events/apigw/${name}`, import.meta.url), 'utf8'));

export function postEvent(body: Record<string, unknown>): APIGatewayProxyEventV2 {
  const e = fixture('post-deployments.json');
  e.body = JSON.stringify(body);
  e.headers = { ...e.headers, 'content-length': String(Buffer.byteLength(e.body)) };
  return e;
}

export function getEvent(
  template: string,
  id?: string,
  query?: Record<string, string>,
): APIGatewayProxyEventV2 {
  const e = fixture('get-deployment.json');
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

export interface LocalMode {
  orchestrator: Orchestrator;
  store: Orchestrator['store'];
  /** Calls the local API as `requester` and checks the answer against openapi.yaml. */
  call(method: string, template: string, event: APIGatewayProxyEventV2): Promise<Record<string, unknown>>;
  /** Polls until the deployment is final (a scheduled one's record appears only once the workflow ran). */
  settled(id: string): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startLocalMode(
  registry: Registry,
  options: { requester: Requester; env?: NodeJS.ProcessEnv; execute?: JobExecutor },
): Promise<LocalMode> {
  const { store } = await createTestStore();
  const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-local-'));
  const execute: JobExecutor =
    options.execute ?? (async (job) => (job.job === 'build' ? BUILD_SUCCEEDED : { status: 'SUCCEEDED' }));
  const orchestrator = createOrchestrator({
    store,
    registry,
    registryPath: join(dataDir, 'registry.yaml'),
    dataDir,
    env: options.env ?? {},
    waitMs: 0,
    retryMs: 0,
    executeJob: execute,
  });
  const call = async (method: string, template: string, event: APIGatewayProxyEventV2) =>
    expectValidResponse(method, template, await orchestrator.api(event, options.requester)) as Record<
      string,
      unknown
    >;
  const settled = async (id: string) => {
    for (let i = 0; i < 400; i++) {
      const body = await call('GET', '/deployments/{id}', getEvent('/deployments/{id}', id));
      // The outcome's event is written just after the final status (an audit event is two puts, the step
      // claim and the time-keyed item): wait for it too, as `crossdeploy --wait` does.
      if (typeof body.status === 'string' && !['QUEUED', 'RUNNING'].includes(body.status)) {
        const events = await call(
          'GET',
          '/deployments/{id}/events',
          getEvent('/deployments/{id}/events', id),
        );
        if ((events.items as { type: string }[]).some((e) => e.type === body.status)) return body;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`deployment ${id} did not finish`);
  };
  return {
    orchestrator,
    store: orchestrator.store,
    call,
    settled,
    close: async () => {
      orchestrator.workflow.stop();
      await orchestrator.runner.stopAll();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
