import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalJobRecord, LocalJobRunner } from '#local/job-runner.ts';
import { LocalLogWriter } from '#local/logs.ts';
import {
  CAN_FIND_MARKED,
  JOB_MARKER,
  jobGroupMembers,
  markedProcesses,
  processIdentity,
  stopJobGroup,
  stopMarkedProcesses,
} from '#local/processes.ts';

/**
 * The pid-reuse guard, with real processes: each test starts a short-lived `sleep` in its own process group
 * (detached, as the local runner spawns jobs) and records its start time as the runner would.
 */

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** `bash -c script` as a process group leader, with its identity as the runner records it. */
function startGroup(script: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn('bash', ['-c', script], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH, ...env },
  });
  children.push(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid as number;
  const identity = processIdentity(pid);
  if (!identity) throw new Error('the child did not start');
  return { child, pid, identity, exited };
}

const alive = (pid: number) => processIdentity(pid) !== undefined;

async function until(what: string, check: () => boolean) {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('process identity', () => {
  it('records a detached child as the leader of its own process group', () => {
    const { pid, identity } = startGroup('exec sleep 30');
    expect(identity).toMatchObject({ pid, pgid: pid });
    expect(identity.startTime).toBeGreaterThan(0);
  });

  it('reads pgid and start time from /proc/<pid>/stat even when the command name has spaces and parentheses', async () => {
    const { parseProcStat } = await import('#local/processes.ts');
    const stat = `4242 (odd) name (x)) S 1 4200 4200 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0`;
    expect(parseProcStat(4242, stat)).toEqual({ pid: 4242, pgid: 4200, startTime: 987654 });
    expect(parseProcStat(4242, stat.replace(') S ', ') Z '))).toBeUndefined();
  });
});

describe('jobGroupMembers and stopJobGroup: a reused pid is never signalled', () => {
  it('returns no member and signals nothing when the leader started at another time than recorded', async () => {
    const { pid, identity } = startGroup('exec sleep 30');
    const reused = { pgid: pid, startTime: identity.startTime + 1 };
    expect(jobGroupMembers(reused)).toEqual([]);
    expect(await stopJobGroup(reused, 100)).toBe(false);
    expect(alive(pid)).toBe(true);
    // Also a recorded start time from before the process existed (the pid was the job's, long ago).
    expect(await stopJobGroup({ pgid: pid, startTime: identity.startTime - 1 }, 100)).toBe(false);
    expect(alive(pid)).toBe(true);
  });

  it('stops the group when pgid and start time match', async () => {
    const { pid, identity, exited } = startGroup('exec sleep 30');
    const job = { pgid: pid, startTime: identity.startTime };
    expect(jobGroupMembers(job).map((p) => p.pid)).toEqual([pid]);
    expect(await stopJobGroup(job, 2_000)).toBe(true);
    await exited;
    expect(alive(pid)).toBe(false);
  });

  it('stops the children left in the group after the leader has gone, but not with a later recorded start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossdeploy-processes-'));
    dirs.push(dir);
    const pidFile = join(dir, 'child.pid');
    const goFile = join(dir, 'go');
    // The leader starts a background sleep in its group, writes its pid and exits once told to (so its
    // identity is read while it runs, as the runner reads it right after the spawn).
    const { pid, identity, exited } = startGroup(
      `sleep 30 & echo $! > ${pidFile}; while [ ! -e ${goFile} ]; do sleep 0.02; done`,
    );
    writeFileSync(goFile, '');
    await exited;
    await until('the child pid', () => readFileSync(pidFile, 'utf8').trim() !== '');
    const orphan = Number(readFileSync(pidFile, 'utf8').trim());
    expect(processIdentity(orphan)?.pgid).toBe(pid);

    // A recorded start after the orphan's own: the group holds a process older than the job, so not ours.
    const later = { pgid: pid, startTime: (processIdentity(orphan)?.startTime ?? 0) + 1 };
    expect(jobGroupMembers(later)).toEqual([]);
    expect(await stopJobGroup(later, 100)).toBe(false);
    expect(alive(orphan)).toBe(true);

    expect(await stopJobGroup({ pgid: pid, startTime: identity.startTime }, 2_000)).toBe(true);
    await until('the orphan to be gone', () => !alive(orphan));
  });
});

describe.runIf(CAN_FIND_MARKED)('the job marker (CROSSDEPLOY_JOB_ID)', () => {
  it('finds exactly the processes carrying a job id, and stops only those', async () => {
    const ours = startGroup('exec sleep 30', { [JOB_MARKER]: 'job-a' });
    const other = startGroup('exec sleep 30', { [JOB_MARKER]: 'job-a-2' });
    const unmarked = startGroup('exec sleep 30', { [`X${JOB_MARKER}`]: 'job-a' });
    expect(markedProcesses('job-a').map((p) => p.pid)).toEqual([ours.pid]);

    expect(await stopMarkedProcesses('job-a', 2_000)).toBe(true);
    await ours.exited;
    expect(alive(ours.pid)).toBe(false);
    expect(alive(other.pid)).toBe(true);
    expect(alive(unmarked.pid)).toBe(true);
    expect(await stopMarkedProcesses('job-a', 100)).toBe(false);
  });

  it('stops a survivor whose record has no process group (the server died right after spawning it)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-survivor-'));
    dirs.push(dataDir);
    const runner = new LocalJobRunner({
      dataDir,
      registry: { applications: {} } as never,
      registryDir: dataDir,
      logs: new LocalLogWriter(join(dataDir, 'logs')),
      simulateBin: dataDir,
      stopGraceMs: 2_000,
    });
    const buildId = 'crossdeploy-local-deploy:6f1c2a9e-0d4b-4f53-9a51-6f3f0a2b7c11';
    // What start() wrote before spawn(): no pgid, no start time.
    const record: LocalJobRecord = {
      buildId,
      deploymentId: '01JCRASHWINDOW000000000000',
      job: 'deploy',
      runner: 'local',
      idempotencyToken: 'token-1',
      status: 'IN_PROGRESS',
      complete: false,
      startedAt: new Date().toISOString(),
      environmentVariables: {},
      exportedVariables: {},
      workspace: join(dataDir, 'workspaces', 'x'),
    };
    writeFileSync(
      join(dataDir, 'jobs', `${buildId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`),
      JSON.stringify(record),
    );
    // The job's bash and what it started, as spawn() launched them: a group of their own, the marker inherited.
    const job = startGroup('sleep 30 & wait', { [JOB_MARKER]: buildId });
    const bystander = startGroup('exec sleep 30');

    const [survivor] = runner.unfinishedFromEarlierRuns();
    expect(survivor?.pgid).toBeUndefined();
    expect(await runner.stopSurvivor(survivor as LocalJobRecord, 'stopped at start-up')).toBe(true);
    await job.exited;
    await until('every marked process to be gone', () => markedProcesses(buildId).length === 0);
    expect(alive(bystander.pid)).toBe(true);
    expect(runner.read(buildId)).toMatchObject({
      status: 'STOPPED',
      complete: true,
      note: 'stopped at start-up',
    });
    expect(runner.unfinishedFromEarlierRuns()).toEqual([]);
  });

  it('records a survivor with no pgid and no live process STOPPED without signalling anything', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crossdeploy-survivor-'));
    dirs.push(dataDir);
    const runner = new LocalJobRunner({
      dataDir,
      registry: { applications: {} } as never,
      registryDir: dataDir,
      logs: new LocalLogWriter(join(dataDir, 'logs')),
      simulateBin: dataDir,
    });
    const buildId = 'crossdeploy-local-build:0b9a3c1e-5d7f-4e2a-8c6b-1a2b3c4d5e6f';
    const record = {
      buildId,
      deploymentId: '01JCRASHWINDOW000000000001',
      job: 'build',
      runner: 'local',
      idempotencyToken: 'token-2',
      status: 'IN_PROGRESS',
      complete: false,
      startedAt: new Date().toISOString(),
      environmentVariables: {},
      exportedVariables: {},
      workspace: join(dataDir, 'workspaces', 'y'),
    } satisfies LocalJobRecord;
    writeFileSync(
      join(dataDir, 'jobs', `${buildId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`),
      JSON.stringify(record),
    );
    const bystander = startGroup('exec sleep 30');
    expect(await runner.stopSurvivor(record)).toBe(false);
    expect(alive(bystander.pid)).toBe(true);
    expect(runner.read(buildId)).toMatchObject({ status: 'STOPPED', complete: true });
  });
});
