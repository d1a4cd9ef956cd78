import { BUILDSPECS } from '#shared/jobs/buildspecs.ts';
import { jobSpecKey, s3ObjectArn } from '#shared/jobs/job-specs.ts';

/** Where a stack named `crossdeploy` would have published this commit's buildspecs (the JobSpecs resource). */
export const PUBLISHED_BUILDSPECS = {
  build: s3ObjectArn('aws', 'crossdeploy-jobspecsbucket-0example', jobSpecKey('build', BUILDSPECS.build)),
  deploy: s3ObjectArn('aws', 'crossdeploy-jobspecsbucket-0example', jobSpecKey('deploy', BUILDSPECS.deploy)),
};
