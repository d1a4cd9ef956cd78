import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { ConfigError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import { loadRegistryFile } from '#shared/registry/file.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { withDoctorRoutes } from '../functions/doctor/routes.ts';
import { banner } from './banner.ts';
import { checkLocalSources, isLoopback, type LocalConfig } from './config.ts';
import { claimDataDir } from './data-dir.ts';
import { localDoctorApi } from './doctor.ts';
import { createLocalHttpServer, createSlackHttpServer } from './http.ts';
import { createOrchestrator } from './orchestrator.ts';
import { InstanceOwnership, instanceIdOf } from './ownership.ts';
import { recoverOnStart, retryPending } from './recover.ts';
import { enabledSchedules, LocalScheduler } from './scheduler.ts';
import { openLocalStore } from './store.ts';
import { LostEventSweep } from './sweep.ts';
import { detectAwsCredentials, localRunnerOf } from './targets.ts';

export interface RunningServer {
  url: string;
  banner: string;
  /** Stops job groups, the HTTP server and the store, in that order. */
  close(): Promise<void>;
}

/**
 * Starts local mode: the store, the registry, recovery of whatever a previous process left in flight, and
 * then (only then) the HTTP server.
 */
export async function startLocalServer(config: LocalConfig): Promise<RunningServer> {
  // The registry first: a broken one leaves nothing behind, not even an empty data directory.
  const registry = loadRegistryFile(config.registryPath);
  checkLocalSources(registry, config.registryPath);
  mkdirSync(config.dataDir, { recursive: true });
  const releaseDataDir = claimDataDir(config.dataDir);
  const local = await openLocalStore(config);
  // This data directory's instance: it owns what it starts, and renews a lease while it runs, so that
  // another server on a shared table leaves its deployments alone (local/ownership.ts).
  const ownership = new InstanceOwnership({
    store: local.store,
    instanceId: instanceIdOf(config.dataDir),
    dataDir: config.dataDir,
    clock: { now: () => new Date() },
  });
  try {
    await ownership.start();
  } catch (error) {
    // Refused (a copied data directory): leave nothing held behind.
    await local.close();
    releaseDataDir();
    throw error;
  }
  const needsRealSts = Object.values(registry.applications).some((app) =>
    Object.values(app.environments).some((env) => localRunnerOf(env.runner) === 'local'),
  );
  const credentials = needsRealSts ? await detectAwsCredentials() : undefined;

  const host = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
  const orchestrator = createOrchestrator({
    store: local.store,
    registry,
    registryPath: config.registryPath,
    dataDir: config.dataDir,
    ownership,
  });

  let stopping = false;
  const recovery = await recoverOnStart({
    store: local.store,
    registry,
    runner: orchestrator.runner,
    reconcileDeps: orchestrator.reconcileDeps,
    // The embedded store is this server's alone; a configured table may be shared with a deployed
    // orchestrator and with other local servers.
    ownsStore: config.dynamo === undefined,
    ownership,
  });
  for (const { deploymentId, reason } of recovery.left) {
    logger.warn('a deployment in flight is left to the server that owns it', { deploymentId, reason });
  }
  retryPending(
    recovery.pending,
    orchestrator.reconcileDeps,
    () => stopping,
    (deploymentId, error) => {
      if (error)
        logger.warn('a deployment from before the restart is still not settled', { deploymentId, error });
      else logger.info('a deployment from before the restart is settled', { deploymentId });
    },
  );

  const server = createLocalHttpServer({
    // The doctor's routes (/doctor/...) next to the API's, as API Gateway routes them to DoctorFunction.
    api: withDoctorRoutes(orchestrator.api, localDoctorApi(registry)),
    logs: orchestrator.logs,
    store: local.store,
    requester: { type: 'local', user: userInfo().username },
    loopbackOnly: isLoopback(config.host),
    ...(config.apiToken ? { apiToken: config.apiToken } : {}),
  });
  try {
    await listen(server, config.port, config.host, 'PORT', 'npm start');
  } catch (error) {
    // Port taken: leave nothing held behind (the lease, the store, the data directory's claim).
    stopping = true;
    await orchestrator.runner.stopAll();
    await ownership.stop().catch(() => undefined);
    await local.close();
    releaseDataDir();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;
  // Slack's own listener: the only port a tunnel should expose (docs/slack.md).
  const slackServer =
    config.slackPort === undefined
      ? undefined
      : createSlackHttpServer({
          api: orchestrator.api,
          requester: { type: 'local', user: userInfo().username },
        });
  if (slackServer) {
    try {
      await listen(slackServer, config.slackPort ?? 0, config.host, 'CROSSDEPLOY_SLACK_PORT', 'npm start');
    } catch (error) {
      server.close();
      throw error;
    }
  }
  const slackUrl = slackServer
    ? `http://${host}:${(slackServer.address() as AddressInfo).port}/slack/commands`
    : undefined;
  // Known only now (PORT=0 picks one); no job can have started before the server listened.
  orchestrator.runner.baseUrl = url;
  // Schedules start workflows whose jobs call back to the server: only once it listens.
  const scheduler = new LocalScheduler({
    registry,
    workflow: orchestrator.workflow,
    clock: orchestrator.clock,
  });
  if (config.schedules) scheduler.start();
  const sweep = new LostEventSweep(orchestrator.reconcileDeps);
  sweep.start();

  const text = banner({
    url,
    registryPath: config.registryPath,
    registry,
    dataDir: config.dataDir,
    store: local.description,
    tokenRequired: Boolean(config.apiToken),
    ...(slackUrl ? { slackUrl } : {}),
    credentials,
    recovery: {
      stoppedJobs: recovery.stoppedJobs.length,
      reconciled: recovery.reconciled.length,
      pending: recovery.pending.length,
      left: recovery.left.length,
    },
  });

  return {
    url,
    banner: text + scheduleBanner(scheduler, registry, config.schedules),
    async close() {
      stopping = true;
      await sweep.stop();
      scheduler.stop();
      await scheduler.idle();
      orchestrator.workflow.stop();
      server.close();
      server.closeAllConnections();
      slackServer?.close();
      slackServer?.closeAllConnections();
      await orchestrator.runner.stopAll();
      try {
        await ownership.stop();
      } catch (error) {
        logger.warn('could not end this server instance lease; it runs out by itself', { error });
      }
      await local.close();
      releaseDataDir();
    },
  };
}

/** Listens, or says in one line why not and which variable picks another port (not a stack trace). */
function listen(
  server: Server,
  port: number,
  host: string,
  variable: string,
  command: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new ConfigError(
            `port ${port} on ${host} is already in use (another crossdeploy, or another program): stop it, or pick another port, e.g. ${variable}=${port + 1} ${command}`,
            { cause: error },
          ),
        );
      } else if (error.code === 'EACCES') {
        reject(
          new ConfigError(
            `port ${port} on ${host} needs privileges this user lacks: set ${variable} to 1024 or above`,
            {
              cause: error,
            },
          ),
        );
      } else {
        reject(error);
      }
    });
    server.listen(port, host, () => resolve());
  });
}

/** The banner's schedule lines: what runs when, or that schedules are off. Nothing without schedules. */
function scheduleBanner(scheduler: LocalScheduler, registry: Registry, on: boolean): string {
  const count = enabledSchedules(registry).length;
  if (count === 0) return '';
  if (!on) return `\nschedules  off (CROSSDEPLOY_SCHEDULES=off): ${count} schedule(s) not run\n`;
  const lines = scheduler
    .upcoming()
    .map(
      ({ application, schedule, at }) =>
        `schedules  ${application} ${schedule.name} (${schedule.from} -> ${schedule.to}): ${schedule.schedule} ${schedule.timezone}, next ${at.toISOString()}`,
    );
  return `\n${lines.join('\n')}\n`;
}
