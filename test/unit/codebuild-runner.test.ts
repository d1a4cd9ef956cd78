import {
  BatchGetBuildsCommand,
  CodeBuildClient,
  StartBuildCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { CodeBuildJobRunner } from '#shared/aws/codebuild.ts';
import { JobStartError, TransientError } from '#shared/errors.ts';
import { PUBLISHED_BUILDSPECS } from '#test/support/job-specs.ts';

/** The exact CodeBuild calls behind the JobRunner port: what StartBuild, BatchGetBuilds and StopBuild receive. */

const codebuild = mockClient(CodeBuildClient);
const runner = () =>
  new CodeBuildJobRunner({
    client: new CodeBuildClient({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
    buildProject: 'crossdeploy-build',
    deployProject: 'crossdeploy-deploy',
    buildspecs: PUBLISHED_BUILDSPECS,
    region: 'eu-west-1',
  });

const BUILD_ID = 'crossdeploy-build:0b4e1a9c-3f57-4a8e-9c1d-2f0e6d7b8a91';
const CONNECTION =
  'arn:aws:codeconnections:eu-west-1:123456789012:connection/8d1f2c3b-aaaa-bbbb-cccc-123456789012';

beforeEach(() => {
  codebuild.reset();
});

describe('CodeBuildJobRunner', () => {
  it('built without the published buildspecs (every function but StartJob), refuses to start a job', async () => {
    const watcher = new CodeBuildJobRunner({
      client: new CodeBuildClient({
        region: 'eu-west-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      }),
      buildProject: 'crossdeploy-build',
      deployProject: 'crossdeploy-deploy',
      region: 'eu-west-1',
    });
    await expect(
      watcher.start({
        deploymentId: '01JNDEPLOY0000000000000001',
        job: 'deploy',
        idempotencyToken: '01JNDEPLOY0000000000000001-deploy',
        environmentVariables: {},
      }),
    ).rejects.toThrow(/without the published buildspec locations/);
    expect(codebuild.commandCalls(StartBuildCommand)).toHaveLength(0);
  });

  it('starts the build job with this repository’s buildspec, the exact commit and a shallow clone', async () => {
    codebuild.on(StartBuildCommand).resolves({ build: { id: BUILD_ID } });
    const started = await runner().start({
      deploymentId: '01JNBUILD00000000000000001',
      job: 'build',
      idempotencyToken: '01JNBUILD00000000000000001-build',
      environmentVariables: { DEPLOYMENT_ID: '01JNBUILD00000000000000001', CROSSDEPLOY_JOB: 'build' },
      source: {
        type: 'GITHUB',
        location: 'https://github.com/example-org/hello-world.git',
        version: 'main',
        connectionArn: CONNECTION,
      },
    });
    expect(codebuild.commandCalls(StartBuildCommand).map((call) => call.args[0].input)).toEqual([
      {
        projectName: 'crossdeploy-build',
        idempotencyToken: '01JNBUILD00000000000000001-build',
        buildspecOverride: PUBLISHED_BUILDSPECS.build,
        environmentVariablesOverride: [
          { name: 'DEPLOYMENT_ID', value: '01JNBUILD00000000000000001', type: 'PLAINTEXT' },
          { name: 'CROSSDEPLOY_JOB', value: 'build', type: 'PLAINTEXT' },
        ],
        sourceTypeOverride: 'GITHUB',
        sourceLocationOverride: 'https://github.com/example-org/hello-world.git',
        sourceVersion: 'main',
        gitCloneDepth: 1,
        sourceAuthOverride: { type: 'CODECONNECTIONS', resource: CONNECTION },
      },
    ]);
    expect(started).toEqual({
      buildId: BUILD_ID,
      logUrl: `https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/crossdeploy-build/build/${encodeURIComponent(BUILD_ID)}/log`,
    });
  });

  it('starts the deploy job without a source and without source auth', async () => {
    codebuild.on(StartBuildCommand).resolves({ build: { id: 'crossdeploy-deploy:1' } });
    await runner().start({
      deploymentId: '01JNDEPLOY0000000000000001',
      job: 'deploy',
      idempotencyToken: '01JNDEPLOY0000000000000001-deploy',
      environmentVariables: { DEPLOYMENT_ID: '01JNDEPLOY0000000000000001' },
    });
    expect(codebuild.commandCalls(StartBuildCommand).map((call) => call.args[0].input)).toEqual([
      {
        projectName: 'crossdeploy-deploy',
        idempotencyToken: '01JNDEPLOY0000000000000001-deploy',
        buildspecOverride: PUBLISHED_BUILDSPECS.deploy,
        environmentVariablesOverride: [
          { name: 'DEPLOYMENT_ID', value: '01JNDEPLOY0000000000000001', type: 'PLAINTEXT' },
        ],
      },
    ]);
  });

  it('makes a throttled StartBuild a TransientError (the state machine retries it) and passes others on', async () => {
    codebuild
      .on(StartBuildCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .rejectsOnce(Object.assign(new Error('no such project'), { name: 'ResourceNotFoundException' }))
      .resolves({ build: {} });
    const job = {
      deploymentId: 'd',
      job: 'deploy' as const,
      idempotencyToken: 't',
      environmentVariables: {},
    };
    await expect(runner().start(job)).rejects.toBeInstanceOf(TransientError);
    await expect(runner().start(job)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(runner().start(job)).rejects.toBeInstanceOf(JobStartError);
  });

  it('describes builds with one BatchGetBuilds, reading the job, its commit and its exported variables', async () => {
    codebuild.on(BatchGetBuildsCommand).resolves({
      builds: [
        {
          id: BUILD_ID,
          buildStatus: 'SUCCEEDED',
          buildComplete: true,
          resolvedSourceVersion: '3f2c1a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b',
          environment: {
            type: 'ARM_CONTAINER',
            image: 'x',
            computeType: 'BUILD_GENERAL1_SMALL',
            environmentVariables: [
              { name: 'DEPLOYMENT_ID', value: '01JNBUILD00000000000000001' },
              { name: 'CROSSDEPLOY_JOB', value: 'build' },
            ],
          },
          exportedEnvironmentVariables: [{ name: 'ARTIFACT_DIGEST', value: 'sha256:abc' }],
        },
      ],
    });
    const [info] = await runner().describe([BUILD_ID]);
    expect(codebuild.commandCalls(BatchGetBuildsCommand).map((call) => call.args[0].input)).toEqual([
      { ids: [BUILD_ID] },
    ]);
    expect(info).toMatchObject({
      buildId: BUILD_ID,
      deploymentId: '01JNBUILD00000000000000001',
      job: 'build',
      status: 'SUCCEEDED',
      complete: true,
      resolvedCommit: '3f2c1a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b',
      exportedVariables: { ARTIFACT_DIGEST: 'sha256:abc' },
    });
    expect(await runner().describe([])).toEqual([]);
    expect(codebuild.commandCalls(BatchGetBuildsCommand)).toHaveLength(1);
  });

  it('stops a build by id, and takes "already complete" as stopped', async () => {
    codebuild
      .on(StopBuildCommand)
      .resolvesOnce({})
      .rejectsOnce(Object.assign(new Error('Build already complete'), { name: 'InvalidInputException' }))
      .rejectsOnce(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    await runner().stop(BUILD_ID);
    await runner().stop(BUILD_ID);
    await expect(runner().stop(BUILD_ID)).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(codebuild.commandCalls(StopBuildCommand).map((call) => call.args[0].input)).toEqual([
      { id: BUILD_ID },
      { id: BUILD_ID },
      { id: BUILD_ID },
    ]);
  });
});
