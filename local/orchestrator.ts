import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ulid } from 'ulid';
import { leaseSeconds } from '#shared/config.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import type { Registry, Target } from '#shared/registry/registry.ts';
import { isTerminal, type JobKind } from '#shared/types.ts';
import { createHandler as acquireLockHandler } from '../functions/acquire-lock/handler.ts';
import { createApi } from '../functions/api/routes.ts';
import { createHandler as approvalHandler } from '../functions/approval/handler.ts';
import { createHandler as assumeTargetRoleHandler } from '../functions/assume-target-role/handler.ts';
import { createHandler as jobEventsHandler } from '../functions/job-events/handler.ts';
import type { ReconcileDeps } from '../functions/reconcile/core.ts';
import { createHandler as recordResultHandler } from '../functions/record-result/handler.ts';
import { createHandler as releaseLockHandler } from '../functions/release-lock/handler.ts';
import { createLocalChat } from '../functions/slack/local.ts';
import { createHandler as startJobHandler } from '../functions/start-job/handler.ts';
import { createHandler as validateRequestHandler } from '../functions/validate-request/handler.ts';
import { GitCommitTimes } from './commit-times.ts';
import { type JobExecutor, LocalJobRunner } from './job-runner.ts';
import { LocalLogReader, LocalLogWriter } from './logs.ts';
import { type InstanceOwnership, owningStore } from './ownership.ts';
import { LocalTargetAccess, localRunnerOf } from './targets.ts';
import { withUnrecordedJobs } from './unrecorded-jobs.ts';
import { LocalTaskTokens, WorkflowEngine } from './workflow-engine.ts';
import { LocalWorkflowStarter } from './workflow-starter.ts';

/**
 * Local mode's wiring: the real handlers (each module's `createHandler`) with local dependencies behind the
 * same ports, the real statemachine/deploy.asl.json on the local engine, and the API core. It mirrors
 * test/support/workflow.ts, with the local job runner in place of CodeBuild and local target access in place
 * of the mocked STS.
 */

const SHIMS = fileURLToPath(new URL('./shims/', import.meta.url));

/** The lock lease: the deploy job's queued + build timeout plus a margin, as template.yaml's defaults. */
const LOCK_LEASE_SECONDS = leaseSeconds(10, 180);
/** In local mode the artifacts "bucket" is a directory; this name only fills OUTPUT_BUCKET. */
export const LOCAL_OUTPUT_BUCKET = 'crossdeploy-local-artifacts';

export interface OrchestratorOptions {
  store: DeploymentStore;
  registry: Registry;
  registryPath: string;
  dataDir: string;
  baseUrl?: string;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  /** Wait states (the settle loop) and retry intervals, shortened for a local machine. */
  waitMs?: number;
  retryMs?: number;
  /** Runs jobs in place of the bash runner (LocalJobRunnerOptions.execute). */
  executeJob?: JobExecutor;
  /** Claims each deployment this server creates for its instance (a table other servers may share). */
  ownership?: Pick<InstanceOwnership, 'claim'>;
  /** Keep every execution's engine events (the bench reads them); off in the server, where waits are long. */
  keepEngineEvents?: boolean;
}

export function createOrchestrator(options: OrchestratorOptions) {
  const { registry, dataDir } = options;
  const clock = options.clock ?? { now: () => new Date() };
  // The runner the job runner and target access pick for the environment (local/targets.ts), on the record.
  const isSimulated = (target: Target) => localRunnerOf(target.env.runner) === 'simulate';
  // Chat: progress follows the audit events the cores write (no EventBridge here); the route joins the API.
  const chat = createLocalChat({
    env: options.env ?? process.env,
    registry,
    clock,
    newId: ulid,
    baseUrl: () => runner.baseUrl,
    isSimulated,
  });
  const store = chat.observe(
    options.ownership ? owningStore(options.store, options.ownership) : options.store,
  );
  const logsDir = join(dataDir, 'logs');
  const logWriter = new LocalLogWriter(logsDir);
  const logs = new LocalLogReader(logsDir);
  const simulateBin = prepareShims(join(dataDir, 'bin', 'simulate'));

  const tokens = new LocalTaskTokens();
  const runner = new LocalJobRunner({
    dataDir,
    registry,
    registryDir: dirname(options.registryPath),
    logs: logWriter,
    simulateBin,
    ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.executeJob ? { execute: options.executeJob } : {}),
  });
  const targets = new LocalTargetAccess({ store, registry, dataDir });
  const settleDeps = { runner, stacks: targets, registry };
  // What settles a deployment also sees a job whose start could not be recorded (local/unrecorded-jobs.ts).
  const settleStore = withUnrecordedJobs(store, runner);
  const reconcileDeps: ReconcileDeps = {
    store: settleStore,
    clock,
    tokens,
    leaseSeconds: LOCK_LEASE_SECONDS,
    ...settleDeps,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };

  const jobEvents = jobEventsHandler(() => ({ store, runner, tokens, clock }));
  runner.onFinished = async (event) => {
    // In AWS the event follows the starter's record of the build; a fast local job must not overtake it.
    const info = (await runner.describe([event.detail['build-id']]))[0];
    if (info?.deploymentId && info.job) await recordedJob(store, info.deploymentId, info.job, info.buildId);
    await jobEvents(event);
  };

  const functions = {
    ValidateRequestFunctionArn: validateRequestHandler(() => ({
      store,
      registry,
      clock,
      isSimulated,
    })) as never,
    StartJobFunctionArn: startJobHandler(() => ({
      store,
      registry,
      runner,
      clock,
      settings: { outputBucket: LOCAL_OUTPUT_BUCKET },
    })) as never,
    AcquireLockFunctionArn: acquireLockHandler(() => ({
      store,
      clock,
      registry,
      leaseSeconds: LOCK_LEASE_SECONDS,
      tokens,
    })) as never,
    AssumeTargetRoleFunctionArn: assumeTargetRoleHandler(() => ({
      store,
      registry,
      assumer: targets,
      clock,
    })) as never,
    RecordResultFunctionArn: recordResultHandler(() => ({
      store: settleStore,
      clock,
      tokens,
      leaseSeconds: LOCK_LEASE_SECONDS,
      ...settleDeps,
    })) as never,
    ReleaseLockFunctionArn: releaseLockHandler(() => ({
      store,
      clock,
      tokens,
      leaseSeconds: LOCK_LEASE_SECONDS,
    })) as never,
    ApprovalFunctionArn: approvalHandler(() => ({
      store,
      registry,
      changeSets: targets,
      stacks: targets,
      clock,
    })) as never,
  };
  const engine = new WorkflowEngine({
    functions,
    tokens,
    waitMs: options.waitMs ?? 2_000,
    retryMs: options.retryMs ?? 1_000,
    keepEvents: options.keepEngineEvents ?? false,
  });
  const workflow = new LocalWorkflowStarter({ engine, store, reconcileDeps });
  const commitTimes = new GitCommitTimes({ registry, registryPath: options.registryPath });
  const rest = createApi({
    store,
    workflow,
    logs,
    registry,
    clock,
    newId: ulid,
    isSimulated,
    tokens,
    commitTimes,
  });
  const api = chat.serve(rest, { store, workflow, tokens });

  return { store, registry, clock, tokens, runner, targets, reconcileDeps, engine, workflow, api, logs };
}

export type Orchestrator = ReturnType<typeof createOrchestrator>;

/** The simulate stand-ins, copied executable into the data directory (a checkout may have lost the mode bits). */
function prepareShims(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of ['sam', 'aws']) {
    copyFileSync(join(SHIMS, name), join(dir, name));
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

async function recordedJob(store: DeploymentStore, deploymentId: string, job: JobKind, buildId: string) {
  for (let i = 0; i < 200; i++) {
    const deployment = await store.getDeployment(deploymentId);
    if (!deployment || isTerminal(deployment.status) || deployment.jobs?.[job]?.buildId === buildId) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
