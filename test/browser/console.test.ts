import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobOutcome } from '#local/job-runner.ts';
import { LocalLogWriter } from '#local/logs.ts';
import type { JobStart } from '#shared/ports.ts';
import type { Deployment } from '#shared/types.ts';
import { BUILD_OUTPUT, type LocalMode, startLocalMode } from '#test/support/local-mode.ts';

/**
 * The console in a real browser (Debian's Chromium driven by playwright-core; never a downloaded browser)
 * against local mode with real deployments: the real API core, ASL engine and store, jobs stood in for.
 * Without Chromium these tests fail and say how to install it: they are part of `npm test` on purpose.
 */

const CHROMIUM = process.env.CROSSDEPLOY_CHROMIUM ?? '/usr/bin/chromium';
/** Set to a directory to write the screenshots docs/console.md shows. */
const SCREENSHOTS = process.env.CROSSDEPLOY_SCREENSHOTS;

let browser: Browser;
let local: LocalMode | undefined;
let heldJobs: Jobs | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the browser tests need Chromium at ${CHROMIUM}: install it with \`sudo apt-get install -y chromium\` (Debian/Ubuntu), or point CROSSDEPLOY_CHROMIUM at a Chromium binary`,
    );
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags Chromium keeps calling Google's hosts, which a closed network
    // refuses; playwright gives each launch a fresh, empty profile directory.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  // A test that failed half-way leaves jobs held: let them end, or closing would wait for them.
  heldJobs?.releaseAll();
  await local?.close();
  local = undefined;
});

/** Jobs that wait until the test lets them end, and report what the test says. */
class Jobs {
  private readonly gates = new Map<string, () => void>();
  readonly started: string[] = [];
  outcome: (job: JobStart) => JobOutcome = (job) =>
    job.job === 'build' ? BUILD_OUTPUT : { status: 'SUCCEEDED' };
  holdDeploys = false;
  logs: LocalLogWriter | undefined;

  execute = async (job: JobStart): Promise<JobOutcome> => {
    this.started.push(`${job.deploymentId}:${job.job}`);
    if (job.job === 'deploy' && this.holdDeploys) {
      await new Promise<void>((resolve) => this.gates.set(job.deploymentId, resolve));
    }
    return this.outcome(job);
  };

  release(deploymentId: string) {
    this.gates.get(deploymentId)?.();
  }

  releaseAll() {
    this.holdDeploys = false;
    for (const release of this.gates.values()) release();
  }

  async waitForDeploy(mode: LocalMode, id: string) {
    await mode.waitUntil(id, () => this.gates.has(id));
  }
}

async function start(jobs: Jobs): Promise<LocalMode> {
  heldJobs = jobs;
  local = await startLocalMode({ executeJob: jobs.execute });
  jobs.logs = new LocalLogWriter(join(local.root, 'data', 'logs'));
  return local;
}

async function request(mode: LocalMode, reason: string): Promise<string> {
  const response = await fetch(`${mode.url}/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ application: 'hello-world', environment: 'staging', ref: 'main', reason }),
  });
  const body = (await response.json()) as { deploymentId: string };
  if (response.status !== 202) throw new Error(`deploy answered ${response.status}`);
  return body.deploymentId;
}

/** A page that fails the test on any script dialog (an escaped payload never opens one). */
async function open(path: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('dialog', (dialog) => {
    throw new Error(`a dialog opened: ${dialog.message()}`);
  });
  await page.goto(`${local?.url}${path}`);
  return page;
}

async function shot(page: Page, name: string) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

describe('console in Chromium', () => {
  it('shows a running deployment turn SUCCEEDED in the grid without a reload', async () => {
    const jobs = new Jobs();
    jobs.holdDeploys = true;
    const mode = await start(jobs);
    const id = await request(mode, 'ship it');
    await jobs.waitForDeploy(mode, id);

    const page = await open('/console');
    const cell = page.locator('[data-cell="hello-world/staging"]');
    await expect.poll(() => cell.locator('[data-status]').getAttribute('data-status')).toBe('RUNNING');
    await expect.poll(() => cell.locator('a[href^="/console/deployments/"]').textContent()).toBe(id);
    await shot(page, 'grid-running');
    // A marker on the window survives only if the page is never reloaded or navigated.
    await page.evaluate(() => Object.assign(window, { notReloaded: true }));
    // Past the script's one extra refresh of a page that is not live: only a live page refreshes on.
    await expect
      .poll(async () => Number(await page.locator('html').getAttribute('data-refreshes')), {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(2);

    jobs.release(id);
    await expect
      .poll(() => cell.locator('[data-status]').getAttribute('data-status'), { timeout: 15_000 })
      .toBe('SUCCEEDED');
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    expect(await cell.locator('[data-queue-length]').textContent()).toBe('0');
    await shot(page, 'grid');
    await page.close();
  });

  it("shows a failed deployment's error and log lines, and a hostile reason as text", async () => {
    const jobs = new Jobs();
    const hostile = '<img src=x onerror=alert(1)>';
    jobs.outcome = (job) => {
      if (job.job === 'build') return BUILD_OUTPUT;
      jobs.logs?.append(job.deploymentId, 'deploy', 'Downloading build output v-1');
      jobs.logs?.append(
        job.deploymentId,
        'deploy',
        'crossdeploy: checksum mismatch <script>alert(2)</script>',
      );
      return { status: 'FAILED', exportedVariables: { CROSSDEPLOY_FAILURE: 'CHECKSUM_MISMATCH' } };
    };
    const mode = await start(jobs);
    const id = await request(mode, hostile);
    const failed = await mode.waitUntil(id, (d: Deployment) => d.status === 'FAILED');
    expect(failed.errorCode).toBe('CHECKSUM_MISMATCH');

    const page = await open(`/console/deployments/${id}`);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('CHECKSUM_MISMATCH');
    const lines = await page.locator('.log-line').allTextContents();
    expect(lines).toEqual([
      '[deploy] Downloading build output v-1\n',
      '[deploy] crossdeploy: checksum mismatch <script>alert(2)</script>\n',
    ]);
    expect(await page.locator('dd.reason').textContent()).toBe(hostile);
    expect(await page.locator('img').count()).toBe(0);
    const events = await page
      .locator('tr[data-event]')
      .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event')));
    expect(events[0]).toBe('REQUESTED');
    expect(events.at(-1)).toBe('FAILED');
    expect(events.indexOf('LOCK_RELEASED')).toBeLessThan(events.indexOf('FAILED'));
    await shot(page, 'deployment-failed');
    await page.close();
  });

  it('shows the waiters of the queue in request order', async () => {
    const jobs = new Jobs();
    jobs.holdDeploys = true;
    const mode = await start(jobs);
    const first = await request(mode, 'first');
    await jobs.waitForDeploy(mode, first);
    const second = await request(mode, 'second');
    const third = await request(mode, 'third');
    await mode.waitUntil(third, (d: Deployment) => d.phase === 'WAITING_FOR_LOCK');

    const page = await open('/console/queue');
    await expect
      .poll(() =>
        page
          .locator('li[data-waiter]')
          .evaluateAll((items) => items.map((i) => i.getAttribute('data-waiter'))),
      )
      .toEqual([first, second, third]);
    expect(await page.locator(`li[data-waiter="${first}"]`).textContent()).toContain('holds the lock');
    await shot(page, 'queue');
    await page.close();
    for (const id of [first, second, third]) {
      await jobs.waitForDeploy(mode, id);
      jobs.release(id);
      await mode.waitUntil(id, (d: Deployment) => d.status === 'SUCCEEDED');
    }
  });

  it('shows the metrics of the hand-computed fixture (test/unit/metrics-export.test.ts) on the environment page', async () => {
    const jobs = new Jobs();
    const mode = await start(jobs);
    const store = mode.orchestrator.store;
    const put = async (
      id: string,
      requestedAt: string,
      status: 'SUCCEEDED' | 'FAILED',
      finishedAt: string,
    ) => {
      await store.createDeployment({
        deploymentId: id,
        application: 'hello-world',
        environment: 'staging',
        ref: 'main',
        requester: { type: 'local', user: 'alice' },
        trigger: 'local',
        dryRun: false,
        status: 'QUEUED',
        requestedAt,
        updatedAt: requestedAt,
      });
      await store.finishDeployment(id, status, { finishedAt });
    };
    await put('d1', '2026-11-01T10:00:00.000Z', 'SUCCEEDED', '2026-11-01T10:10:00.000Z');
    await put('d2', '2026-11-02T10:00:00.000Z', 'FAILED', '2026-11-02T10:05:00.000Z');
    await put('d3', '2026-11-02T11:00:00.000Z', 'FAILED', '2026-11-02T11:05:00.000Z');
    await put('d4', '2026-11-03T09:00:00.000Z', 'SUCCEEDED', '2026-11-03T09:20:00.000Z');
    await put('d7', '2026-11-05T08:00:00.000Z', 'SUCCEEDED', '2026-11-05T08:30:00.000Z');
    await put('d8', '2026-11-07T22:00:00.000Z', 'FAILED', '2026-11-07T22:10:00.000Z');
    await put('d9', '2026-11-08T01:00:00.000Z', 'SUCCEEDED', '2026-11-08T01:40:00.000Z');

    const page = await open('/console/environments/hello-world/staging?from=2026-11-01&to=2026-11-08');
    const metric = (name: string) => page.locator(`[data-metric="${name}"]`).textContent();
    expect(await metric('frequency')).toBe('0.429/day');
    expect(await metric('failure-rate')).toBe('50%');
    // 83,700 s and 12,600 s: median 48,150 s = 13.4 h.
    expect(await metric('restore')).toBe('13.4h');
    // This registry names no source.localPath: no commit can be dated, and the page says so.
    expect(await metric('lead-time')).toBe('n/a');
    expect(await page.locator('svg[role="img"] rect.bar-fail').count()).toBe(7);
    // The window form is labelled and reachable by keyboard.
    await page.getByLabel('From').focus();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('from');
    await shot(page, 'environment');
    await page.close();
  });
});
