import { join, resolve } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionBundles } from '../../scripts/build.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

// What a cold start loads is what the bundle holds: these pin each function to the SDK clients its paths
// call, and keep whole libraries out of functions that use a sliver of them. Bytes, never time.
const root = resolve(import.meta.dirname, '../..');
const bundles = functionBundles(loadTemplate(join(root, 'template.yaml')), root);

/** The @aws-sdk/client-* packages each function calls (through functions/shared/aws/runtime.ts or its handler). */
const CLIENTS: Record<string, string[]> = {
  ApiFunction: ['cloudwatch-logs', 'dynamodb', 'iam', 'sfn'],
  ValidateRequestFunction: ['dynamodb'],
  StartJobFunction: ['codebuild', 'dynamodb'],
  PublishJobSpecsFunction: ['s3'],
  JobEventsFunction: ['codebuild', 'dynamodb', 'sfn'],
  AcquireLockFunction: ['dynamodb', 'sfn'],
  AssumeTargetRoleFunction: ['cloudformation', 'dynamodb', 'sts'],
  ApprovalFunction: ['cloudformation', 'dynamodb', 'eventbridge', 'sts'],
  RecordResultFunction: ['cloudformation', 'codebuild', 'dynamodb', 'sfn', 'sts'],
  ReleaseLockFunction: ['dynamodb', 'sfn'],
  ReconcileFunction: ['cloudformation', 'codebuild', 'dynamodb', 'sfn', 'sts'],
  DoctorFunction: ['cloudformation', 'dynamodb', 'iam', 's3', 'sts'],
  SlackFunction: ['codebuild', 'dynamodb', 'secrets-manager', 'sfn'],
};

/** Ceilings a little above today's bundles: a new dependency that doubles a function's load shows up here. */
const MAX_BYTES: Record<string, number> = {
  JobEventsFunction: 310 * 1024,
  ReconcileFunction: 400 * 1024,
  ReleaseLockFunction: 270 * 1024,
};

/**
 * SDK code reached only through an `import()` that Lambda never takes: the event-stream codec (loaded by the
 * protocol for an operation with an event stream) and the credential chain's endpoint providers (after fromEnv,
 * which always succeeds in Lambda). Left in, esbuild also wraps every module they share with the rest of the
 * SDK in a lazy initialiser, so they cost far more than their own bytes at each cold start.
 */
const NEVER_RUN_IN_LAMBDA = {
  eventStreams: /node_modules\/@smithy\/core\/dist-es\/submodules\/event-streams\//,
  endpointCredentials:
    /node_modules\/(@smithy\/credential-provider-imds|@aws-sdk\/credential-provider-http)\//,
};
/** The S3 and CloudWatch Logs clients import the event-stream codec statically, so those bundles carry it. */
const CARRIES_EVENT_STREAMS = new Set(['ApiFunction', 'PublishJobSpecsFunction', 'DoctorFunction']);
/** None: every function runs in Lambda, where the environment always holds the credentials. */
const CARRIES_ENDPOINT_CREDENTIALS = new Set<string>();

const metafiles = new Map<string, Metafile>();
/** Files that put bytes into the bundle (the metafile's inputs also list what tree-shaking dropped). */
const shipped = (metafile: Metafile): string[] =>
  Object.entries(metafile.outputs)
    .filter(([file]) => !file.endsWith('.map'))
    .flatMap(([, output]) => Object.entries(output.inputs))
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path);
const packagesOf = (metafile: Metafile): Set<string> =>
  new Set(
    shipped(metafile).flatMap((path) => {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
      return match ? [match[1] as string] : [];
    }),
  );
const outputBytes = (metafile: Metafile): number =>
  Object.entries(metafile.outputs)
    .filter(([file]) => !file.endsWith('.map'))
    .reduce((sum, [, output]) => sum + output.bytes, 0);

describe('what each Lambda bundle holds', () => {
  beforeAll(async () => {
    for (const bundle of bundles) {
      const { metafile } = await build({ ...bundle.options, write: false, metafile: true, sourcemap: false });
      metafiles.set(bundle.logicalId, metafile);
    }
  }, 120_000);

  it('names every function of the template', () => {
    expect(Object.keys(CLIENTS).sort()).toEqual(bundles.map((bundle) => bundle.logicalId).sort());
  });

  it.each(bundles.map((bundle) => [bundle.logicalId] as const))(
    '%s bundles only the SDK clients it calls',
    (logicalId) => {
      const clients = [...packagesOf(metafiles.get(logicalId) as Metafile)]
        .filter((name) => name.startsWith('@aws-sdk/client-'))
        .map((name) => name.slice('@aws-sdk/client-'.length))
        .sort();
      expect(clients).toEqual(CLIENTS[logicalId]);
    },
  );

  it.each(bundles.map((bundle) => [bundle.logicalId] as const))(
    "%s does not carry zod's classic build (zod/mini is a fraction of it)",
    (logicalId) => {
      const inputs = shipped(metafiles.get(logicalId) as Metafile);
      expect(inputs.filter((path) => /node_modules\/zod\/v4\/classic\//.test(path))).toEqual([]);
    },
  );

  it.each(bundles.map((bundle) => [bundle.logicalId] as const))(
    '%s ships no SDK code that only runs outside Lambda or for event streams',
    (logicalId) => {
      const inputs = shipped(metafiles.get(logicalId) as Metafile);
      const eventStreams = inputs.filter((path) => NEVER_RUN_IN_LAMBDA.eventStreams.test(path));
      const credentials = inputs.filter((path) => NEVER_RUN_IN_LAMBDA.endpointCredentials.test(path));
      expect(eventStreams.length > 0).toBe(CARRIES_EVENT_STREAMS.has(logicalId));
      expect(credentials.length > 0).toBe(CARRIES_ENDPOINT_CREDENTIALS.has(logicalId));
    },
  );

  it('DoctorFunction carries no template policy engine and no YAML parser: only the CLI checks a built template', () => {
    const inputs = shipped(metafiles.get('DoctorFunction') as Metafile);
    expect(inputs.filter((path) => /shared\/template-policy\//.test(path))).toEqual([]);
    expect(packagesOf(metafiles.get('DoctorFunction') as Metafile).has('yaml')).toBe(false);
  });

  it.each(Object.entries(MAX_BYTES))('%s stays under %i bytes', (logicalId, ceiling) => {
    expect(outputBytes(metafiles.get(logicalId) as Metafile)).toBeLessThanOrEqual(ceiling);
  });
});
