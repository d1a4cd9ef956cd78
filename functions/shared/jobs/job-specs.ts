import { createHash } from 'node:crypto';
import type { JobKind } from '../types.ts';

/**
 * Where the job buildspecs live in AWS. The deploy buildspec carries the template policy check and is far over
 * the 25,600 characters CodeBuild accepts inline, so the stack publishes both to its JobSpecs bucket when it is
 * deployed (functions/publish-job-specs) and StartBuild names them by S3 ARN. A key holds the SHA-256 of its
 * text: a new buildspec is a new object, and a build started before an update keeps reading its own.
 */

export const JOB_SPECS_PREFIX = 'job-specs/';

export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The same digest as S3's `ChecksumSHA256` (base64), so S3 refuses an upload that arrives altered. */
export const sha256Base64 = (text: string): string =>
  createHash('sha256').update(text, 'utf8').digest('base64');

export const jobSpecKeyOf = (job: JobKind, sha256: string): string =>
  `${JOB_SPECS_PREFIX}${job}-${sha256}.yml`;

export const jobSpecKey = (job: JobKind, text: string): string => jobSpecKeyOf(job, sha256Hex(text));

export const s3ObjectArn = (partition: string, bucket: string, key: string): string =>
  `arn:${partition}:s3:::${bucket}/${key}`;

const LOCATION =
  /^arn:aws(?:-cn|-us-gov)?:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/job-specs\/(build|deploy)-[0-9a-f]{64}\.yml$/;

/** Which job a published buildspec location is for, or undefined when it is not one. */
export function jobOfSpecLocation(value: string): JobKind | undefined {
  return LOCATION.exec(value)?.[2] as JobKind | undefined;
}

/** The bucket of a published buildspec location, or undefined when it is not one. */
export function bucketOfSpecLocation(value: string): string | undefined {
  return LOCATION.exec(value)?.[1];
}
