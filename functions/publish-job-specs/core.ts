import type { CloudFormationCustomResourceEvent, CloudFormationCustomResourceResponse } from 'aws-lambda';
import { BUILDSPECS } from '#shared/jobs/buildspecs.ts';
import {
  JOB_SPECS_PREFIX,
  jobSpecKey,
  jobSpecKeyOf,
  s3ObjectArn,
  sha256Base64,
  sha256Hex,
} from '#shared/jobs/job-specs.ts';
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
  /** Whether the object exists. */
  exists(input: { bucket: string; key: string }): Promise<boolean>;
}

const DIGEST_PROPERTY: Record<JobKind, string> = { build: 'BuildSpecSha256', deploy: 'DeploySpecSha256' };
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** CloudFormation refuses a response body over 4,096 bytes; the reason is the only part that can grow. */
const MAX_REASON_BYTES = 1_000;

/** At most `max` bytes of UTF-8, cut at a character boundary. */
function truncateBytes(text: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const c of text) {
    bytes += Buffer.byteLength(c, 'utf8');
    if (bytes > max) break;
    out += c;
  }
  return out;
}

export class JobSpecsRequestError extends Error {
  override readonly name = 'JobSpecsRequestError';
}

const DIGEST = /^[0-9a-f]{64}$/;

type Planned = { job: JobKind; bucket: string; key: string } & (
  | { publish: string }
  | { alreadyPublished: true }
);

/**
 * What to publish, or why the request cannot be served. The template's digests come from buildspecs/*.yml,
 * this bundle's texts from the same files at build time: they differ when template.yaml and the built
 * function are from different commits, or during an update's rollback, when CloudFormation asks for the
 * previous buildspec while the function already runs the new code. Keys are content-addressed and never
 * deleted, so an object that already holds the requested digest is the right answer to a rollback.
 */
async function plan(
  properties: Record<string, unknown>,
  specs: Readonly<Record<JobKind, string>>,
  objects: JobSpecObjects,
): Promise<Planned[]> {
  const bucket = properties.Bucket;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) {
    throw new JobSpecsRequestError('the Bucket property must be the JobSpecs bucket name');
  }
  const planned: Planned[] = [];
  for (const job of Object.keys(DIGEST_PROPERTY) as JobKind[]) {
    const text = specs[job];
    const wanted = properties[DIGEST_PROPERTY[job]];
    const actual = sha256Hex(text);
    if (wanted === actual) {
      planned.push({ job, bucket, key: jobSpecKey(job, text), publish: text });
      continue;
    }
    const earlier = typeof wanted === 'string' && DIGEST.test(wanted) ? jobSpecKeyOf(job, wanted) : undefined;
    if (earlier && (await objects.exists({ bucket, key: earlier }))) {
      planned.push({ job, bucket, key: earlier, alreadyPublished: true });
      continue;
    }
    throw new JobSpecsRequestError(
      `${DIGEST_PROPERTY[job]} is ${JSON.stringify(wanted)} but this function carries the ${job} buildspec ` +
        `${actual} and no buildspec with that digest was published before: run \`npm run registry:derive\` ` +
        'and build again from one commit',
    );
  }
  return planned;
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
    const objects = await plan(event.ResourceProperties, deps.specs ?? BUILDSPECS, deps.objects);
    for (const object of objects) {
      if (!('publish' in object)) continue;
      const { bucket, key, publish } = object;
      await deps.objects.put({ bucket, key, body: publish, sha256Base64: sha256Base64(publish) });
    }
    const arn = (job: JobKind) => {
      const found = objects.find((o) => o.job === job);
      if (!found) throw new JobSpecsRequestError(`no ${job} buildspec`);
      return s3ObjectArn(partition, found.bucket, found.key);
    };
    logger.info('published the job buildspecs', {
      published: objects.filter((o) => 'publish' in o).map((o) => o.key),
      alreadyPublished: objects.filter((o) => 'alreadyPublished' in o).map((o) => o.key),
    });
    return { Status: 'SUCCESS', ...base, Data: { BuildSpecArn: arn('build'), DeploySpecArn: arn('deploy') } };
  } catch (error) {
    logger.error('could not publish the job buildspecs', { error });
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { Status: 'FAILED', ...base, Reason: truncateBytes(message, MAX_REASON_BYTES) };
  }
}
