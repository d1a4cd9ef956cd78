import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobStart } from '#shared/ports.ts';
import { testRegistry } from '#test/support/workflow.ts';
import { type JobExecutor, LocalJobRunner } from '../../local/job-runner.ts';
import { LocalLogWriter, logFile } from '../../local/logs.ts';

/**
 * The job runner's end-of-job path under faults: the report (the state change local mode hands to the
 * job-events handler) and the job record's write path.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** What the SDK throws when the store's connection is reset and its own retries are used up. */
const connectionReset = () =>
  Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: { attempts: 3 } });

/** A disk that can fill up: every write through it fails with ENOSPC while `full`. */
class Disk {
  full = false;
  failed = 0;
  check(file: string) {
    if (!this.full) return;
    this.failed++;
    throw Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), { code: 'ENOSPC' });
  }
}

class FillingLogWriter extends LocalLogWriter {
  private readonly disk: Disk;
  constructor(dir: string, disk: Disk) {
    super(dir);
    this.disk = disk;
  }
  override append(...args: Parameters<LocalLogWriter['append']>) {
    this.disk.check('log');
    super.append(...args);
  }
}

function runner(
  execute: JobExecutor,
  options: { reportRetryMs?: number; reportAttempts?: number; disk?: Disk; dataDir?: string } = {},
) {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'crossdeploy-runner-'));
  dirs.push(dataDir);
  const logsDir = join(dataDir, 'logs');
  const disk = options.disk ?? new Disk();
  const runner = new LocalJobRunner({
    dataDir,
    registry: testRegistry(),
    registryDir: dataDir,
    logs: new FillingLogWriter(logsDir, disk),
    writeFile: (file, text) => {
      disk.check(file);
      writeFileSync(file, text);
    },
    simulateBin: dataDir,
    execute,
    reportRetryMs: options.reportRetryMs ?? 1,
    ...(options.reportAttempts ? { reportAttempts: options.reportAttempts } : {}),
  });
  const log = (deploymentId: string) => readFileSync(logFile(logsDir, deploymentId), 'utf8');
  return { runner, dataDir, log };
}

const job = (deploymentId: string): JobStart => ({
  deploymentId,
  job: 'build',
  idempotencyToken: `${deploymentId}-build`,
  environmentVariables: { APPLICATION: 'hello-world', ENVIRONMENT: 'staging' },
});

describe('the local job runner when reporting a job end fails', () => {
  it('retries a report that failed once (the store reset the connection) until it is delivered', async () => {
    const { runner: jobs, log } = runner(async () => ({ status: 'SUCCEEDED' }));
    const reports: string[] = [];
    jobs.onFinished = async (event) => {
      reports.push(event.detail['build-status']);
      if (reports.length === 1) throw connectionReset();
    };
    await jobs.start(job('D1'));
    await jobs.idle();
    expect(reports).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(log('D1')).toContain('reporting the job');
  });

  it('gives up after its attempts, leaving the job complete for the lost-event sweep', async () => {
    const { runner: jobs } = runner(async () => ({ status: 'FAILED' }), { reportAttempts: 3 });
    let reports = 0;
    jobs.onFinished = async () => {
      reports++;
      throw connectionReset();
    };
    const { buildId } = await jobs.start(job('D2'));
    await jobs.idle();
    expect(reports).toBe(3);
    expect(await jobs.describe([buildId])).toMatchObject([{ complete: true, status: 'FAILED' }]);
  });

  it('ends and reports a job whose record cannot be written (a full disk), and writes it once it can', async () => {
    const disk = new Disk();
    let finish: () => void = () => {};
    const { runner: jobs, dataDir } = runner(
      () =>
        new Promise((resolve) => {
          finish = () => resolve({ status: 'SUCCEEDED', exportedVariables: { A: '1' } });
        }),
      { disk },
    );
    const reports: string[] = [];
    jobs.onFinished = async (event) => {
      reports.push(event.detail['build-status']);
    };
    const { buildId } = await jobs.start(job('D3'));
    disk.full = true;
    finish();
    await jobs.idle();
    expect(disk.failed).toBeGreaterThan(0);
    expect(reports).toEqual(['SUCCEEDED']);
    // Nothing lost: the runner answers from what it could not write...
    expect(await jobs.describe([buildId])).toMatchObject([{ complete: true, status: 'SUCCEEDED' }]);
    // ...and writes it when the disk has room again, for a restarted server to read.
    disk.full = false;
    await jobs.stopAll();
    const restarted = runner(async () => ({ status: 'SUCCEEDED' }), { dataDir }).runner;
    expect(restarted.read(buildId)).toMatchObject({ complete: true, status: 'SUCCEEDED' });
    expect(restarted.unfinishedFromEarlierRuns()).toEqual([]);
  });

  it('refuses to start a job it cannot record, with a job start error', async () => {
    const disk = new Disk();
    disk.full = true;
    const { runner: jobs } = runner(async () => ({ status: 'SUCCEEDED' }), { disk });
    await expect(jobs.start(job('D4'))).rejects.toMatchObject({ name: 'JobStartError' });
  });
});
