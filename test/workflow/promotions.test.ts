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
    BUILD_COMMIT_TIME: `2020-01-0${n}T12:00:00+01:00`,
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

/** The registry object the harness's handlers read: tests change it to model a registry change. */
const stagingEnv = (h: Harness) => h.registry.applications['hello-world']!.environments.staging!;
const prodEnv = (h: Harness) => h.registry.applications['hello-world']!.environments.prod!;

/** The environment variables the deploy job of a deployment was started with. */
function deployEnv(h: Harness, deploymentId: string): Record<string, string | undefined> {
  const vars = (start: (typeof h.codebuild.starts)[number]) =>
    Object.fromEntries((start.environmentVariablesOverride ?? []).map((v) => [v.name, v.value]));
  const start = h.codebuild.starts.find((s) => {
    const env = vars(s);
    return env.DEPLOYMENT_ID === deploymentId && env.CROSSDEPLOY_JOB === 'deploy';
  });
  if (!start) throw new Error(`no deploy job for ${deploymentId}`);
  return vars(start);
}

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
    // The lead time of a promotion runs from the commit time its source build recorded.
    expect(prod?.buildOutput?.commitTime).toBe('2020-01-07T11:00:00.000Z');
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

  it('compares the parameters prod really runs: after a rollback to older parameters it redeploys, then skips', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h, 5);
    const first = h.start(tick('2026-11-30T09:00:00Z'));
    await first.settled;
    const release1 = await h.store.getDeployment(first.deploymentId);
    expect(release1).toMatchObject({ status: 'SUCCEEDED', release: 1 });

    prodEnv(h).parameterOverrides = { Stage: 'prod' };
    const second = h.start(tick('2026-12-01T09:00:00Z'));
    await second.settled;
    // Same build output, new registry parameters: not skipped.
    expect(await h.store.getDeployment(second.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      release: 2,
    });

    const back = h.start({
      application: 'hello-world',
      environment: 'prod',
      rollbackRelease: 1,
      requester: releaseManager,
    });
    await back.settled;
    expect(await h.store.getDeployment(back.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      parametersHash: release1?.parametersHash,
      release: 3,
    });

    // prod runs release 1's parameters again, the registry says otherwise: the next tick deploys.
    const third = h.start(tick('2026-12-02T09:00:00Z'));
    await third.settled;
    expect(await h.store.getDeployment(third.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      release: 4,
    });
    const fourth = h.start(tick('2026-12-03T09:00:00Z'));
    await fourth.settled;
    expect(await h.store.getDeployment(fourth.deploymentId)).toMatchObject({
      status: 'SKIPPED',
      errorCode: 'ALREADY_DEPLOYED',
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

  it("keeps an approver's override asked for before a window, and uses it (audited) when the window has opened by lock time", async () => {
    const { clock, harness } = frozenHarness(before);
    const h = await harness;
    h.codebuild.beforeFinish = async (_id, job) => {
      if (job === 'build') clock.at = inside;
    };
    const run = h.start({
      application: 'hello-world',
      environment: 'frozen',
      ref: 'main',
      overrideFreeze: true,
      requester: releaseManager,
    });
    expect((await run.settled).ok).toBe(true);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      freezeOverrideRequested: true,
      freezeOverride: true,
    });
    const events = await h.store.listEvents(run.deploymentId);
    const overrides = events.filter((e) => e.type === 'FREEZE_OVERRIDDEN');
    expect(overrides.map((e) => e.detail)).toEqual([
      {
        window: 'friday-afternoons',
        endsAt: '2026-11-27T17:00:00.000Z',
        by: releaseManager,
        check: 'lock',
      },
    ]);
    expect(events.map((e) => e.type)).toContain('LOCK_ACQUIRED');
  });

  it('does not keep the override of someone who is not an approver: refused when the window opens by lock time', async () => {
    const { clock, harness } = frozenHarness(before);
    const h = await harness;
    h.codebuild.beforeFinish = async (_id, job) => {
      if (job === 'build') clock.at = inside;
    };
    const run = h.start({
      application: 'hello-world',
      environment: 'frozen',
      ref: 'main',
      overrideFreeze: true,
    });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'REJECTED', errorCode: 'ENVIRONMENT_FROZEN' });
    expect(deployment?.freezeOverrideRequested).toBeUndefined();
    expect(await types(h, run.deploymentId)).not.toContain('FREEZE_OVERRIDDEN');
  });

  it('audits no override when no window was active at any check', async () => {
    const { harness } = frozenHarness(before);
    const h = await harness;
    const run = h.start({
      application: 'hello-world',
      environment: 'frozen',
      ref: 'main',
      overrideFreeze: true,
      requester: releaseManager,
    });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'SUCCEEDED', freezeOverrideRequested: true });
    expect(deployment?.freezeOverride).toBeUndefined();
    expect(await types(h, run.deploymentId)).not.toContain('FREEZE_OVERRIDDEN');
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
  it('redeploys release N: its build output and its registry parameters, no build, recorded as a rollback of N with a new release', async () => {
    const h = await createWorkflowHarness();
    const one = await deployStaging(h, 1);
    // The registry changes after release 1: later releases deploy other parameters.
    stagingEnv(h).parameterOverrides = { Stage: 'staging', FeatureFlag: 'on' };
    stagingEnv(h).capabilities = ['CAPABILITY_IAM', 'CAPABILITY_AUTO_EXPAND'];
    await deployStaging(h, 2);
    const three = await deployStaging(h, 3);
    expect(three.parametersHash).not.toBe(one.parametersHash);
    expect(deployEnv(h, three.deploymentId).PARAMETER_OVERRIDES_JSON).toBe(
      '{"FeatureFlag":"on","Stage":"staging"}',
    );
    h.codebuild.starts.length = 0;

    const run = h.start({ application: 'hello-world', environment: 'staging', rollbackRelease: 1 });
    expect((await run.settled).ok).toBe(true);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'rollback',
      rollbackOf: 1,
      buildOutput: one.buildOutput,
      parameters: one.parameters,
      parametersHash: one.parametersHash,
      source: { deploymentId: one.deploymentId, environment: 'staging', release: 1 },
      release: 4,
    });
    expect(projects(h)).toEqual(['crossdeploy-deploy']);
    // sam deploy got release 1's parameters, not the registry's current ones.
    expect(deployEnv(h, run.deploymentId)).toMatchObject({
      PARAMETER_OVERRIDES_JSON: '{"Stage":"staging"}',
      CAPABILITIES: 'CAPABILITY_IAM',
      OUTPUT_SHA256: '1'.repeat(64),
    });
    const validated = (await h.store.listEvents(run.deploymentId)).find((e) => e.type === 'VALIDATED');
    expect(validated?.detail.parametersHash).toBe(one.parametersHash);
  });

  it('refuses to roll back to a release recorded for another stack than the registry names now', async () => {
    const h = await createWorkflowHarness();
    await deployStaging(h, 1);
    stagingEnv(h).stackName = 'hello-world-staging-v2';
    h.codebuild.starts.length = 0;
    const run = h.start({ application: 'hello-world', environment: 'staging', rollbackRelease: 1 });
    await run.settled;
    const refused = await h.store.getDeployment(run.deploymentId);
    expect(refused).toMatchObject({ status: 'REJECTED', errorCode: 'INVALID_FIELD' });
    expect(refused?.errorMessage).toBe(
      'release 1 was deployed to account 111111111111, eu-west-1, stack hello-world-staging; ' +
        'staging is now account 111111111111, eu-west-1, stack hello-world-staging-v2',
    );
    expect(h.codebuild.starts).toEqual([]);
  });

  it('succeeds when the stack already runs release N ("No changes to deploy"), recorded as no changes and as a release', async () => {
    const h = await createWorkflowHarness();
    const one = await deployStaging(h, 1);
    h.codebuild.scripts.deploy = {
      status: 'SUCCEEDED',
      exported: {
        NO_CHANGES: 'true',
        CHANGE_SET_SUMMARY: 'no changes: stack hello-world-staging is up to date',
      },
    };
    const run = h.start({ application: 'hello-world', environment: 'staging', rollbackRelease: 1 });
    const settled = await run.settled;
    expect(settled.ok).toBe(true);
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'SUCCEEDED',
      kind: 'rollback',
      rollbackOf: 1,
      buildOutput: one.buildOutput,
      noChanges: true,
      changeSet: 'no changes: stack hello-world-staging is up to date',
      // It completed: the environment runs release 1's output and parameters from now on.
      release: 2,
    });
    const events = await h.store.listEvents(run.deploymentId);
    expect(events.find((e) => e.type === 'DEPLOY_FINISHED')?.detail).toMatchObject({
      status: 'SUCCEEDED',
      noChanges: true,
    });
    expect(events.find((e) => e.type === 'SUCCEEDED')?.detail).toMatchObject({ release: 2 });
  });

  it('records no "no changes" on a deploy that changed the stack', async () => {
    const h = await createWorkflowHarness();
    h.codebuild.scripts.deploy = {
      status: 'SUCCEEDED',
      exported: { NO_CHANGES: 'false', CHANGE_SET_SUMMARY: '' },
    };
    const staging = await deployStaging(h, 1);
    expect(staging.noChanges).toBeUndefined();
    const finished = (await h.store.listEvents(staging.deploymentId)).find(
      (e) => e.type === 'DEPLOY_FINISHED',
    );
    expect(finished?.detail).not.toHaveProperty('noChanges');
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
