import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll } from 'vitest';
import { expectValidResponse } from '#test/support/openapi.ts';

/**
 * Support for the local-mode end-to-end suite: a temporary git repository holding a tiny SAM application,
 * a registry pointing at it, stand-in `sam` and `aws` executables that record what they were asked to do,
 * a fake STS + CloudFormation endpoint for the real StsTargetAccess (the SDK reaches it through
 * AWS_ENDPOINT_URL_STS / _CLOUDFORMATION), and the real server process, `node local/main.ts`.
 */

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'REJECTED', 'CANCELLED', 'SUPERSEDED', 'SKIPPED']);

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

const TEMPLATE = `AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
# The deploy job's template policy refuses function roles without the target's boundary.
Globals:
  Function:
    PermissionsBoundary: !Sub arn:\${AWS::Partition}:iam::\${AWS::AccountId}:policy/crossdeploy/crossdeploy-boundary-\${AWS::Region}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      PackageType: Zip
      CodeUri: src/
      Handler: app.handler
      Runtime: nodejs24.x
`;

const appSource = (version: string) =>
  `export const handler = async () => ({ statusCode: 200, body: '${version}' });\n`;

export interface Fixture {
  root: string;
  repo: string;
  /** The first and second commit of the application. */
  commits: { first: string; second: string };
  registryPath: string;
  bin: string;
  /** Where the stand-ins record their calls. */
  records: string;
  sts: FakeSts;
  env: NodeJS.ProcessEnv;
}

/**
 * The test world. The repository has two commits and an uncommitted change in its working copy, so a build
 * that used the working copy (or the wrong commit) shows up in what `sam deploy` was given.
 */
export async function createFixture(): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-e2e-'));
  const repo = join(root, 'repo');
  mkdirSync(join(repo, 'app', 'src'), { recursive: true });
  git(root, 'init', '-q', '-b', 'main', repo);
  writeFileSync(join(repo, 'app', 'template.yaml'), TEMPLATE);
  writeFileSync(join(repo, 'app', 'src', 'app.mjs'), appSource('version one'));
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'first');
  const first = git(repo, 'rev-parse', 'HEAD');
  writeFileSync(join(repo, 'app', 'src', 'app.mjs'), appSource('version two'));
  git(repo, 'commit', '-q', '-am', 'second');
  const second = git(repo, 'rev-parse', 'HEAD');
  writeFileSync(join(repo, 'app', 'src', 'app.mjs'), appSource('version three, uncommitted'));

  const records = join(root, 'records');
  mkdirSync(records);
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeStandIns(bin, records);
  // The real interpreter, not a version manager's shim: faster, and independent of HOME.
  const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], {
    encoding: 'utf8',
  }).trim();
  symlinkSync(python, join(bin, 'python3'));

  const registryPath = join(root, 'registry.yaml');
  writeFileSync(registryPath, registryYaml(join(repo, 'app')));
  const sts = await startFakeSts();
  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    CROSSDEPLOY_REGISTRY: registryPath,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    // The user's credential chain as the server and the deploy job's helper see it: fake keys, fake STS.
    AWS_ACCESS_KEY_ID: 'e2e-fake-access-key-id',
    AWS_SECRET_ACCESS_KEY: 'e2e-secret',
    AWS_REGION: 'eu-west-1',
    AWS_CONFIG_FILE: join(root, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(root, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_STS: sts.url,
    AWS_ENDPOINT_URL_CLOUDFORMATION: sts.url,
  };
  return { root, repo, commits: { first, second }, registryPath, bin, records, sts, env };
}

function registryYaml(localPath: string): string {
  const environment = (name: string, account: string, extra: string, mode = 'reject') => `      ${name}:
        accountId: "${account}"
        region: eu-west-1
        deployRoleArn: arn:aws:iam::${account}:role/crossdeploy/crossdeploy-deploy
        executionRoleArn: arn:aws:iam::${account}:role/crossdeploy/crossdeploy-cfn-exec
        stackName: demo-${name}
        artifactsBucket: crossdeploy-artifacts-${account}-eu-west-1
        capabilities: [CAPABILITY_IAM]
        parameterOverrides:
          Stage: ${name}
        # The default here is reject: the concurrency and crash tests rely on ENVIRONMENT_BUSY.
        mode: ${mode}
${extra}`;
  const anyone = '        allowedRequesters:\n          local: ["*"]\n';
  return `applications:
  demo:
    source:
      type: GITHUB
      location: https://github.com/example-org/demo.git
      localPath: ${JSON.stringify(localPath)}
    templatePath: template.yaml
    defaultRef: main
    environments:
${environment('staging', '111111111111', `${anyone}        runner: local\n`)}
${environment('busy', '111111111111', `${anyone}        runner: local\n`)}
${environment('slow', '111111111111', `${anyone}        runner: local\n`)}
${environment('sim', '333333333333', `${anyone}        runner: simulate\n`)}
${environment('guarded', '444444444444', '        allowedRequesters:\n          local: ["release-manager-only"]\n        readers:\n          local: ["*"]\n        runner: local\n')}
${environment('sealed', '777777777777', '        allowedRequesters:\n          local: ["release-manager-only"]\n        runner: simulate\n')}
${environment('sim-prod', '666666666666', `${anyone}        runner: simulate\n        promoteFrom: [sim]\n        allowedRefs: []\n`)}
${environment('reviewed', '888888888888', `${anyone}        approvers:\n          local: ["*"]\n        approval: required\n        allowSelfApproval: true\n        runner: simulate\n`, 'queued')}
${environment('reviewed-strict', '999999999999', `${anyone}        approvers:\n          local: ["*"]\n        approval: required\n        runner: simulate\n`)}
${environment('reviewed-chat', '888888888889', `${anyone}        approvers:\n          slack:\n            - team: T1DC2JH3J\n              users: [U0APPROVER]\n        approval: required\n        runner: simulate\n`)}
`;
}

/**
 * `sam` and `aws` stand-ins for `runner: local` environments. `sam deploy` records its argv, start and end
 * (nanoseconds) and the function code it was handed; for stack demo-slow it sleeps while the flag file exists.
 */
function writeStandIns(bin: string, records: string) {
  const sam = `#!/usr/bin/env bash
set -euo pipefail
records=${JSON.stringify(records)}
case "$1" in
  build)
    build_dir=.aws-sam/build
    mkdir -p "$build_dir"
    tar --exclude=./.aws-sam -cf - . | tar -xf - -C "$build_dir"
    echo "stand-in sam build done"
    ;;
  deploy)
    template=""
    for arg in "$@"; do
      case "$arg" in --template-file=*) template="\${arg#*=}" ;; esac
    done
    printf '%s\\n' "$@" > "$records/argv-$DEPLOYMENT_ID"
    cp "$(dirname "$template")/src/app.mjs" "$records/app-$DEPLOYMENT_ID.mjs"
    echo "start $(date +%s%N) $STACK_NAME $DEPLOYMENT_ID" >> "$records/deploys.log"
    echo "stand-in sam deploy of $STACK_NAME"
    if [ "$STACK_NAME" = demo-slow ] && [ -f "$records/slow.flag" ]; then
      echo $$ > "$records/slow.pid"
      while [ -f "$records/slow.flag" ]; do sleep 0.2; done
    fi
    if [ "$STACK_NAME" = demo-busy ]; then sleep 0.2; fi
    echo "end $(date +%s%N) $STACK_NAME $DEPLOYMENT_ID" >> "$records/deploys.log"
    ;;
esac
`;
  const aws = `#!/usr/bin/env bash
set -euo pipefail
echo "$*" >> ${JSON.stringify(join(records, 'aws-calls.log'))}
case "$1 $2" in
  "sts get-caller-identity") echo "$TARGET_ACCOUNT_ID" ;;
esac
`;
  writeFileSync(join(bin, 'sam'), sam);
  writeFileSync(join(bin, 'aws'), aws);
  chmodSync(join(bin, 'sam'), 0o755);
  chmodSync(join(bin, 'aws'), 0o755);
}

// Fake STS and CloudFormation (query protocol) --------------------------------------------------------------

export interface FakeSts {
  url: string;
  assumed: { roleArn: string; sourceIdentity: string; sessionName: string }[];
  close(): Promise<void>;
}

async function startFakeSts(): Promise<FakeSts> {
  const sessions = new Map<string, { account: string; role: string; session: string }>();
  const assumed: FakeSts['assumed'] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const params = new URLSearchParams(body);
      const action = params.get('Action');
      const keyId = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const reply = (xml: string) => {
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(xml);
      };
      const meta = `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>`;
      if (action === 'AssumeRole') {
        const roleArn = params.get('RoleArn') ?? '';
        const [, account = '', role = ''] = /iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(roleArn) ?? [];
        const session = params.get('RoleSessionName') ?? '';
        assumed.push({ roleArn, sourceIdentity: params.get('SourceIdentity') ?? '', sessionName: session });
        const id = `ASIA${randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase()}`;
        sessions.set(id, { account, role, session });
        const expiration = new Date(Date.now() + 900_000).toISOString();
        return reply(
          `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${id}</AccessKeyId><SecretAccessKey>fake</SecretAccessKey><SessionToken>fake</SessionToken><Expiration>${expiration}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::${account}:assumed-role/${role}/${session}</Arn><AssumedRoleId>AROAFAKE:${session}</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>${meta}</AssumeRoleResponse>`,
        );
      }
      if (action === 'GetCallerIdentity') {
        const s = sessions.get(keyId) ?? { account: '999999999999', role: 'user', session: 'caller' };
        return reply(
          `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::${s.account}:assumed-role/${s.role}/${s.session}</Arn><UserId>AROAFAKE:${s.session}</UserId><Account>${s.account}</Account></GetCallerIdentityResult>${meta}</GetCallerIdentityResponse>`,
        );
      }
      if (action === 'DescribeStacks') {
        const name = params.get('StackName') ?? '';
        return reply(
          `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member><StackName>${name}</StackName><StackId>arn:aws:cloudformation:eu-west-1:111111111111:stack/${name}/x</StackId><StackStatus>UPDATE_COMPLETE</StackStatus><CreationTime>2026-01-01T00:00:00Z</CreationTime></member></Stacks></DescribeStacksResult>${meta}</DescribeStacksResponse>`,
        );
      }
      res.writeHead(400, { 'content-type': 'text/xml' });
      res.end(
        `<ErrorResponse><Error><Code>InvalidAction</Code><Message>${action}</Message></Error></ErrorResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    assumed,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// The server process ----------------------------------------------------------------------------------------

export interface ServerProcess {
  url: string;
  dataDir: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node local/main.ts` on a random port and waits for its banner. */
export async function startServer(fixture: Fixture, dataDir: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['local/main.ts'], {
    cwd: ROOT,
    env: { ...fixture.env, PORT: '0', CROSSDEPLOY_DATA_DIR: dataDir, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 30_000);
    const check = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the server exited during start-up:\n${output}`));
    });
  });
  const server: ServerProcess = {
    url,
    dataDir,
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return server;
}

export interface LocalServer {
  readonly fixture: Fixture;
  readonly server: ServerProcess;
  /** Another server of this file (same fixture), stopped with the first one after the file's tests. */
  track(server: ServerProcess): ServerProcess;
}

/**
 * One file's local server: a fresh fixture and `node local/main.ts` on it before the file's tests (with
 * `env` on top of the fixture's), and after them every tracked server killed, the fake STS closed and the
 * fixture removed. Read `fixture` and `server` inside hooks and tests: they exist once `beforeAll` ran.
 */
export function useLocalServer(options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): LocalServer {
  let fixture: Fixture | undefined;
  let server: ServerProcess | undefined;
  const extra: ServerProcess[] = [];
  beforeAll(async () => {
    fixture = await createFixture();
    server = await startServer(fixture, join(fixture.root, 'data'), options.env);
  }, options.timeoutMs ?? 60_000);
  afterAll(async () => {
    for (const s of [server, ...extra]) await s?.stop('SIGKILL');
    await fixture?.sts.close();
    // Leave no stand-in waiting on its flag.
    if (fixture) rmSync(fixture.root, { recursive: true, force: true });
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is read before useLocalServer's beforeAll started it`);
    return value;
  };
  return {
    get fixture() {
      return started(fixture, 'the fixture');
    },
    get server() {
      return started(server, 'the server');
    },
    track(s) {
      extra.push(s);
      return s;
    },
  };
}

// HTTP ------------------------------------------------------------------------------------------------------

export interface Reply {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
  result: APIGatewayProxyStructuredResultV2;
}

/** A request to the server; with `template`, the response is checked against openapi.yaml. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string>; template?: string } = {},
): Promise<Reply> {
  const headers = {
    ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...options.headers,
  };
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(options.raw !== undefined
      ? { body: options.raw }
      : options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : {}),
  });
  const text = await response.text();
  const result: APIGatewayProxyStructuredResultV2 = {
    statusCode: response.status,
    headers: Object.fromEntries(response.headers.entries()),
    body: text,
  };
  if (options.template) expectValidResponse(method, options.template, result);
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    result,
  };
}

export const deploy = (base: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call(base, 'POST', '/deployments', { body, headers, template: '/deployments' });

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 45_000,
) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function deployment(base: string, id: string) {
  return (await call(base, 'GET', `/deployments/${id}`, { template: '/deployments/{id}' })).body;
}

export async function waitForTerminal(base: string, id: string, ms?: number) {
  return waitFor(
    `deployment ${id} to end`,
    async () => {
      const d = await deployment(base, id);
      return TERMINAL.has(String(d.status)) ? d : undefined;
    },
    ms,
  );
}

export async function eventTypes(base: string, id: string): Promise<string[]> {
  const { body } = await call(base, 'GET', `/deployments/${id}/events`, {
    template: '/deployments/{id}/events',
  });
  return (body.items as { type: string }[]).map((e) => e.type);
}

export const readRecord = (fixture: Fixture, name: string) =>
  readFileSync(join(fixture.records, name), 'utf8');

const BIN = fileURLToPath(new URL('../../../bin/crossdeploy.mjs', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `crossdeploy <args>` (bin/crossdeploy.mjs, as `npx crossdeploy` runs it) with the node running the tests. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', ...env },
        timeout: 90_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
