import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import { DynamoDeploymentStore, TABLE_DEFINITION } from '#shared/aws/store.ts';
import type { WorkflowStarter } from '#shared/ports.ts';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { createApi } from '../functions/api/routes.ts';
import { createLocalHttpServer } from '../local/http.ts';
import type { JobExecutor, JobOutcome } from '../local/job-runner.ts';
import { LocalLogReader } from '../local/logs.ts';
import { createOrchestrator, type Orchestrator } from '../local/orchestrator.ts';
import type { EventLog } from '../local/workflow-engine.ts';
import { DynamoMeter } from './dynamo-meter.ts';
import { nowMs } from './stats.ts';

/**
 * Local mode for the bench, put together from the same pieces `npm start` uses (local/orchestrator.ts:
 * the real handlers, the real ASL on the local engine, the local job runner; local/http.ts: the API over
 * HTTP) with the store on an in-memory dynalite in a process of its own (as with CROSSDEPLOY_DYNAMODB_ENDPOINT),
 * and these additions: a stand-in for the jobs that ends at once (the runner's `execute` option: job records,
 * the state change and the job-events handler stay real), the DynamoMeter on the store's client, a record of
 * every execution's engine events, and counters of the Lambda-like calls the cost section needs.
 */

export const TABLE = 'crossdeploy-bench';

export interface Pair {
  application: string;
  environment: string;
}

const ENVIRONMENTS = ['dev', 'test', 'staging', 'uat', 'prod'];

/** `count` application+environment pairs: applications of five environments each. */
export function benchPairs(count: number): Pair[] {
  return Array.from({ length: count }, (_, i) => ({
    application: `app-${String(Math.floor(i / ENVIRONMENTS.length) + 1).padStart(2, '0')}`,
    environment: ENVIRONMENTS[i % ENVIRONMENTS.length] as string,
  }));
}

/** The registry of those pairs (the real format, loaded by the real loader): simulated targets, queued mode. */
export function registryYaml(pairs: readonly Pair[]): string {
  const apps = new Map<string, string[]>();
  for (const { application, environment } of pairs) {
    apps.set(application, [...(apps.get(application) ?? []), environment]);
  }
  let account = 100_000_000_000;
  const lines = ['applications:'];
  for (const [application, environments] of apps) {
    lines.push(
      `  ${application}:`,
      '    source:',
      '      type: GITHUB',
      `      location: https://github.com/example-org/${application}.git`,
      '    environments:',
    );
    for (const environment of environments) {
      const id = String(++account);
      lines.push(
        `      ${environment}:`,
        `        accountId: "${id}"`,
        '        region: us-east-1',
        `        deployRoleArn: arn:aws:iam::${id}:role/crossdeploy/crossdeploy-deploy`,
        `        executionRoleArn: arn:aws:iam::${id}:role/crossdeploy/crossdeploy-cfn-exec`,
        `        stackName: ${application}-${environment}`,
        `        artifactsBucket: crossdeploy-artifacts-${id}-us-east-1`,
        '        capabilities: [CAPABILITY_IAM]',
        '        allowedRequesters:',
        '          local: ["*"]',
        '        runner: simulate',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** What the stand-in build exports: the variables the real buildspec exports (functions/shared/jobs/job-env.ts). */
export const BUILD_SUCCEEDED: JobOutcome = {
  status: 'SUCCEEDED',
  resolvedCommit: 'a'.repeat(40),
  exportedVariables: {
    BUILD_OUTPUT_VERSION_ID: 'bench-version-1',
    BUILD_OUTPUT_SHA256: createHash('sha256').update('bench').digest('hex'),
    RESOLVED_COMMIT: 'a'.repeat(40),
  },
};

export interface ExecutionRecord {
  deploymentId: string;
  startedAt: number;
  events: EventLog[];
  /** Resolves (never rejects) when the execution has ended and its event log is complete. */
  ended: Promise<'SUCCEEDED' | 'FAILED'>;
  endedAt?: number;
}

export interface JobStartRecord {
  deploymentId: string;
  application: string;
  environment: string;
  job: 'build' | 'deploy';
  at: number;
  /**
   * Date.now() at the start: the clock of the engine's event timestamps and the store's audit times. `at`
   * (the monotonic clock) drifts from it by tens of ms over a long run, more than a hand-over takes.
   */
  wallAt: number;
}

export interface StackOptions {
  pairs: readonly Pair[];
  /** Wait states (the lock-wait poll, 15 s in AWS) and retry intervals, as local mode's options. */
  waitMs: number;
  retryMs?: number;
  /** `api-only`: the API and the store, with a workflow starter that records the start and runs nothing. */
  mode?: 'full' | 'api-only';
}

export interface Stack {
  url: string;
  /** The temporary directory holding the registry and local mode's data. */
  root: string;
  meter: DynamoMeter;
  store: DynamoDeploymentStore;
  /** The store's raw client (unmetered), for bulk loading. */
  raw: DynamoDBClient;
  /** The metered document client the store uses (for a store on another table). */
  doc: DynamoDBDocumentClient;
  orchestrator?: Orchestrator;
  executions: Map<string, ExecutionRecord>;
  jobStarts: JobStartRecord[];
  /** Job-events Lambda invocations (one per finished job, as the CodeBuild state change rule). */
  jobEvents: number;
  /** Workflow starts (api-only mode). */
  starts: number;
  /** Target accesses (each costs local mode one GetItem that AWS does not make). */
  targetLookups: number;
  /** Called synchronously when an execution ends, before anything local mode does after it. */
  onExecutionEnd?: (deploymentId: string) => void;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-bench-'));
  const registryPath = join(root, 'registry.yaml');
  writeFileSync(registryPath, registryYaml(options.pairs));
  const registry = loadRegistryFile(registryPath);

  const db = await startDynalite();
  const clientConfig = {
    endpoint: `http://127.0.0.1:${db.port}`,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  };
  const client = new DynamoDBClient(clientConfig);
  const raw = new DynamoDBClient(clientConfig);
  const meter = new DynamoMeter();
  meter.attach(client, raw);
  await createTable(raw, TABLE);
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const store = new DynamoDeploymentStore({ client: doc, tableName: TABLE });

  const executions = new Map<string, ExecutionRecord>();
  const jobStarts: JobStartRecord[] = [];
  const stack: Stack = {
    url: '',
    root,
    meter,
    store,
    raw,
    doc,
    executions,
    jobStarts,
    jobEvents: 0,
    starts: 0,
    targetLookups: 0,
    close: async () => {},
  };

  const requester = { type: 'local' as const, user: userInfo().username };
  let orchestrator: Orchestrator | undefined;
  let server: Server;
  if (options.mode === 'api-only') {
    // What the API Lambda does per request: validate, record, start (here: count) the execution.
    const workflow: WorkflowStarter = {
      start: async () => {
        stack.starts++;
      },
    };
    const logs = new LocalLogReader(join(root, 'logs'));
    const api = createApi({ store, workflow, logs, registry, clock: { now: () => new Date() }, newId: ulid });
    server = createLocalHttpServer({ api, logs, store, requester, loopbackOnly: true });
  } else {
    const recorded = new Signals();
    meter.onWrite = (operation, input) => {
      // The starter's audit event (BUILD_STARTED, DEPLOY_STARTED) follows its record of the job.
      const type = input.Item?.type?.S;
      if (operation === 'PutItem' && type?.endsWith('_STARTED')) {
        recorded.fire(`${input.Item?.deploymentId?.S}:${type}`);
      }
    };
    const executeJob: JobExecutor = async (job) => {
      const env = job.environmentVariables;
      jobStarts.push({
        deploymentId: job.deploymentId,
        application: env.APPLICATION ?? '',
        environment: env.ENVIRONMENT ?? '',
        job: job.job,
        at: nowMs(),
        wallAt: Date.now(),
      });
      // A CodeBuild job cannot end before StartBuild has answered and the starter has recorded it: the
      // stand-in ends right then (local mode would otherwise poll for the record every 25 ms).
      await recorded.wait(`${job.deploymentId}:${job.job.toUpperCase()}_STARTED`, 5_000);
      return job.job === 'build' ? BUILD_SUCCEEDED : { status: 'SUCCEEDED' };
    };
    orchestrator = createOrchestrator({
      store,
      registry,
      registryPath,
      dataDir: join(root, 'data'),
      waitMs: options.waitMs,
      retryMs: options.retryMs ?? 1_000,
      executeJob,
      keepEngineEvents: true,
    });
    recordExecutions(orchestrator, executions, (id) => stack.onExecutionEnd?.(id));
    // Local mode asks the store which runner an environment uses before every target access; AWS does not.
    const { targets } = orchestrator;
    const preflight = targets.preflight.bind(targets);
    const stackStatus = targets.stackStatus.bind(targets);
    targets.preflight = (params) => {
      stack.targetLookups++;
      return preflight(params);
    };
    targets.stackStatus = (params) => {
      stack.targetLookups++;
      return stackStatus(params);
    };
    const finished = orchestrator.runner.onFinished;
    orchestrator.runner.onFinished = async (event) => {
      stack.jobEvents++;
      await finished(event);
    };
    server = createLocalHttpServer({
      api: orchestrator.api,
      logs: orchestrator.logs,
      store: orchestrator.store,
      requester,
      loopbackOnly: true,
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  stack.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stack.orchestrator = orchestrator;
  if (orchestrator) orchestrator.runner.baseUrl = stack.url;

  stack.close = async () => {
    // Local mode looks at the store once more after an execution ends: let that finish before it closes.
    await Promise.all([...executions.values()].map((e) => e.ended));
    await new Promise((resolve) => setTimeout(resolve, 200));
    orchestrator?.workflow.stop();
    server.close();
    server.closeAllConnections();
    await orchestrator?.runner.stopAll();
    client.destroy();
    raw.destroy();
    await db.stop();
    rmSync(root, { recursive: true, force: true });
  };
  return stack;
}

/**
 * Keeps every execution's engine events (StateEntered, StateRetried, ...) by wrapping the engine's start;
 * the starter and the engine are otherwise untouched.
 */
function recordExecutions(
  orchestrator: Orchestrator,
  executions: Map<string, ExecutionRecord>,
  onEnd: (deploymentId: string) => void,
) {
  const { engine } = orchestrator;
  const start = engine.start.bind(engine);
  engine.start = (name, input) => {
    const running = start(name, input);
    // Registered before the starter's own handler, so onEnd runs before local mode's post-execution check.
    const end = (status: 'SUCCEEDED' | 'FAILED') => {
      onEnd(name);
      return status;
    };
    const record: ExecutionRecord = {
      deploymentId: name,
      startedAt: nowMs(),
      events: running.events,
      ended: running.result.then(
        () => end('SUCCEEDED'),
        () => end('FAILED'),
      ),
    };
    // The event log is drained asynchronously: give it a turn to take the final events.
    record.ended = record.ended.then(async (status) => {
      record.endedAt = nowMs();
      await new Promise((resolve) => setImmediate(resolve));
      return status;
    });
    executions.set(name, record);
    return running;
  };
}

/** Named one-shot signals: a wait for one that already fired returns at once. */
class Signals {
  private readonly fired = new Set<string>();
  private readonly waiting = new Map<string, () => void>();

  fire(name: string): void {
    this.fired.add(name);
    this.waiting.get(name)?.();
    this.waiting.delete(name);
  }

  wait(name: string, timeoutMs: number): Promise<void> {
    if (this.fired.delete(name)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiting.set(name, () => {
        clearTimeout(timer);
        this.fired.delete(name);
        resolve();
      });
    });
  }
}

const DYNALITE_PROCESS = fileURLToPath(new URL('./dynalite-process.ts', import.meta.url));

/** dynalite in its own process (bench/dynalite-process.ts): the DynamoDB emulator gets the other core. */
async function startDynalite(): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [DYNALITE_PROCESS], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /^(\d+)\n/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`dynalite exited (${code}) before it listened`)));
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

/** A table with the store's definition (functions/shared/aws/store.ts TABLE_DEFINITION). */
export async function createTable(client: DynamoDBClient, name: string): Promise<void> {
  await client.send(new CreateTableCommand({ TableName: name, ...TABLE_DEFINITION }));
  for (let i = 0; i < 100; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}

/** POST /deployments over HTTP, as a client would; returns the status, the body and the elapsed time. */
export async function postDeployment(
  url: string,
  pair: Pair,
  reason = 'bench',
  headers: Record<string, string> = {},
) {
  const started = nowMs();
  const response = await fetch(`${url}/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ ...pair, ref: 'main', reason }),
  });
  const body = (await response.json()) as { deploymentId?: string; status?: string };
  return { status: response.status, body, started, ms: nowMs() - started };
}

/** The execution of a deployment once it has ended (it is created when the API starts it). */
export async function executionOf(stack: Stack, deploymentId: string): Promise<ExecutionRecord> {
  for (let i = 0; i < 2_000; i++) {
    const execution = stack.executions.get(deploymentId);
    if (execution) {
      await execution.ended;
      return execution;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`deployment ${deploymentId} never started an execution`);
}
