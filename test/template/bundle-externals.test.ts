import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NormalizedSchema } from '@smithy/core/schema';
import { build, type Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionBundles } from '../../scripts/build.ts';
import { loadTemplate } from '../../scripts/cfn-yaml.ts';

// The externals in template.yaml beyond the credential files: SDK code that a function's bundle leaves out
// because Lambda never runs it. Each is imported by the SDK only through import(), so the bundle loads without
// it (test/template/build.test.ts); these tests check that the import() is never taken.
const root = resolve(import.meta.dirname, '../..');
const bundles = functionBundles(loadTemplate(join(root, 'template.yaml')), root);
const EVENT_STREAMS = '@smithy/core/event-streams';
const ENDPOINT_CREDENTIALS = ['@aws-sdk/credential-provider-http', '@smithy/credential-provider-imds'];

/** The SDK commands a bundle can send: the command classes esbuild kept, as [client package, class name]. */
function commandsIn(metafile: Metafile): [string, string][] {
  const commands = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, input] of Object.entries(output.inputs)) {
      const match = /node_modules\/(@aws-sdk\/client-[^/]+)\/dist-es\/commands\/(\w+Command)\.js$/.exec(path);
      if (match && input.bytesInOutput > 0) commands.add(`${match[1]} ${match[2]}`);
    }
  }
  return [...commands].sort().map((entry) => entry.split(' ') as [string, string]);
}

/** The member that is an event stream in the operation's input or output (the SDK's own test, command.js). */
async function eventStreamOf(clientPackage: string, commandName: string): Promise<string> {
  const client = (await import(clientPackage)) as Record<string, new (input: object) => { schema: unknown }>;
  const Command = client[commandName];
  if (!Command) throw new Error(`${clientPackage} has no ${commandName}`);
  const [, , , , input, output] = new Command({}).schema as [
    number,
    string,
    string,
    object,
    unknown,
    unknown,
  ];
  const ns = (schema: unknown) => NormalizedSchema.of(schema as Parameters<typeof NormalizedSchema.of>[0]);
  return ns(input).getEventStreamMember() || ns(output).getEventStreamMember();
}

describe('the event-stream codec left out of a bundle', () => {
  const leftOut = bundles.filter((bundle) => bundle.options.external?.includes(EVENT_STREAMS));
  const metafiles = new Map<string, Metafile>();
  beforeAll(async () => {
    for (const bundle of leftOut) {
      const { metafile } = await build({ ...bundle.options, write: false, metafile: true, sourcemap: false });
      metafiles.set(bundle.logicalId, metafile);
    }
  }, 120_000);

  it('is found where an operation has an event stream (so the check below can fail)', async () => {
    expect(await eventStreamOf('@aws-sdk/client-cloudwatch-logs', 'StartLiveTailCommand')).toBe(
      'responseStream',
    );
    expect(await eventStreamOf('@aws-sdk/client-s3', 'SelectObjectContentCommand')).toBe('Payload');
    expect(await eventStreamOf('@aws-sdk/client-dynamodb', 'GetItemCommand')).toBe('');
  });

  it('is left out of most bundles', () => {
    expect(leftOut.length).toBeGreaterThan(bundles.length / 2);
  });

  it.each(leftOut.map((bundle) => [bundle.logicalId] as const))(
    '%s sends no command with an event stream',
    async (logicalId) => {
      const commands = commandsIn(metafiles.get(logicalId) as Metafile);
      expect(commands.length).toBeGreaterThan(0);
      const streaming: string[] = [];
      for (const [clientPackage, commandName] of commands) {
        if (await eventStreamOf(clientPackage, commandName)) streaming.push(commandName);
      }
      expect(streaming).toEqual([]);
    },
  );
});

describe("the credential chain's endpoint providers left out of a bundle", () => {
  const bundle = bundles.find((b) =>
    ENDPOINT_CREDENTIALS.every((name) => b.options.external?.includes(name)),
  );
  const dir = mkdtempSync(join(tmpdir(), 'crossdeploy-credentials-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A client's credentials as the function's bundle resolves them, run outside the project's node_modules. */
  async function resolveCredentials(env: NodeJS.ProcessEnv): Promise<string> {
    if (!bundle) throw new Error('no function leaves the endpoint providers out');
    const file = join(dir, 'credentials.cjs');
    const result = await build({
      ...bundle.options,
      entryPoints: undefined,
      stdin: {
        contents: `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
          new DynamoDBClient({}).config.credentials().then(
            (c) => console.log('resolved ' + c.accessKeyId),
            (e) => console.log('failed ' + e.message.split('\\n')[0]));`,
        resolveDir: bundle.options.absWorkingDir as string,
        loader: 'ts',
      },
      write: false,
      sourcemap: false,
      outdir: undefined,
      outfile: file,
    });
    writeFileSync(file, result.outputFiles[0]?.text ?? '');
    return execFileSync(process.execPath, [file], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true', ...env },
    }).trim();
  }

  it('is never reached with the credentials Lambda puts in the environment', async () => {
    expect(
      await resolveCredentials({
        AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        AWS_SESSION_TOKEN: 'token',
      }),
    ).toBe('resolved ASIAEXAMPLE');
  });

  it('stops at a left-out provider in an environment without credentials (so the check above can fail)', async () => {
    expect(await resolveCredentials({})).toMatch(
      /^failed Cannot find (module|package) '@(aws-sdk|smithy)\/credential-provider-/,
    );
  });
});

describe('lazy module initialisers', () => {
  // An import() of a module inside the bundle makes esbuild wrap that module and everything it imports in a
  // lazy initialiser: V8 then pre-parses each wrapped body at load and parses it again when it runs, instead of
  // running it once as top-level code. With the externals above, no SDK import() is left in these bundles; the
  // S3 and CloudWatch Logs clients import the event-stream codec statically, so theirs keep it.
  // SlackFunction's externals are the Slack work's (bundle-contents.test.ts).
  const WRAPPED = new Set(['ApiFunction', 'PublishJobSpecsFunction', 'DoctorFunction']);

  it.each(bundles.map((bundle) => [bundle.logicalId, bundle] as const))(
    '%s: wrapped in lazy initialisers only where the SDK forces it',
    async (logicalId, bundle) => {
      // Unminified, esbuild names each wrapper init_<module>.
      const result = await build({ ...bundle.options, write: false, sourcemap: false, minify: false });
      const code = result.outputFiles.find((file) => file.path.endsWith('.cjs'))?.text ?? '';
      const wrappers = code.match(/^var init_\w+ = __esm\(/gm)?.length ?? 0;
      expect(wrappers > 0).toBe(WRAPPED.has(logicalId));
    },
    30_000,
  );
});
