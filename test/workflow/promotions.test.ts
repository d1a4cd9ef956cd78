import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BUILD_OK, createWorkflowHarness, type JobScript } from '#test/support/workflow.ts';

/**
 * Promotions, rollbacks and freeze windows on the real statemachine/deploy.asl.json: the same workflow,
 * entered with a recorded build output instead of a ref, so Build is skipped.
 */

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;

const releaseManager = { type: 'local', user: 'release-manager' } as const;
const nightly = { type: 'schedule', scheduleName: 'promote-nightly' } as const;

/** A build that produced a given artifact (digest and commit), so runs can be told apart. */
const buildOf = (n: number): JobScript => ({
  ...BUILD_OK,
  resolvedCommit: String(n).repeat(40),
  exported: {
    BUILD_OUTPUT_VERSION_ID: `v-${n}`,
    BUILD_OUTPUT_SHA256: String(n).repeat(64),
    RESOLVED_COMMIT: String(n).repeat(40),
  },
});

async function types(h: Harness, id: string) {
  return (await h.store.listEvents(id)).map((e) => e.type);
}

/** Deploys staging from a ref with a given build, and returns the finished deployment. */
async function deployStaging(h: Harness, n: number) {
  h.codebuild.scripts.build = buildOf(n);
  const run = h.start({ application: 'hello-world', environment: 'staging', ref: 'main' });
  expect((await run.settled).ok).toBe(true);
  const deployment = await h.store.getDeployment(run.deploymentId);
  expect(deployment?.status).toBe('SUCCEEDED');
  return deployment!;
}

const projects = (h: Harness) => h.codebuild.starts.map((s) => s.projectName);

beforeEach(() => {
  // The handlers log through Powertools; keep the test output readable.
  vi.spyOn(process.stdout, 'write').mockImplementation((() => true) as never);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('promotion', () => {
  it("deploys staging's exact recorded build output to prod without a build job", async () => {
    const h = await createWorkflowHarness();
    const staging = await deployStaging(h, 7);
    h.codebuild.starts.length = 0;
    h.codebuild.scripts.build = buildOf(9); // a rebuild would produce this; it must not happen

    const run = h.start({
      application: 'hello-world',
      environment: 'prod',
      promoteFrom: 'staging',
      requester: releaseManager,
    });
    expect((await run.settled).ok).toBe(true);

    const prod = await h.store.getDeployment(run.deploymentId);
    expect(prod).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'promotion',
      buildOutput: staging.buildOutput,
      resolvedCommit: '7'.repeat(40),
      source: { deploymentId: staging.deploymentId, environment: 'staging', release: 1 },
      targetAccount: '222222222222',
      release: 1,
    });
    expect(projects(h)).toEqual(['crossdeploy-deploy']);
    const deployJob = h.codebuild.starts[0]!;
    const env = Object.fromEntries(
      (deployJob.environmentVariablesOverride ?? []).map((v) => [v.name, v.value]),
    );
    expect(env).toMatchObject({ OUTPUT_VERSION_ID: 'v-7', OUTPUT_SHA256: '7'.repeat(64) });
    const events = await types(h, run.deploymentId);
    expect(events).not.toContain('BUILD_STARTED');
    expect(events).toEqual(
      expect.arrayContaining(['VALIDATED', 'LOCK_ACQUIRED', 'DEPLOY_FINISHED', 'SUCCEEDED']),
    );
  });

  it('deploys the build output the API resolved (buildOutputFrom), not a newer one', async () => {
    const h = await createWorkflowHarness();
    const first = await deployStaging(h, 3);
    await deployStaging(h, 4);
    const run = h.start({
      application: 'hello-world',
      environment: 'prod',
      promoteFrom: 'staging',
      buildOutputFrom: first.deploymentId,
      requester: releaseManager,
    });
    expect((await run.settled).ok).toBe(true);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      buildOutput: first.buildOutput,
    });
  });

  it('refuses a promotion path the registry does not allow, and a direct ref where only promotions go', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h, 1);
    const sandbox = h.start({
      application: 'hello-world',
      environment: 'prod',
      promoteFrom: 'sandbox',
      requester: releaseManager,
    });
    const direct = h.start({
      application: 'hello-world',
      environment: 'prod',
      ref: 'main',
      requester: releaseManager,
    });
    await Promise.all([sandbox.settled, direct.settled]);
    const refused = await h.store.getDeployment(sandbox.deploymentId);
    expect(refused).toMatchObject({ status: 'REJECTED', errorCode: 'PROMOTION_NOT_ALLOWED' });
    expect(refused?.errorMessage).toBe('prod may be promoted only from staging, not from sandbox');
    const ref = await h.store.getDeployment(direct.deploymentId);
    expect(ref).toMatchObject({ status: 'REJECTED', errorCode: 'REF_NOT_ALLOWED' });
    expect(ref?.errorMessage).toBe('prod accepts promotions and rollbacks only, not a ref');
    expect(projects(h)).toEqual(['crossdeploy-build', 'crossdeploy-deploy']); // staging's only
  });

  it('refuses a promotion when the source environment has nothing deployed', async () => {
    const h = await createWorkflowHarness();
    const run = h.start({
      application: 'hello-world',
      environment: 'prod',
      promoteFrom: 'staging',
      requester: releaseManager,
    });
    await run.settled;
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'NOTHING_TO_PROMOTE',
    });
    expect(h.codebuild.starts).toEqual([]);
  });
});

describe('scheduled promotion', () => {
  const tick = (scheduledTime: string) => ({
    application: 'hello-world',
    environment: 'prod',
    promoteFrom: 'staging',
    schedule: { name: 'promote-nightly', scheduledTime },
    requester: nightly,
    trigger: 'schedule',
  });

  it('is SKIPPED with its reason when prod already runs the same build output and parameters', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h, 5);
    const first = h.start(tick('2026-11-30T09:00:00Z'));
    expect((await first.settled).ok).toBe(true);
    expect((await h.store.getDeployment(first.deploymentId))?.status).toBe('SUCCEEDED');
    h.codebuild.starts.length = 0;

    const second = h.start(tick('2026-12-01T09:00:00Z'));
    expect((await second.settled).ok).toBe(true);
    const skipped = await h.store.getDeployment(second.deploymentId);
    expect(skipped).toMatchObject({ status: 'SKIPPED', errorCode: 'ALREADY_DEPLOYED', trigger: 'schedule' });
    expect(skipped?.errorMessage).toContain(
      `already runs this build output (deployment ${first.deploymentId})`,
    );
    expect(skipped?.requester).toEqual(nightly);
    expect(h.codebuild.starts).toEqual([]);
    expect(await h.store.getLock('hello-world', 'prod')).toBeUndefined();

    // Something new in staging: the next tick deploys it.
    await deployStaging(h, 6);
    const third = h.start(tick('2026-12-02T09:00:00Z'));
    await third.settled;
    expect(await h.store.getDeployment(third.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      release: 2,
    });
  });

  it('starts nothing new for a duplicate fire of the same tick', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h, 2);
    h.codebuild.starts.length = 0;
    const at = '2026-11-30T09:00:00.000Z';
    const first = h.start(tick(at));
    await first.settled;
    const again = h.start(tick(at));
    expect((await again.settled).ok).toBe(true);
    expect((await h.store.getDeployment(first.deploymentId))?.status).toBe('SUCCEEDED');
    expect(await h.store.getDeployment(again.deploymentId)).toBeUndefined();
    expect(await h.store.listEvents(again.deploymentId)).toEqual([]);
    expect(projects(h)).toEqual(['crossdeploy-deploy']);
  });
});

describe('freeze windows', () => {
  // Friday 2026-11-27: "friday-afternoons" freezes 15:00–18:00 Europe/Berlin (14:00–17:00Z in winter).
  const before = new Date('2026-11-27T12:00:00Z');
  const inside = new Date('2026-11-27T15:30:00Z');

  function frozenHarness(start: Date) {
    const clock = { at: start, now: () => clock.at };
    return { clock, harness: createWorkflowHarness({ clock }) };
  }

  it('refuses a request inside a window, naming the window and when it ends', async () => {
    const { harness } = frozenHarness(inside);
    const h = await harness;
    const run = h.start({ application: 'hello-world', environment: 'frozen', ref: 'main' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'REJECTED', errorCode: 'ENVIRONMENT_FROZEN' });
    expect(deployment?.errorMessage).toBe(
      'deployments are frozen by "friday-afternoons" until 2026-11-27T17:00:00.000Z',
    );
    expect(h.codebuild.starts).toEqual([]);
  });

  it('refuses at lock time when the build ends inside a window, and releases nothing it did not take', async () => {
    const { clock, harness } = frozenHarness(before);
    const h = await harness;
    h.codebuild.beforeFinish = async (_id, job) => {
      if (job === 'build') clock.at = inside; // the build runs into Friday afternoon
    };
    const run = h.start({ application: 'hello-world', environment: 'frozen', ref: 'main' });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'REJECTED', errorCode: 'ENVIRONMENT_FROZEN' });
    expect(deployment?.errorMessage).toContain('"friday-afternoons" until 2026-11-27T17:00:00.000Z');
    const events = await types(h, run.deploymentId);
    expect(events).toContain('BUILD_FINISHED');
    expect(events).not.toContain('LOCK_ACQUIRED');
    expect(projects(h)).toEqual(['crossdeploy-build']);
    expect(await h.store.getLock('hello-world', 'frozen')).toBeUndefined();
  });

  it("passes an approver's override and records it; the same flag from anyone else is refused", async () => {
    const { harness } = frozenHarness(new Date('2026-12-24T10:00:00Z'));
    const h = await harness;
    const approved = h.start({
      application: 'hello-world',
      environment: 'frozen',
      ref: 'main',
      overrideFreeze: true,
      requester: releaseManager,
    });
    await approved.settled;
    expect(await h.store.getDeployment(approved.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      freezeOverride: true,
    });
    const override = (await h.store.listEvents(approved.deploymentId)).find(
      (e) => e.type === 'FREEZE_OVERRIDDEN',
    );
    expect(override?.detail).toMatchObject({
      window: 'year-end',
      endsAt: '2027-01-05T00:00:00.000Z',
      by: releaseManager,
    });

    const other = h.start({
      application: 'hello-world',
      environment: 'frozen',
      ref: 'main',
      overrideFreeze: true,
    });
    await other.settled;
    const refused = await h.store.getDeployment(other.deploymentId);
    expect(refused).toMatchObject({ status: 'REJECTED', errorCode: 'ENVIRONMENT_FROZEN' });
    expect(refused?.errorMessage).toContain("only the environment's approvers may override a freeze");
  });

  it('refuses a scheduled promotion inside a window', async () => {
    const { clock, harness } = frozenHarness(before);
    const h = await harness;
    await deployStaging(h, 1);
    clock.at = inside;
    const run = h.start({
      application: 'hello-world',
      environment: 'frozen',
      promoteFrom: 'staging',
      schedule: { name: 'promote-friday', scheduledTime: inside.toISOString() },
      requester: { type: 'schedule', scheduleName: 'promote-friday' },
      trigger: 'schedule',
    });
    await run.settled;
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'ENVIRONMENT_FROZEN',
    });
  });
});

describe('rollback', () => {
  it('redeploys release N: its build output, no build, recorded as a rollback of N with a new release', async () => {
    const h = await createWorkflowHarness();
    const one = await deployStaging(h, 1);
    await deployStaging(h, 2);
    await deployStaging(h, 3);
    h.codebuild.starts.length = 0;

    const run = h.start({ application: 'hello-world', environment: 'staging', rollbackRelease: 1 });
    expect((await run.settled).ok).toBe(true);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'rollback',
      rollbackOf: 1,
      buildOutput: one.buildOutput,
      parametersHash: one.parametersHash,
      source: { deploymentId: one.deploymentId, environment: 'staging', release: 1 },
      release: 4,
    });
    expect(projects(h)).toEqual(['crossdeploy-deploy']);
  });

  it('refuses an unknown release', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h, 1);
    const run = h.start({ application: 'hello-world', environment: 'staging', rollbackRelease: 9 });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'REJECTED', errorCode: 'UNKNOWN_RELEASE' });
    expect(deployment?.errorMessage).toBe('hello-world/staging has no release 9');
  });
});
