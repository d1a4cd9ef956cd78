import { describe, expect, it } from 'vitest';
import { envShapes, optionalText, publishedBuildspecs, readEnv } from '#shared/config.ts';

describe('readEnv', () => {
  it('returns the checked values, numbers as numbers', () => {
    expect(
      readEnv(envShapes.timeouts, { QUEUED_TIMEOUT_MINUTES: '5', DEPLOY_TIMEOUT_MINUTES: '60' }),
    ).toEqual({ QUEUED_TIMEOUT_MINUTES: 5, DEPLOY_TIMEOUT_MINUTES: 60 });
    expect(readEnv(envShapes.stateMachine, { STATE_MACHINE_ARN: 'arn:aws:states:x' })).toEqual({
      STATE_MACHINE_ARN: 'arn:aws:states:x',
    });
  });

  it('names every variable that is missing or wrong, in one error', () => {
    expect(() =>
      readEnv(
        { ...envShapes.timeouts, ...envShapes.stateMachine, ...envShapes.table },
        {
          QUEUED_TIMEOUT_MINUTES: '1.5',
          STATE_MACHINE_ARN: 'my-machine',
          TABLE_NAME: 'ab',
        },
      ),
    ).toThrow(
      'invalid configuration: QUEUED_TIMEOUT_MINUTES: must be a whole number above 0; DEPLOY_TIMEOUT_MINUTES: is required; STATE_MACHINE_ARN: must be an ARN (arn:...); TABLE_NAME: must be at least 3 characters',
    );
  });

  it.each(['0', '-3', '', ' ', 'ten'])('refuses %j as a number of minutes', (value) => {
    expect(() =>
      readEnv(envShapes.timeouts, { QUEUED_TIMEOUT_MINUTES: value, DEPLOY_TIMEOUT_MINUTES: '1' }),
    ).toThrow('QUEUED_TIMEOUT_MINUTES');
  });

  it('treats an optional variable that is empty or blank as unset', () => {
    const spec = { SECRET: optionalText() };
    expect(readEnv(spec, {})).toEqual({ SECRET: undefined });
    expect(readEnv(spec, { SECRET: '  ' })).toEqual({ SECRET: undefined });
    expect(readEnv(spec, { SECRET: ' s3cret ' })).toEqual({ SECRET: 's3cret' });
  });
});

describe('the published buildspec locations (StartJob)', () => {
  const bucket = 'crossdeploy-jobspecsbucket-1abc';
  const build = `arn:aws:s3:::crossdeploy-jobspecsbucket-1abc/job-specs/build-${'a'.repeat(64)}.yml`;
  const deploy = `arn:aws:s3:::crossdeploy-jobspecsbucket-1abc/job-specs/deploy-${'b'.repeat(64)}.yml`;

  it('accepts the S3 ARN of each job’s published buildspec', () => {
    expect(
      readEnv(envShapes.jobSpecs, {
        JOB_SPECS_BUCKET: bucket,
        BUILD_BUILDSPEC_LOCATION: build,
        DEPLOY_BUILDSPEC_LOCATION: deploy,
      }),
    ).toEqual({
      JOB_SPECS_BUCKET: bucket,
      BUILD_BUILDSPEC_LOCATION: build,
      DEPLOY_BUILDSPEC_LOCATION: deploy,
    });
  });

  it.each([
    ['the other job’s buildspec', deploy],
    ['an inline buildspec', 'version: 0.2\nphases: {}'],
    [
      'an object outside job-specs/',
      `arn:aws:s3:::crossdeploy-artifactsbucket-1abc/builds/build-${'a'.repeat(64)}.yml`,
    ],
    ['a path that climbs out', `arn:aws:s3:::b-1abc/job-specs/../builds/build-${'a'.repeat(64)}.yml`],
    ['nothing', undefined],
  ])('refuses %s as the build buildspec', (_, value) => {
    expect(() =>
      readEnv(envShapes.jobSpecs, {
        ...(value === undefined ? {} : { BUILD_BUILDSPEC_LOCATION: value }),
        DEPLOY_BUILDSPEC_LOCATION: deploy,
        JOB_SPECS_BUCKET: bucket,
      }),
    ).toThrow(/BUILD_BUILDSPEC_LOCATION/);
  });

  it('refuses a location in another bucket than the stack’s JobSpecs bucket', () => {
    const elsewhere = `arn:aws:s3:::someone-elses-bucket/job-specs/deploy-${'b'.repeat(64)}.yml`;
    const env = {
      JOB_SPECS_BUCKET: bucket,
      BUILD_BUILDSPEC_LOCATION: build,
      DEPLOY_BUILDSPEC_LOCATION: elsewhere,
    };
    expect(() => publishedBuildspecs(readEnv(envShapes.jobSpecs, env))).toThrow(
      /deploy buildspec .* is not in the JobSpecs bucket crossdeploy-jobspecsbucket-1abc/,
    );
    expect(
      publishedBuildspecs(readEnv(envShapes.jobSpecs, { ...env, DEPLOY_BUILDSPEC_LOCATION: deploy })),
    ).toEqual({ build, deploy });
  });
});
