import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDeploymentStore } from '#shared/aws/store.ts';
import { processIdentity } from '../../local/processes.ts';
import {
  createFixture,
  deploy,
  deployment,
  eventTypes,
  type Fixture,
  type ServerProcess,
  startServer,
  waitFor,
  waitForTerminal,
} from './support/local-server.ts';

/**
 * Two real local servers (`node local/main.ts`, each with its own data directory) on one DynamoDB table,
 * served by a dynalite of this file's own. The second server's start-up recovery must not touch what the
 * first one is running.
 */

let fixture: Fixture;
let db: Server;
let shared: NodeJS.ProcessEnv;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  fixture = await createFixture();
  db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
  shared = {
    CROSSDEPLOY_TABLE_NAME: 'crossdeploy-shared',
    CROSSDEPLOY_DYNAMODB_ENDPOINT: `http://127.0.0.1:${(db.address() as AddressInfo).port}`,
  };
}, 60_000);

afterAll(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  await fixture?.sts.close();
  await new Promise<void>((resolve) => (db ? db.close(() => resolve()) : resolve()));
  if (fixture) rmSync(fixture.root, { recursive: true, force: true });
});

/** The shared table, read directly. */
function tableStore() {
  const client = new DynamoDBClient({
    endpoint: shared.CROSSDEPLOY_DYNAMODB_ENDPOINT ?? '',
    region: 'eu-west-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return new DynamoDeploymentStore({
    client: DynamoDBDocumentClient.from(client),
    tableName: shared.CROSSDEPLOY_TABLE_NAME ?? '',
  });
}

const flag = () => join(fixture.records, 'slow.flag');
const pidFile = () => join(fixture.records, 'slow.pid');
const waitForSlowJob = () =>
  waitFor('the deploy job to run', () =>
    existsSync(pidFile()) ? Number(readFileSync(pidFile(), 'utf8')) : undefined,
  );

async function start(
  name: string,
  dataDir = mkdtempSync(join(fixture.root, `${name}-`)),
  extra: NodeJS.ProcessEnv = {},
) {
  const server = await startServer(fixture, dataDir, { ...shared, ...extra });
  servers.push(server);
  return server;
}

describe('two local servers on one table', () => {
  it("starting a second server leaves the first server's running deployment and job alone", async () => {
    rmSync(pidFile(), { force: true });
    writeFileSync(flag(), '');
    const first = await start('first');
    const { body } = await deploy(first.url, { application: 'demo', environment: 'slow' });
    const id = String(body.deploymentId);
    const jobPid = await waitForSlowJob();

    const second = await start('second', undefined, { POWERTOOLS_LOG_LEVEL: 'WARN' });
    expect(second.output()).not.toContain('ORCHESTRATOR_RESTARTED');
    const left = second
      .output()
      .split('\n')
      .find((line) => line.includes('a deployment in flight is left to the server that owns it'));
    expect(left).toContain(id);
    expect(left).toContain('another server owns it');
    expect(second.output()).toMatch(/left {7}1 local deployment\(s\) in flight that are not this server's/);
    // The first server's deployment is still its own: running, its job alive, its lock held.
    expect(await deployment(second.url, id)).toMatchObject({ status: 'RUNNING', phase: 'DEPLOYING' });
    expect(processIdentity(jobPid)).toBeDefined();
    const busy = await deploy(second.url, { application: 'demo', environment: 'slow' });
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('ENVIRONMENT_BUSY');

    // And it finishes there, as if the second server had never started.
    unlinkSync(flag());
    expect(await waitForTerminal(first.url, id)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await eventTypes(first.url, id)).not.toContain('SETTLED');

    // A clean shutdown ends the lease at once: its instance counts as gone from then on.
    expect((await second.stop()).code).toBe(0);
    const instanceId = readFileSync(join(second.dataDir, 'instance-id'), 'utf8').trim();
    expect(await tableStore().getInstanceLease(instanceId)).toMatchObject({
      stoppedAt: expect.any(String),
      dataDir: second.dataDir,
    });
    const lease = await tableStore().getInstanceLease(instanceId);
    expect(lease?.leaseExpiresAt).toBe(lease?.stoppedAt);
  }, 120_000);

  it('after kill -9, restarting on the same data directory settles its own deployment at once, while another server runs', async () => {
    rmSync(pidFile(), { force: true });
    writeFileSync(flag(), '');
    const bystander = await start('bystander');
    const dataDir = mkdtempSync(join(fixture.root, 'owner-'));
    const owner = await start('owner', dataDir);
    const { body } = await deploy(owner.url, { application: 'demo', environment: 'slow' });
    const id = String(body.deploymentId);
    const jobPid = await waitForSlowJob();

    await owner.stop('SIGKILL');
    expect(processIdentity(jobPid)).toBeDefined();
    const restarted = await start('owner', dataDir);
    // Its lease has not run out, but this is the same data directory: the claim proves its server gone.
    expect(processIdentity(jobPid)).toBeUndefined();
    expect(await deployment(bystander.url, id)).toMatchObject({
      status: 'FAILED',
      errorCode: 'ORCHESTRATOR_RESTARTED',
    });
    expect(await eventTypes(restarted.url, id)).toEqual(
      expect.arrayContaining(['SETTLED', 'FAILED', 'LOCK_RELEASED']),
    );
    unlinkSync(flag());
    await restarted.stop();
    await bystander.stop();
  }, 120_000);
});
