import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  BatchGetBuildsCommand,
  type Build,
  CodeBuildClient,
  StartBuildCommand,
  type StartBuildCommandInput,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { ExecutionAbortedError, ExecutionTimeoutError } from 'aws-local-stepfunctions';
import { mockClient } from 'aws-sdk-client-mock';
import { CodeBuildJobRunner } from '#shared/aws/codebuild.ts';
import { StsTargetAccess } from '#shared/aws/sts.ts';
import type { Clock, DeploymentStore, ExecutionStatuses } from '#shared/ports.ts';
import { parseRegistryText } from '#shared/registry/file.ts';
import type { JobKind, JobStatus } from '#shared/types.ts';
import { PUBLISHED_BUILDSPECS } from '#test/support/job-specs.ts';
import { createHandler as acquireLockHandler } from '../../functions/acquire-lock/handler.ts';
import { createHandler as approvalHandler } from '../../functions/approval/handler.ts';
import { createHandler as assumeTargetRoleHandler } from '../../functions/assume-target-role/handler.ts';
import {
  type BuildStateChange,
  createHandler as jobEventsHandler,
} from '../../functions/job-events/handler.ts';
import { createHandler as recordResultHandler } from '../../functions/record-result/handler.ts';
import { createHandler as releaseLockHandler } from '../../functions/release-lock/handler.ts';
import { createHandler as startJobHandler } from '../../functions/start-job/handler.ts';
import { createHandler as validateRequestHandler } from '../../functions/validate-request/handler.ts';
import {
  ASL_PATH,
  type LambdaFunction,
  LocalTaskTokens,
  WorkflowEngine,
} from '../../local/workflow-engine.ts';
import { createTestStore } from './store.ts';

/** A secret that must never show up in state, records or logs. */
export const SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETKEY';
export const SESSION_TOKEN = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN//////////';

export const testRegistry = () =>
  parseRegistryText(
    readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'),
    'test/fixtures/registry.yaml',
  );

const buildEvent = JSON.parse(
  readFileSync(new URL('../events/codebuild/build-state-change.json', import.meta.url), 'utf8'),
) as BuildStateChange;

export interface JobScript {
  status: JobStatus;
  exported?: Record<string, string>;
  resolvedCommit?: string;
  /** Keep the job running until the test completes or stops it. */
  hold?: boolean;
}

export const BUILD_OK: JobScript = {
  status: 'SUCCEEDED',
  resolvedCommit: 'a'.repeat(40),
  exported: {
    BUILD_OUTPUT_VERSION_ID: 'v-1',
    BUILD_OUTPUT_SHA256: 'b'.repeat(64),
    RESOLVED_COMMIT: 'a'.repeat(40),
  },
};
export const DEPLOY_OK: JobScript = { status: 'SUCCEEDED' };

const jobOf = (input: StartBuildCommandInput) =>
  input.environmentVariablesOverride?.find((v) => v.name === 'CROSSDEPLOY_JOB')?.value as JobKind;

/**
 * Stands in for CodeBuild at the SDK boundary (aws-sdk-client-mock): StartBuild honours idempotencyToken,
 * BatchGetBuilds reports builds, StopBuild stops them, and a finished build is announced by feeding the
 * documented "Build State Change" event to the real job-events handler, as EventBridge would.
 */
export class FakeCodeBuild {
  readonly mock = mockClient(CodeBuildClient);
  readonly builds = new Map<string, Build>();
  readonly starts: StartBuildCommandInput[] = [];
  private readonly byToken = new Map<string, string>();
  scripts: Record<JobKind, JobScript> = { build: BUILD_OK, deploy: DEPLOY_OK };
  throttleNextStarts = 0;
  /** StartBuild of this job fails with this error name every time (a missing project, a denied start). */
  failStarts: Partial<Record<JobKind, string>> = {};
  /** Jobs still end, but their state change events are lost (EventBridge never delivers them). */
  loseEvents = false;
  onFinished: (event: BuildStateChange) => Promise<unknown> = async () => {};
  /** Resolves once a job's record exists, so the event arrives after the starter wrote it (as in AWS). */
  beforeFinish: (deploymentId: string, job: JobKind, buildId: string) => Promise<void> = async () => {};

  constructor() {
    this.mock.on(StartBuildCommand).callsFake(async (input: StartBuildCommandInput) => {
      if (this.throttleNextStarts > 0) {
        this.throttleNextStarts--;
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      }
      const failing = this.failStarts[jobOf(input)];
      if (failing) {
        throw Object.assign(new Error(`StartBuild refused: ${failing}`), { name: failing });
      }
      this.starts.push(input);
      const existing = input.idempotencyToken ? this.byToken.get(input.idempotencyToken) : undefined;
      if (existing) return { build: this.builds.get(existing) };
      const id = `${input.projectName}:${randomUUID()}`;
      const env = input.environmentVariablesOverride ?? [];
      const build: Build = {
        id,
        arn: `arn:aws:codebuild:eu-west-1:123456789012:build/${id}`,
        projectName: input.projectName,
        buildStatus: 'IN_PROGRESS',
        buildComplete: false,
        environment: {
          type: 'ARM_CONTAINER',
          image: 'x',
          computeType: 'BUILD_GENERAL1_SMALL',
          environmentVariables: env,
        },
      };
      this.builds.set(id, build);
      if (input.idempotencyToken) this.byToken.set(input.idempotencyToken, id);
      const job = env.find((v) => v.name === 'CROSSDEPLOY_JOB')?.value as JobKind;
      const deploymentId = env.find((v) => v.name === 'DEPLOYMENT_ID')?.value ?? '';
      const script = this.scripts[job];
      if (!script.hold) {
        void this.beforeFinish(deploymentId, job, id).then(() => this.finish(id, script));
      }
      return { build: { ...build } };
    });
    this.mock.on(BatchGetBuildsCommand).callsFake(async ({ ids = [] }) => ({
      builds: ids.map((id: string) => this.builds.get(id.replace(/^arn:.*:build\//, ''))).filter(Boolean),
    }));
    this.mock.on(StopBuildCommand).callsFake(async ({ id }) => {
      const build = this.builds.get(id);
      if (build && !build.buildComplete) await this.finish(id, { status: 'STOPPED' });
      return { build };
    });
  }

  /** Completes a build and delivers its state change event. */
  async finish(id: string, script: JobScript) {
    const build = this.builds.get(id);
    if (!build) throw new Error(`no build ${id}`);
    build.buildStatus = script.status;
    build.buildComplete = true;
    if (script.resolvedCommit) build.resolvedSourceVersion = script.resolvedCommit;
    build.exportedEnvironmentVariables = Object.entries(script.exported ?? {}).map(([name, value]) => ({
      name,
      value,
    }));
    if (this.loseEvents) return;
    const event = structuredClone(buildEvent);
    event.detail['build-id'] = build.arn!;
    event.detail['build-status'] = script.status;
    event.detail['project-name'] = build.projectName!;
    await this.onFinished(event);
  }

  running(): Build[] {
    return [...this.builds.values()].filter((b) => !b.buildComplete);
  }
}

/**
 * Checks every terminal write of a store: the deployment must not hold its environment's lock at that
 * moment, or a client that reads the final status and deploys again is refused as busy. Returns the list
 * of offending writes (`<deploymentId> <status>`), which a test expects to stay empty.
 */
export function watchTerminalWrites(store: DeploymentStore): string[] {
  const offending: string[] = [];
  const finishDeployment = store.finishDeployment.bind(store);
  store.finishDeployment = async (deploymentId, status, changes) => {
    const before = await store.getDeployment(deploymentId);
    const lock = before ? await store.getLock(before.application, before.environment) : undefined;
    const result = await finishDeployment(deploymentId, status, changes);
    if (result.changed && lock?.owner === deploymentId) offending.push(`${deploymentId} ${status}`);
    return result;
  };
  return offending;
}

/** A copy of the real definition whose only change is the execution's TimeoutSeconds. */
function definitionWithTimeout(seconds: number): string {
  const definition = JSON.parse(readFileSync(ASL_PATH, 'utf8')) as { TimeoutSeconds: number };
  definition.TimeoutSeconds = seconds;
  const path = join(mkdtempSync(join(tmpdir(), 'crossdeploy-asl-')), 'deploy.asl.json');
  writeFileSync(path, JSON.stringify(definition));
  return path;
}

export interface HarnessOptions {
  /** The account GetCallerIdentity reports for the assumed session. */
  callerAccount?: (roleArn: string) => string;
  assumeRoleError?: string;
  stackStatus?: () => string | undefined;
  clock?: Clock;
  /** The role name in the session ARN GetCallerIdentity reports (default: the registry's deploy role). */
  callerRole?: string;
  /** The whole session ARN GetCallerIdentity reports, given the account (overrides callerRole). */
  callerArn?: (account: string) => string;
  /** DefinitionSubstitutions other than ARNs, e.g. `{ BuildWaitSeconds: '1' }` to bound the job waits. */
  substitutions?: Record<string, string>;
  /** The execution's own TimeoutSeconds (the definition's top-level field), to end it TIMED_OUT. */
  executionTimeoutSeconds?: number;
  /** Wraps the Lambda handlers by substitution name, e.g. to make one of them fail. */
  wrapFunctions?: (functions: Record<string, LambdaFunction>) => Record<string, LambdaFunction>;
  /** Another registry than test/fixtures/registry.yaml (e.g. environments with approval set). */
  registry?: ReturnType<typeof testRegistry>;
}

/** The real ASL, the real handlers, the real store on dynalite; mocks only at STS, CodeBuild, CloudFormation. */
export async function createWorkflowHarness(options: HarnessOptions = {}) {
  const { store, doc, tableName } = await createTestStore();
  const registry = options.registry ?? testRegistry();
  const clock = options.clock ?? { now: () => new Date() };
  const terminalWhileLocked = watchTerminalWrites(store);
  const tokens = new LocalTaskTokens();
  const codebuild = new FakeCodeBuild();
  const sts = mockClient(STSClient);
  const cfn = mockClient(CloudFormationClient);
  let lastRoleArn = '';
  sts.on(AssumeRoleCommand).callsFake(async (input) => {
    if (options.assumeRoleError) {
      throw Object.assign(
        new Error(`User is not authorized to perform: sts:AssumeRole on ${input.RoleArn}`),
        {
          name: options.assumeRoleError,
        },
      );
    }
    lastRoleArn = input.RoleArn;
    return {
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLEEXAMPLE00',
        SecretAccessKey: SECRET_ACCESS_KEY,
        SessionToken: SESSION_TOKEN,
        Expiration: new Date(Date.now() + 900_000),
      },
    };
  });
  sts.on(GetCallerIdentityCommand).callsFake(async () => {
    const account = options.callerAccount?.(lastRoleArn) ?? /iam::(\d{12})/.exec(lastRoleArn)?.[1] ?? '';
    return {
      Account: account,
      Arn:
        options.callerArn?.(account) ??
        `arn:aws:sts::${account}:assumed-role/${options.callerRole ?? 'crossdeploy-deploy'}/session`,
      UserId: 'AROAEXAMPLE:session',
    };
  });
  cfn.on(DescribeStacksCommand).callsFake(async ({ StackName }) => ({
    Stacks: [
      { StackName, StackStatus: options.stackStatus?.() ?? 'UPDATE_COMPLETE', CreationTime: new Date() },
    ],
  }));

  const runner = new CodeBuildJobRunner({
    client: new CodeBuildClient({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
    buildProject: 'crossdeploy-build',
    deployProject: 'crossdeploy-deploy',
    buildspecs: PUBLISHED_BUILDSPECS,
    region: 'eu-west-1',
  });
  const targetAccess = new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) });
  // leaseSeconds rides along for the reconciler's hand-over (tests spread these into its deps).
  const settleDeps = { runner, stacks: targetAccess, registry, leaseSeconds: 5400 };
  const jobEvents = jobEventsHandler(() => ({ store, runner, tokens, clock }));
  codebuild.onFinished = (event) => jobEvents(event);
  codebuild.beforeFinish = async (deploymentId, job, buildId) => {
    for (let i = 0; i < 400; i++) {
      if ((await store.getDeployment(deploymentId))?.jobs?.[job]?.buildId === buildId) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  /** "Deployment Awaiting Approval" notices, with what a click arriving at that moment would find. */
  const approvalNotices: { deploymentId: string; tokenStored: boolean; state: string | undefined }[] = [];
  const notices = {
    awaitingApproval: async (deploymentId: string) => {
      const token = await store.getTaskToken(deploymentId, 'approval');
      const deployment = await store.getDeployment(deploymentId);
      approvalNotices.push({
        deploymentId,
        tokenStored: token !== undefined,
        state: deployment?.approval?.state,
      });
    },
  };
  const handlers: Record<string, LambdaFunction> = {
    ValidateRequestFunctionArn: validateRequestHandler(() => ({ store, registry, clock })) as never,
    StartJobFunctionArn: startJobHandler(() => ({
      store,
      registry,
      runner,
      clock,
      settings: { outputBucket: 'crossdeploy-artifacts-123456789012' },
    })) as never,
    AcquireLockFunctionArn: acquireLockHandler(() => ({
      store,
      clock,
      registry,
      leaseSeconds: 5400,
      tokens,
    })) as never,
    AssumeTargetRoleFunctionArn: assumeTargetRoleHandler(() => ({
      store,
      registry,
      assumer: targetAccess,
      clock,
    })) as never,
    RecordResultFunctionArn: recordResultHandler(() => ({
      store,
      clock,
      tokens,
      ...settleDeps,
    })) as never,
    ReleaseLockFunctionArn: releaseLockHandler(() => ({ store, clock, tokens, leaseSeconds: 5400 })) as never,
    ApprovalFunctionArn: approvalHandler(() => ({
      store,
      registry,
      changeSets: targetAccess,
      stacks: targetAccess,
      clock,
      notices,
    })) as never,
  };
  const functions = options.wrapFunctions ? options.wrapFunctions(handlers) : handlers;
  // Waits (queue polls, settle polls) shortened to 20 ms; retries to 0.
  const engine = new WorkflowEngine({
    functions,
    tokens,
    waitMs: 20,
    ...(options.substitutions ? { substitutions: options.substitutions } : {}),
    ...(options.executionTimeoutSeconds !== undefined
      ? { definitionPath: definitionWithTimeout(options.executionTimeoutSeconds) }
      : {}),
  });

  // What DescribeExecution would answer for each execution this harness started.
  const statuses = new Map<string, string>();
  const executions: ExecutionStatuses = { status: async (name) => statuses.get(name) };

  function start(input: Record<string, unknown>, name = `dep-${randomUUID()}`) {
    const execution = engine.start(name, {
      requester: { type: 'local', user: 'alice' },
      trigger: 'local',
      requestedAt: clock.now().toISOString(),
      ...input,
    });
    statuses.set(name, 'RUNNING');
    // Swallow here; tests read `settled` (the outcome) or `execution.result` themselves.
    const settled = execution.result.then(
      (output) => {
        statuses.set(name, 'SUCCEEDED');
        return { ok: true as const, output };
      },
      (error: Error) => {
        statuses.set(
          name,
          error instanceof ExecutionAbortedError
            ? 'ABORTED'
            : error instanceof ExecutionTimeoutError
              ? 'TIMED_OUT'
              : 'FAILED',
        );
        return { ok: false as const, error };
      },
    );
    return { ...execution, deploymentId: name, settled };
  }

  return {
    store,
    doc,
    tableName,
    registry,
    clock,
    approvalNotices,
    tokens,
    codebuild,
    sts,
    cfn,
    runner,
    targetAccess,
    settleDeps,
    executions,
    engine,
    start,
    /** Terminal writes made while the deployment still held its lock (each one a client could be refused). */
    terminalWhileLocked,
  };
}
