import type { CloudFormationCustomResourceEvent, CloudFormationCustomResourceResponse } from 'aws-lambda';
import { BUILDSPECS } from '#shared/buildspecs.ts';
import { JOB_SPECS_PREFIX, jobSpecKey, s3ObjectArn, sha256Base64, sha256Hex } from '#shared/job-specs.ts';
import { logger } from '#shared/logger.ts';
import type { JobKind } from '#shared/types.ts';

/**
 * The JobSpecs custom resource: publishes the buildspecs this bundle carries to the stack's JobSpecs bucket
 * and answers with their S3 ARNs, which StartJob sends as buildspecOverride. CloudFormation waits up to an
 * hour for an answer that never comes, so every path answers, failures included.
 */

export type JobSpecsEvent = CloudFormationCustomResourceEvent;
export type JobSpecsResponse = CloudFormationCustomResourceResponse<{
  BuildSpecArn: string;
  DeploySpecArn: string;
}>;

export interface JobSpecObjects {
  /** Writes one object; S3 checks the body against `sha256Base64` and refuses it when they differ. */
  put(input: { bucket: string; key: string; body: string; sha256Base64: string }): Promise<void>;
}

const DIGEST_PROPERTY: Record<JobKind, string> = { build: 'BuildSpecSha256', deploy: 'DeploySpecSha256' };
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** CloudFormation refuses a response body over 4,096 bytes; the reason is the only part that can grow. */
const MAX_REASON = 1_000;

export class JobSpecsRequestError extends Error {
  override readonly name = 'JobSpecsRequestError';
}

/** What to publish, or why the request cannot be served (a template that disagrees with this bundle). */
function plan(properties: Record<string, unknown>, specs: Readonly<Record<JobKind, string>>) {
  const bucket = properties.Bucket;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) {
    throw new JobSpecsRequestError('the Bucket property must be the JobSpecs bucket name');
  }
  return (Object.keys(DIGEST_PROPERTY) as JobKind[]).map((job) => {
    const text = specs[job];
    const wanted = properties[DIGEST_PROPERTY[job]];
    const actual = sha256Hex(text);
    // The template's digest comes from buildspecs/*.yml, this bundle's text from the same files at build time:
    // a difference means template.yaml and the built functions are from different commits.
    if (wanted !== actual) {
      throw new JobSpecsRequestError(
        `${DIGEST_PROPERTY[job]} is ${JSON.stringify(wanted)} but this function carries the ${job} buildspec ` +
          `${actual}: run \`npm run registry:derive\` and build again from one commit`,
      );
    }
    return { job, bucket, key: jobSpecKey(job, text), text };
  });
}

export async function handleJobSpecsEvent(
  event: JobSpecsEvent,
  deps: { objects: JobSpecObjects; specs?: Readonly<Record<JobKind, string>> },
): Promise<JobSpecsResponse> {
  const partition = event.StackId.split(':')[1] || 'aws';
  // One id for the life of the stack: an update then never asks CloudFormation to delete an "old" resource.
  const physicalId =
    'PhysicalResourceId' in event
      ? event.PhysicalResourceId
      : `${String(event.ResourceProperties.Bucket ?? 'job-specs')}/${JOB_SPECS_PREFIX.slice(0, -1)}`;
  const base = {
    PhysicalResourceId: physicalId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  };
  // The objects stay: a build started before the deletion may still fetch its buildspec, and the bucket is
  // retained with the stack's other history.
  if (event.RequestType === 'Delete') return { Status: 'SUCCESS', ...base };
  try {
    const objects = plan(event.ResourceProperties, deps.specs ?? BUILDSPECS);
    for (const { bucket, key, text } of objects) {
      await deps.objects.put({ bucket, key, body: text, sha256Base64: sha256Base64(text) });
    }
    const arn = (job: JobKind) => {
      const found = objects.find((o) => o.job === job);
      if (!found) throw new JobSpecsRequestError(`no ${job} buildspec`);
      return s3ObjectArn(partition, found.bucket, found.key);
    };
    logger.info('published the job buildspecs', { keys: objects.map((o) => o.key) });
    return { Status: 'SUCCESS', ...base, Data: { BuildSpecArn: arn('build'), DeploySpecArn: arn('deploy') } };
  } catch (error) {
    logger.error('could not publish the job buildspecs', { error });
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { Status: 'FAILED', ...base, Reason: message.slice(0, MAX_REASON) };
  }
}
