import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sendCustomResourceResponse } from '#shared/aws/custom-resource.ts';
import { S3ObjectWriter } from '#shared/aws/s3.ts';
import { BUILDSPECS } from '#shared/jobs/buildspecs.ts';
import { jobOfSpecLocation, sha256Base64, sha256Hex } from '#shared/jobs/job-specs.ts';
import { handleJobSpecsEvent } from '../../functions/publish-job-specs/core.ts';
import { createHandler } from '../../functions/publish-job-specs/handler.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

/**
 * The JobSpecs custom resource, end to end but for S3: a real CloudFormation request shape, the real handler,
 * S3 behind aws-sdk-client-mock, and the answer PUT to a local HTTP server standing in for CloudFormation's
 * pre-signed response URL.
 */

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const { BuildSpecSha256, DeploySpecSha256 } = (template.Resources.JobSpecs?.Properties ?? {}) as Record<
  string,
  string
>;
const digests = { BuildSpecSha256, DeploySpecSha256 };
const s3 = mockClient(S3Client);

interface Answer {
  method: string;
  url: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}
let server: Server;
let answers: Answer[] = [];
/** How the stand-in answers the next PUTs: a status per attempt, 200 once the list is used up. */
let statuses: number[] = [];

const read = (request: IncomingMessage) =>
  new Promise<string>((done) => {
    let text = '';
    request.on('data', (chunk) => {
      text += chunk;
    });
    request.on('end', () => done(text));
  });

beforeAll(async () => {
  server = createServer(async (request, response) => {
    const body = await read(request);
    answers.push({
      method: request.method ?? '',
      url: request.url ?? '',
      contentType: request.headers['content-type'],
      body: JSON.parse(body),
    });
    response.statusCode = statuses.shift() ?? 200;
    response.end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

beforeEach(() => {
  s3.reset();
  answers = [];
  statuses = [];
});

function event(overrides: Record<string, unknown> = {}): CloudFormationCustomResourceEvent {
  const fixture = JSON.parse(
    readFileSync(join(root, 'test/events/cloudformation/custom-resource-create.json'), 'utf8'),
  );
  const { port } = server.address() as AddressInfo;
  return {
    ...fixture,
    ResponseURL: `http://127.0.0.1:${port}/response?X-Amz-Signature=abc`,
    ResourceProperties: { ...fixture.ResourceProperties, ...digests },
    ...overrides,
  };
}

const handler = createHandler(() => ({
  objects: new S3ObjectWriter(
    new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }),
  ),
  respond: (url, response) => sendCustomResourceResponse(url, response, { delayMs: 1 }),
}));

describe('the JobSpecs custom resource', () => {
  it('publishes both buildspecs under their digests, checked by S3, and answers with their ARNs', async () => {
    s3.on(PutObjectCommand).resolves({});
    await handler(event());
    const puts = s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input);
    expect(puts).toEqual([
      expect.objectContaining({
        Bucket: 'crossdeploy-jobspecsbucket-1abc2def3ghi',
        Key: `job-specs/build-${sha256Hex(BUILDSPECS.build)}.yml`,
        Body: BUILDSPECS.build,
        ChecksumSHA256: sha256Base64(BUILDSPECS.build),
      }),
      expect.objectContaining({
        Key: `job-specs/deploy-${sha256Hex(BUILDSPECS.deploy)}.yml`,
        Body: BUILDSPECS.deploy,
        ChecksumSHA256: sha256Base64(BUILDSPECS.deploy),
      }),
    ]);
    expect(answers).toHaveLength(1);
    const [answer] = answers;
    expect(answer?.method).toBe('PUT');
    expect(answer?.url).toBe('/response?X-Amz-Signature=abc');
    // The URL is signed without a content type: sending one would make S3 refuse the answer.
    expect(answer?.contentType ?? '').toBe('');
    expect(answer?.body).toEqual({
      Status: 'SUCCESS',
      PhysicalResourceId: 'crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs',
      StackId: event().StackId,
      RequestId: event().RequestId,
      LogicalResourceId: 'JobSpecs',
      Data: {
        BuildSpecArn: `arn:aws:s3:::crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs/build-${sha256Hex(BUILDSPECS.build)}.yml`,
        DeploySpecArn: `arn:aws:s3:::crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs/deploy-${sha256Hex(BUILDSPECS.deploy)}.yml`,
      },
    });
    // What StartJob's configuration accepts (functions/shared/config.ts).
    const data = answer?.body.Data as { BuildSpecArn: string; DeploySpecArn: string };
    expect(jobOfSpecLocation(data.BuildSpecArn)).toBe('build');
    expect(jobOfSpecLocation(data.DeploySpecArn)).toBe('deploy');
  });

  it('refuses, and publishes nothing, when template.yaml names another buildspec than the function carries', async () => {
    s3.on(PutObjectCommand).resolves({});
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('Not Found'), { name: 'NotFound' }));
    const stale = event();
    stale.ResourceProperties.DeploySpecSha256 = 'f'.repeat(64);
    await handler(stale);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(answers.map((a) => a.body.Status)).toEqual(['FAILED']);
    expect(String(answers[0]?.body.Reason)).toMatch(/DeploySpecSha256 is .*`npm run registry:derive`/);
  });

  it('answers a rollback (an earlier digest, already published) with that object, publishing nothing for it', async () => {
    s3.on(PutObjectCommand).resolves({});
    const earlier = 'e'.repeat(64);
    s3.on(HeadObjectCommand, { Key: `job-specs/deploy-${earlier}.yml` }).resolves({});
    const rollback = event({
      RequestType: 'Update',
      PhysicalResourceId: 'crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs',
      OldResourceProperties: {},
    });
    rollback.ResourceProperties.DeploySpecSha256 = earlier;
    await handler(rollback);
    expect(s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input.Key)).toEqual([
      `job-specs/build-${sha256Hex(BUILDSPECS.build)}.yml`,
    ]);
    expect(answers[0]?.body).toMatchObject({
      Status: 'SUCCESS',
      Data: {
        DeploySpecArn: `arn:aws:s3:::crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs/deploy-${earlier}.yml`,
      },
    });
  });

  it('keeps a hostile reason inside CloudFormation’s 4,096-byte answer', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('Not Found'), { name: 'NotFound' }));
    const hostile = event();
    hostile.ResourceProperties.BuildSpecSha256 = '\u20ac\u{1F600}'.repeat(2_000);
    await handler(hostile);
    const [answer] = answers;
    expect(answer?.body.Status).toBe('FAILED');
    expect(Buffer.byteLength(JSON.stringify(answer?.body), 'utf8')).toBeLessThan(4_096);
    expect(Buffer.byteLength(String(answer?.body.Reason), 'utf8')).toBeLessThanOrEqual(1_000);
    expect(String(answer?.body.Reason)).not.toContain('\uFFFD');
  });

  it.each([
    ['a bucket with a path', 'crossdeploy-jobspecs/../builds'],
    ['no bucket', undefined],
  ])('refuses %s', async (_, bucket) => {
    const hostile = event();
    hostile.ResourceProperties.Bucket = bucket;
    await handler(hostile);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(answers.map((a) => a.body.Status)).toEqual(['FAILED']);
  });

  it('answers FAILED with S3’s reason when an upload fails, instead of leaving the stack waiting', async () => {
    s3.on(PutObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    await handler(event());
    expect(answers).toHaveLength(1);
    expect(answers[0]?.body).toMatchObject({ Status: 'FAILED', Reason: 'AccessDenied: Access Denied' });
  });

  it('answers a Delete without touching the objects (a build in flight may still read its buildspec)', async () => {
    await handler(
      event({
        RequestType: 'Delete',
        PhysicalResourceId: 'crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs',
      }),
    );
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(answers.map((a) => a.body)).toEqual([
      expect.objectContaining({
        Status: 'SUCCESS',
        PhysicalResourceId: 'crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs',
      }),
    ]);
  });

  it('keeps its physical id on Update, so CloudFormation never deletes the "old" resource', async () => {
    s3.on(PutObjectCommand).resolves({});
    const response = await handleJobSpecsEvent(
      event({
        RequestType: 'Update',
        PhysicalResourceId: 'crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs',
        OldResourceProperties: {},
      }),
      { objects: { put: async () => {}, exists: async () => false } },
    );
    expect(response.PhysicalResourceId).toBe('crossdeploy-jobspecsbucket-1abc2def3ghi/job-specs');
    expect(response.Status).toBe('SUCCESS');
  });

  it('tries the answer again when the response URL fails, then succeeds', async () => {
    s3.on(PutObjectCommand).resolves({});
    statuses = [503, 500];
    await handler(event());
    expect(answers.map((a) => a.body.Status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
  });

  it('throws (so Lambda logs and retries the invocation) when no answer gets through', async () => {
    s3.on(PutObjectCommand).resolves({});
    statuses = [500, 500, 500, 500];
    await expect(handler(event())).rejects.toThrow(/could not answer/);
    expect(answers).toHaveLength(4);
  });
});
