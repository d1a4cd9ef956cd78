import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { JobStartError } from '#shared/errors.ts';
import { BUILDSPECS } from '#shared/jobs/buildspecs.ts';
import { jobIdempotencyToken } from '#shared/jobs/job-env.ts';
import { logger } from '#shared/logger.ts';
import type { JobInfo, JobRunner, JobStart } from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import type { JobKind, JobStatus } from '#shared/types.ts';
import type { BuildStateChange } from '../functions/job-events/handler.ts';
import { driverFor } from './buildspec-script.ts';
import { buildArn, jobEnvironment } from './job-environment.ts';
import { archiveInto, resolveCommit } from './job-source.ts';
import type { LocalLogWriter } from './logs.ts';
import { processIdentity, signalGroup, stopJobGroup, stopMarkedProcesses } from './processes.ts';
import { type LocalRunner, localRunnerOf } from './targets.ts';

const execFileAsync = promisify(execFile);

/**
 * The JobRunner of local mode: the same two buildspecs CodeBuild runs (functions/shared/jobs/buildspecs.ts), run by
 * bash in a fresh workspace per deployment and job, `<data>/workspaces/<deploymentId>/<job>`, with the
 * variables CodeBuild would set. Each job is its own process group (spawned detached); its pgid and start
 * time are recorded in `<data>/jobs/`, and its processes carry CROSSDEPLOY_JOB_ID=<buildId>, so a restarted
 * server can find and stop survivors (even one whose pgid was never recorded). Output goes to the
 * deployment's log. When a job ends, `onFinished` receives a CodeBuild "Build State Change" event, which local
 * mode hands to the real job-events handler.
 *
 * `runner: simulate` environments run the same buildspecs with recording stand-ins for `sam` and `aws` first
 * on PATH (local/shims/): the commands are recorded, nothing touches AWS.
 */

/** What `<data>/jobs/<buildId>.json` holds: BatchGetBuilds' answer, kept on disk so it survives a restart. */
export interface LocalJobRecord {
  buildId: string;
  deploymentId: string;
  job: JobKind;
  runner: LocalRunner;
  idempotencyToken: string;
  status: JobStatus;
  complete: boolean;
  startedAt: string;
  finishedAt?: string;
  /** The job's contract variables (no secrets), as BatchGetBuilds reports a build's environment. */
  environmentVariables: Record<string, string>;
  exportedVariables: Record<string, string>;
  resolvedCommit?: string;
  workspace: string;
  /** The process group: pgid = the leader's pid; startTime identifies the leader against pid reuse. */
  pgid?: number;
  startTime?: number;
  stopRequested?: boolean;
  note?: string;
}

export interface LocalJobRunnerOptions {
  dataDir: string;
  registry: Registry;
  /** Relative `source.localPath` values are relative to the registry file. */
  registryDir: string;
  logs: LocalLogWriter;
  /** Directory holding the simulate stand-ins (`sam`, `aws`). */
  simulateBin: string;
  /** Base of log links (the local API's URL). */
  baseUrl?: string;
  /** TERM, then KILL after this long. */
  stopGraceMs?: number;
  /** The server's environment: what jobs inherit (PATH, locale, proxies; the user's AWS chain for deploys). */
  env?: NodeJS.ProcessEnv;
  /**
   * Runs a job in place of its buildspec in bash, keeping everything else (records, logs, the state change):
   * `npm run bench` uses a stand-in that ends at once, to measure orchestration alone.
   */
  execute?: JobExecutor;
  /** The job-end report's first retry delay (doubling, at most 30 s), and how many attempts it gets. */
  reportRetryMs?: number;
  reportAttempts?: number;
  /** Writes a job record's temporary file (tests put a filling disk here). */
  writeFile?: (file: string, text: string) => void;
}

/** What a job reports when something other than the bash runner ran it. */
export interface JobOutcome {
  status: JobStatus;
  exportedVariables?: Record<string, string>;
  resolvedCommit?: string;
}

export type JobExecutor = (job: JobStart) => Promise<JobOutcome>;

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const BUILD_ARN_PREFIX = /^arn:aws[a-z-]*:codebuild:[^:]*:\d*:build\//;
const MAX_LINE = 16_384;

export const projectName = (job: JobKind) => `crossdeploy-local-${job}`;

export class LocalJobRunner implements JobRunner {
  private readonly options: Required<
    Omit<LocalJobRunnerOptions, 'baseUrl' | 'execute' | 'reportRetryMs' | 'reportAttempts' | 'writeFile'>
  >;
  private readonly report: { retryMs: number; attempts: number };
  private readonly writeFile: (file: string, text: string) => void;
  /** Records whose last write failed (a full disk): the current state, written at the next chance. */
  private readonly unsaved = new Map<string, LocalJobRecord>();
  /** Each started job until it has ended and its end has been reported (or given up on). */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly execute: JobExecutor | undefined;
  /** Base of log links (the local API's URL), once the server listens. */
  baseUrl: string | undefined;
  private readonly jobsDir: string;
  private readonly tokensDir: string;
  /** Jobs this process started and that have not ended: the record here is the current one. */
  private readonly running = new Map<
    string,
    { record: LocalJobRecord; child?: ChildProcess; exited: Promise<void> }
  >();
  private shuttingDown = false;
  /** Cuts short the report's backoff at shutdown (the restart reconciles instead). */
  private readonly stopping = new AbortController();
  /** Set by the wiring: hands the finished job's state change to the job-events handler. */
  onFinished: (event: BuildStateChange) => Promise<void> = async () => {};

  constructor(options: LocalJobRunnerOptions) {
    const { baseUrl, execute, reportRetryMs, reportAttempts, writeFile, ...rest } = options;
    this.writeFile = writeFile ?? ((file, text) => writeFileSync(file, text));
    this.options = { stopGraceMs: 5_000, env: process.env, ...rest };
    this.report = { retryMs: reportRetryMs ?? 1_000, attempts: reportAttempts ?? 8 };
    this.execute = execute;
    this.baseUrl = baseUrl;
    this.jobsDir = join(options.dataDir, 'jobs');
    this.tokensDir = join(this.jobsDir, 'tokens');
    mkdirSync(this.tokensDir, { recursive: true });
  }

  // JobRunner --------------------------------------------------------------------------------------------

  async start(job: JobStart): Promise<{ buildId: string; logUrl?: string }> {
    if (this.shuttingDown) throw new JobStartError('the local server is shutting down');
    // Both become file names.
    if (!TOKEN.test(job.idempotencyToken) || !TOKEN.test(job.deploymentId)) {
      throw new JobStartError('the deployment id and idempotency token must be plain tokens');
    }
    const buildId = `${projectName(job.job)}:${randomUUID()}`;
    // Claiming the token file first (O_EXCL) makes a second start with the same token return the first job.
    try {
      writeFileSync(join(this.tokensDir, job.idempotencyToken), buildId, { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const existing = readFileSync(join(this.tokensDir, job.idempotencyToken), 'utf8');
      return { buildId: existing, ...this.logUrl(job.deploymentId) };
    }
    const env = job.environmentVariables;
    const target = findTarget(this.options.registry, env.APPLICATION ?? '', env.ENVIRONMENT ?? '');
    const record: LocalJobRecord = {
      buildId,
      deploymentId: job.deploymentId,
      job: job.job,
      runner: localRunnerOf(target?.env.runner ?? 'local'),
      idempotencyToken: job.idempotencyToken,
      status: 'IN_PROGRESS',
      complete: false,
      startedAt: new Date().toISOString(),
      environmentVariables: { ...env },
      exportedVariables: {},
      workspace: join(this.options.dataDir, 'workspaces', job.deploymentId, job.job),
    };
    try {
      this.writeRecord(record);
    } catch (error) {
      // Without its record a restarted server could not find the job: do not start it, and let a retry try.
      rmSync(join(this.tokensDir, job.idempotencyToken), { force: true });
      throw new JobStartError(`the job could not be recorded: ${(error as Error).message}`, { cause: error });
    }
    const { promise: exited, resolve: done } = Promise.withResolvers<void>();
    this.running.set(buildId, { record, exited });
    const chain = this.run(record, job)
      .catch((error: Error) => {
        this.log(record, `crossdeploy-local: the ${record.job} job could not run: ${error.message}`);
        return this.finish(record, 'FAILED');
      })
      .finally(() => {
        done();
        this.inFlight.delete(chain);
      });
    this.inFlight.add(chain);
    return { buildId, ...this.logUrl(job.deploymentId) };
  }

  async describe(buildIds: string[]): Promise<JobInfo[]> {
    const infos: JobInfo[] = [];
    for (const id of buildIds) {
      const record = this.read(id.replace(BUILD_ARN_PREFIX, ''));
      if (record) infos.push(this.info(record));
    }
    return infos;
  }

  /** Like StopBuild: asks the job to stop and returns; the job reports STOPPED once its processes are gone. */
  async stop(buildId: string): Promise<void> {
    const id = buildId.replace(BUILD_ARN_PREFIX, '');
    const live = this.running.get(id);
    if (live) {
      live.record.stopRequested = true;
      this.write(live.record);
      // Without a process yet it is still checking out its source: run() sees stopRequested before spawning.
      if (live.child) this.terminate(live.record);
      return;
    }
    const record = this.read(id);
    // A job of an earlier server process: nobody else will stop it.
    if (record && !record.complete) await this.stopSurvivor(record);
  }

  // Local-mode lifecycle ---------------------------------------------------------------------------------

  /** Resolves when every job started so far has ended and its end has been reported or given up on. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** The job this runner started for a deployment's build or deploy (by its idempotency token), if any. */
  jobOf(deploymentId: string, job: JobKind): JobInfo | undefined {
    let buildId: string;
    try {
      buildId = readFileSync(join(this.tokensDir, jobIdempotencyToken(deploymentId, job)), 'utf8');
    } catch {
      return undefined;
    }
    const record = this.running.get(buildId)?.record ?? this.read(buildId);
    return record ? this.info(record) : undefined;
  }

  /** Jobs recorded as unfinished that this process did not start: survivors of an earlier server. */
  unfinishedFromEarlierRuns(): LocalJobRecord[] {
    return this.records().filter((r) => !r.complete && !this.running.has(r.buildId));
  }

  /**
   * Stops a survivor's processes, but only those proven to be the job's, then records it STOPPED. Returns
   * whether any process was signalled. Two ways to find them:
   * - the recorded process group, whose leader must still have the recorded start time;
   * - the job's marker in the processes' environment (Linux): a server killed between spawn() and writing
   *   the pgid left a record without one, and a process that left the group (setsid) is found this way too.
   */
  async stopSurvivor(record: LocalJobRecord, note = 'stopped: its server had gone'): Promise<boolean> {
    let killed = false;
    if (record.pgid !== undefined && record.startTime !== undefined) {
      killed = await stopJobGroup(
        { pgid: record.pgid, startTime: record.startTime },
        this.options.stopGraceMs,
      );
    }
    if (await stopMarkedProcesses(record.buildId, this.options.stopGraceMs)) killed = true;
    const current = this.read(record.buildId) ?? record;
    if (!current.complete) {
      current.note = note;
      this.complete(current, 'STOPPED');
    }
    return killed;
  }

  /** SIGTERM/SIGINT: no job outlives its server. Finished jobs are no longer reported (the restart reconciles). */
  async stopAll(): Promise<number> {
    this.shuttingDown = true;
    this.stopping.abort();
    const live = [...this.running.values()];
    for (const { record } of live) {
      record.stopRequested = true;
      this.write(record);
      this.terminate(record);
    }
    await Promise.all(live.map((job) => job.exited));
    // A last chance for records a full disk held back.
    const [pending] = this.unsaved.values();
    if (pending) this.write(pending);
    return live.length;
  }

  // Running a job ----------------------------------------------------------------------------------------

  private async run(record: LocalJobRecord, job: JobStart): Promise<void> {
    if (this.execute) {
      const outcome = await this.execute(job);
      record.exportedVariables = outcome.exportedVariables ?? {};
      if (outcome.resolvedCommit) record.resolvedCommit = outcome.resolvedCommit;
      await this.finish(record, outcome.status);
      return;
    }
    const { workspace } = record;
    rmSync(workspace, { recursive: true, force: true });
    const src = join(workspace, 'src');
    const meta = join(workspace, 'meta');
    const tmp = join(workspace, 'tmp');
    // The job's own HOME: nothing of the user's (~/.aws, ~/.ssh, ~/.npmrc) for code the build may run. It
    // lives and goes with the workspace: kept after the job, replaced when the deployment's job runs again.
    const home = join(workspace, 'home');
    for (const dir of [src, meta, tmp, home]) mkdirSync(dir, { recursive: true });
    this.log(
      record,
      `crossdeploy-local: ${record.job} job ${record.buildId} (runner: ${record.runner}) in ${workspace}`,
    );

    const codebuild: Record<string, string> = {};
    if (job.job === 'build') {
      const commit = await this.checkout(record, job, src);
      record.resolvedCommit = commit;
      this.write(record);
      codebuild.CODEBUILD_RESOLVED_SOURCE_VERSION = commit;
      codebuild.CODEBUILD_SOURCE_VERSION = job.source?.version ?? '';
    }
    if (record.stopRequested) {
      await this.finish(record, 'STOPPED');
      return;
    }

    const driver = driverFor(BUILDSPECS[job.job]);
    for (const [name, content] of Object.entries(driver.files)) writeFileSync(join(meta, name), content);
    const exportedFile = join(meta, 'exported-variables');
    const env = jobEnvironment(record, job, {
      src,
      tmp,
      home,
      defaults: driver.defaults,
      codebuild,
      server: this.options.env,
      simulateBin: this.options.simulateBin,
      dataDir: this.options.dataDir,
    });

    const child = spawn('bash', [join(meta, 'driver.sh'), meta, exportedFile], {
      cwd: src,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolveExit, reject) => {
        child.once('error', reject);
        child.once('exit', (code, signal) => resolveExit({ code, signal }));
      },
    );
    if (child.pid !== undefined) {
      const identity = processIdentity(child.pid);
      record.pgid = child.pid;
      if (identity) record.startTime = identity.startTime;
      this.write(record);
      const live = this.running.get(record.buildId);
      if (live) live.child = child;
      // A stop that arrived while the job was being set up.
      if (stopRequested(record)) this.terminate(record);
    }
    const outputDone = Promise.all([
      this.pipeLines(record, child.stdout),
      this.pipeLines(record, child.stderr),
    ]);
    const { code, signal } = await exit;
    // Whatever the job left running in its group ends with it, as a CodeBuild container does.
    if (record.pgid !== undefined) signalGroup(record.pgid, 'SIGKILL');
    // A process that left the group (setsid) may still hold the output pipe: it does not keep the job open.
    const drained = await Promise.race([
      outputDone.then(() => true),
      new Promise<false>((resolveLate) => setTimeout(() => resolveLate(false), 2_000).unref()),
    ]);
    if (!drained) {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }

    record.exportedVariables = readExported(exportedFile);
    const stopped = stopRequested(record);
    const status: JobStatus = stopped ? 'STOPPED' : code === 0 ? 'SUCCEEDED' : 'FAILED';
    this.log(
      record,
      `crossdeploy-local: ${record.job} job ${status}${signal ? ` (signal ${signal})` : code ? ` (exit status ${code})` : ''}`,
    );
    await this.finish(record, status);
  }

  /**
   * The build's source: the exact commit `ref` names in the git repository holding the application's
   * `source.localPath`, exported with `git archive` (never the working copy as it happens to be).
   */
  private async checkout(record: LocalJobRecord, job: JobStart, src: string): Promise<string> {
    const localPath = job.source?.localPath;
    if (!localPath) {
      throw new Error(
        `application ${record.environmentVariables.APPLICATION} has no source.localPath; local mode builds from a directory inside a git repository`,
      );
    }
    const ref = job.source?.version ?? '';
    const dir = resolve(this.options.registryDir, localPath);
    if (!existsSync(dir)) throw new Error(`source.localPath ${dir} does not exist`);
    const git = async (args: string[], cwd: string) =>
      (await execFileAsync('git', args, { cwd, maxBuffer: 1 << 20 })).stdout.trim();
    let top: string;
    let prefix: string;
    try {
      top = await git(['rev-parse', '--show-toplevel'], dir);
      prefix = await git(['rev-parse', '--show-prefix'], dir);
    } catch {
      throw new Error(`source.localPath ${dir} is not inside a git repository`);
    }
    const commit = await resolveCommit(ref, (args) => git(args, top));
    if (!commit) {
      throw new Error(`ref ${JSON.stringify(ref)} does not name a commit in ${top}`);
    }
    const treeish = prefix === '' ? commit : `${commit}:${prefix.replace(/\/$/, '')}`;
    // At the repository's top the tree-ish is the commit itself: ask for its tree.
    const type = await git(['cat-file', '-t', prefix === '' ? `${commit}^{tree}` : treeish], top).catch(
      () => '',
    );
    if (type !== 'tree') {
      throw new Error(
        `${prefix || "the repository's top directory"} is not in commit ${commit} (${ref}): builds use committed files only; commit it first`,
      );
    }
    this.log(
      record,
      `crossdeploy-local: checking out ${ref} = ${commit} of ${top}${prefix ? ` (${prefix})` : ''}`,
    );
    await archiveInto(top, treeish, src);
    return commit;
  }

  private async pipeLines(record: LocalJobRecord, stream: NodeJS.ReadableStream | null): Promise<void> {
    if (!stream) return;
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of lines)
      this.log(record, line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
  }

  private terminate(record: LocalJobRecord): void {
    if (record.pgid === undefined) return;
    signalGroup(record.pgid, 'SIGTERM');
    const pgid = record.pgid;
    const live = this.running.get(record.buildId);
    const timer = setTimeout(() => {
      if (this.running.has(record.buildId)) signalGroup(pgid, 'SIGKILL');
    }, this.options.stopGraceMs);
    timer.unref();
    void live?.exited.then(() => clearTimeout(timer));
  }

  private async finish(record: LocalJobRecord, status: JobStatus): Promise<void> {
    this.complete(record, status);
    await this.reportEnd(record, status);
  }

  /**
   * A report the store refused (a reset connection, a few seconds down) would leave the deployment waiting
   * until its job timeout: it is retried with backoff. After the last attempt the lost-event sweep
   * (local/sweep.ts) still finds the job complete and delivers its result.
   */
  private async reportEnd(record: LocalJobRecord, status: JobStatus): Promise<void> {
    const event = stateChangeEvent(record, status);
    for (let attempt = 1; !this.shuttingDown; attempt++) {
      try {
        await this.onFinished(event);
        return;
      } catch (error) {
        const last = attempt >= this.report.attempts;
        this.log(
          record,
          `crossdeploy-local: reporting the job's end failed (attempt ${attempt}): ${(error as Error).message}; ${last ? 'the lost-event sweep will deliver it' : 'retrying'}`,
        );
        logger.warn('reporting a job end failed', {
          deploymentId: record.deploymentId,
          buildId: record.buildId,
          attempt,
          error,
        });
        if (last) return;
        await sleep(Math.min(30_000, this.report.retryMs * 2 ** (attempt - 1)), this.stopping.signal);
      }
    }
  }

  private complete(record: LocalJobRecord, status: JobStatus): void {
    record.status = status;
    record.complete = true;
    record.finishedAt = new Date().toISOString();
    this.write(record);
    this.running.delete(record.buildId);
  }

  // Records ----------------------------------------------------------------------------------------------

  private file(buildId: string): string {
    return join(this.jobsDir, `${buildId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
  }

  /**
   * Records a job's state. A write that fails (a full disk) must not end the server from a job's callback:
   * the record is kept in memory, answered from there, and written with the next write that succeeds.
   */
  private write(record: LocalJobRecord): void {
    this.unsaved.set(record.buildId, record);
    for (const pending of [...this.unsaved.values()]) {
      try {
        this.writeRecord(pending);
        this.unsaved.delete(pending.buildId);
      } catch (error) {
        logger.error('a job record could not be written; kept in memory until it can', {
          file: this.file(pending.buildId),
          deploymentId: pending.deploymentId,
          error,
        });
        return;
      }
    }
  }

  private writeRecord(record: LocalJobRecord): void {
    // Written whole and renamed into place, so a crash never leaves half a record.
    const file = this.file(record.buildId);
    const partial = `${file}.${process.pid}.partial`;
    try {
      this.writeFile(partial, `${JSON.stringify(record, null, 2)}\n`);
      renameSync(partial, file);
    } catch (error) {
      rmSync(partial, { force: true });
      throw error;
    }
  }

  read(buildId: string): LocalJobRecord | undefined {
    const unsaved = this.unsaved.get(buildId);
    if (unsaved) return structuredClone(unsaved);
    try {
      return JSON.parse(readFileSync(this.file(buildId), 'utf8')) as LocalJobRecord;
    } catch {
      return undefined;
    }
  }

  records(): LocalJobRecord[] {
    return readdirSync(this.jobsDir)
      .filter((name) => name.endsWith('.json'))
      .map((name) => {
        try {
          return JSON.parse(readFileSync(join(this.jobsDir, name), 'utf8')) as LocalJobRecord;
        } catch {
          return undefined;
        }
      })
      .filter((r): r is LocalJobRecord => r !== undefined)
      .map((r) => this.unsaved.get(r.buildId) ?? r);
  }

  private info(record: LocalJobRecord): JobInfo {
    return {
      buildId: record.buildId,
      deploymentId: record.deploymentId,
      job: record.job,
      status: record.status,
      complete: record.complete,
      ...(record.resolvedCommit ? { resolvedCommit: record.resolvedCommit } : {}),
      exportedVariables: record.exportedVariables,
      environmentVariables: record.environmentVariables,
      ...this.logUrl(record.deploymentId),
    };
  }

  private logUrl(deploymentId: string): { logUrl?: string } {
    return this.baseUrl ? { logUrl: `${this.baseUrl}/deployments/${deploymentId}/logs` } : {};
  }

  private log(record: LocalJobRecord, message: string): void {
    try {
      this.options.logs.append(record.deploymentId, record.job, message);
    } catch (error) {
      // A line the disk has no room for is lost; the job and its server go on.
      logger.warn('a job log line could not be written', { deploymentId: record.deploymentId, error });
    }
  }
}

/** A backoff that ends early, without an error, when the server stops. */
const sleep = (ms: number, signal: AbortSignal) =>
  delay(ms, undefined, { signal, ref: false }).catch(() => undefined);

/** Read through a call: stop() sets the flag while run() awaits, which control-flow narrowing cannot see. */
const stopRequested = (record: LocalJobRecord) => record.stopRequested === true;

function readExported(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  const variables: Record<string, string> = {};
  for (const entry of text.split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) variables[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return variables;
}

/** The documented shape of CodeBuild's "Build State Change" event (test/events/codebuild/), for a local job. */
export function stateChangeEvent(record: LocalJobRecord, status: JobStatus): BuildStateChange {
  const region = record.environmentVariables.TARGET_REGION ?? 'us-east-1';
  const arn = buildArn(record.buildId, region);
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'CodeBuild Build State Change',
    source: 'aws.codebuild',
    account: '000000000000',
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [arn],
    detail: {
      'build-status': status,
      'project-name': projectName(record.job),
      'build-id': arn,
      'additional-information': {
        'build-complete': true,
        initiator: 'crossdeploy-local',
        'build-start-time': record.startedAt,
      },
      'current-phase': 'COMPLETED',
      'current-phase-context': '[]',
      version: '1',
    } as BuildStateChange['detail'],
  };
}
