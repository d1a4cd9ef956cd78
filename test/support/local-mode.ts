import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { inject, vi } from 'vitest';
import type { DeploymentStore } from '#shared/ports.ts';
import { loadRegistryFile } from '#shared/registry/file.ts';
import type { Deployment } from '#shared/types.ts';
import { createLocalHttpServer } from '../../local/http.ts';
import type { JobExecutor, JobOutcome } from '../../local/job-runner.ts';
import { createOrchestrator } from '../../local/orchestrator.ts';
import { type LocalStore, openLocalStore } from '../../local/store.ts';

/**
 * Local mode in-process, for fault injection: the wiring `npm start` uses (local/orchestrator.ts, the real
 * handlers and ASL, the local job runner with a stand-in executor, local/http.ts) on the store local mode
 * opens (local/store.ts) against the test dynalite, reached through a TCP proxy that can reset every
 * connection, as a store that drops its connections for a few seconds does.
 */

/** A TCP proxy in front of the store that, while down, resets every connection (the SDK sees ECONNRESET). */
export class ResettingProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private isDown = false;
  url = '';

  private constructor(target: URL) {
    this.server = createServer((client) => {
      if (this.isDown) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(Number(target.port), target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }

  static async start(target: string): Promise<ResettingProxy> {
    const proxy = new ResettingProxy(new URL(target));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', () => resolve()));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** From now on every open and new connection is reset. */
  down(): void {
    this.isDown = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  up(): void {
    this.isDown = false;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export const BUILD_OUTPUT: JobOutcome = {
  status: 'SUCCEEDED',
  resolvedCommit: 'a'.repeat(40),
  exportedVariables: {
    BUILD_OUTPUT_VERSION_ID: 'v-1',
    BUILD_OUTPUT_SHA256: 'b'.repeat(64),
    RESOLVED_COMMIT: 'a'.repeat(40),
  },
};

const REGISTRY = `applications:
  hello-world:
    source:
      type: GITHUB
      location: https://github.com/example-org/hello-world.git
    environments:
      staging:
        accountId: "111111111111"
        region: us-east-1
        deployRoleArn: arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deploy
        executionRoleArn: arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-cfn-exec
        stackName: hello-world-staging
        artifactsBucket: crossdeploy-artifacts-111111111111-us-east-1
        capabilities: [CAPABILITY_IAM]
        mode: queued
        allowedRequesters:
          local: ["*"]
        runner: simulate
`;

export interface LocalModeOptions {
  /** Runs each job (a stand-in for the buildspec in bash); by default both jobs succeed at once. */
  executeJob?: JobExecutor;
  /** Wraps the store local mode opened (a fault above its retries). */
  wrapStore?: (store: DeploymentStore) => DeploymentStore;
}

export async function startLocalMode(options: LocalModeOptions = {}) {
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-faults-'));
  const registryPath = join(root, 'registry.yaml');
  writeFileSync(registryPath, REGISTRY);
  const registry = loadRegistryFile(registryPath);
  const proxy = await ResettingProxy.start(inject('dynamoEndpoint'));
  // An external store takes the SDK's default chain; the test dynalite checks neither region nor signature.
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  const dataDir = join(root, 'data');
  const local: LocalStore = await openLocalStore({
    port: 0,
    host: '127.0.0.1',
    dataDir,
    registryPath,
    schedules: false,
    dynamo: { endpoint: proxy.url, tableName: `faults-${randomUUID()}` },
  });
  const execute: JobExecutor =
    options.executeJob ?? (async (job) => (job.job === 'build' ? BUILD_OUTPUT : { status: 'SUCCEEDED' }));
  const orchestrator = createOrchestrator({
    store: options.wrapStore ? options.wrapStore(local.store) : local.store,
    registry,
    registryPath,
    dataDir,
    waitMs: 10,
    retryMs: 50,
    executeJob: execute,
  });
  const server = createLocalHttpServer({
    api: orchestrator.api,
    logs: orchestrator.logs,
    store: orchestrator.store,
    requester: { type: 'local', user: userInfo().username },
    loopbackOnly: true,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  orchestrator.runner.baseUrl = url;

  const get = async (id: string) =>
    (await (await fetch(`${url}/deployments/${id}`)).json()) as Deployment & Record<string, unknown>;
  return {
    url,
    root,
    proxy,
    local,
    orchestrator,
    async deploy(): Promise<string> {
      const response = await fetch(`${url}/deployments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ application: 'hello-world', environment: 'staging', ref: 'main' }),
      });
      const body = (await response.json()) as { deploymentId?: string };
      if (response.status !== 202 || !body.deploymentId) {
        throw new Error(`deploy answered ${response.status}: ${JSON.stringify(body)}`);
      }
      return body.deploymentId;
    },
    get,
    /** Polls the record until `done` holds (the vitest timeout bounds it). */
    async waitUntil(id: string, done: (d: Deployment) => boolean): Promise<Deployment> {
      for (;;) {
        const d = await get(id);
        if (done(d)) return d;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async close() {
      orchestrator.workflow.stop();
      server.close();
      server.closeAllConnections();
      await orchestrator.runner.stopAll();
      await local.close();
      await proxy.close();
      vi.unstubAllEnvs();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export type LocalMode = Awaited<ReturnType<typeof startLocalMode>>;
