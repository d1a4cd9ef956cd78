/**
 * Test-only: runs a buildspec's commands the way CodeBuild does (one bash process, phases in order, the
 * first failing command ends the build after its phase's `finally` commands) with stand-in `aws` and `sam` executables first on PATH. The
 * stand-ins log each call's argv (one JSON array per line) and the AWS_ and CROSSDEPLOY_ environment it
 * saw, and answer from a scenario. The production local runner lives in local/; this stays small.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { findTarget, parseRegistry, type Target } from '#shared/registry/registry.ts';
import type { Deployment } from '#shared/types.ts';

export const PHASES = ['install', 'pre_build', 'build', 'post_build'] as const;

export interface Buildspec {
  version: number;
  env?: { shell?: string; 'exported-variables'?: string[] };
  phases: Partial<
    Record<(typeof PHASES)[number], { commands: string[]; finally?: string[]; 'on-failure'?: string }>
  >;
}

export function parseBuildspec(text: string): Buildspec {
  return parseYaml(text) as Buildspec;
}

export function readBuildspec(job: 'build' | 'deploy'): string {
  return readFileSync(new URL(`../../buildspecs/${job}.yml`, import.meta.url), 'utf8');
}

/** What the stand-ins answer. Everything is optional; defaults describe a healthy target. */
export interface Scenario {
  /** Account `aws sts get-caller-identity` reports for the target profile. */
  account?: string;
  /** `aws sts assume-role` fails with this message (exit 254). */
  assumeRoleError?: string;
  /** VersionId `aws s3api put-object` returns; null for an unversioned bucket. */
  versionId?: string | null;
  /** Path of the zip `aws s3api get-object` returns. */
  artifact?: string;
  /** The only object version the bucket holds: get-object of any other fails with NoSuchVersion. */
  artifactVersionId?: string;
  /** Files the stand-in `sam build` writes into the build dir (path -> content). */
  samBuildFiles?: Record<string, string>;
  /** Modification time (epoch seconds) of the files `sam build` writes. */
  samBuildMtime?: number;
  /** Symbolic links `sam build` leaves in the build dir (path -> link target). */
  samBuildLinks?: Record<string, string>;
  /** `sam build` fails with this exit status after printing an error. */
  samBuildExit?: number;
  samDeployOutput?: string;
  samDeployExit?: number;
  /** The DescribeChangeSet response. */
  changeSet?: unknown;
}

export interface Call {
  argv: string[];
  /** The AWS_ and CROSSDEPLOY_ variables the call saw. */
  env: Record<string, string>;
  /** Its whole environment. */
  environ: Record<string, string>;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The buildspec's exported variables that were set when it ended. */
  exported: Record<string, string>;
  calls: Call[];
}

export interface Sandbox {
  root: string;
  bin: string;
  logs: string;
  /** The job's working directory (the checkout for a build, the workspace for a deploy). */
  cwd: string;
  setScenario(scenario: Scenario): void;
  calls(): Call[];
}

const STAND_IN = String.raw`#!/usr/bin/env python3
"""Stand-in for the AWS CLI and SAM CLI: logs argv and environment, answers from the scenario."""
import configparser, json, os, shlex, shutil, subprocess, sys

tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
logs = os.environ['STANDIN_LOG_DIR']
with open(os.path.join(logs, 'calls.jsonl'), 'a') as f:
    f.write(json.dumps([tool] + args) + '\n')
with open(os.path.join(logs, 'env.jsonl'), 'a') as f:
    f.write(json.dumps({k: v for k, v in os.environ.items() if k.startswith(('AWS_', 'CROSSDEPLOY_'))}) + '\n')
with open(os.path.join(logs, 'environ.jsonl'), 'a') as f:
    f.write(json.dumps(dict(os.environ)) + '\n')
with open(os.environ['STANDIN_SCENARIO']) as f:
    scenario = json.load(f)


def fail(message, code=255):
    print('%s (stand-in): %s' % (tool, message), file=sys.stderr)
    sys.exit(code)


def parse(tokens):
    opts, positional, i = {}, [], 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith('--'):
            if '=' in token:
                key, value = token[2:].split('=', 1)
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith('--'):
                key, value = token[2:], tokens[i + 1]
                i += 1
            else:
                key, value = token[2:], True
            opts[key] = value
        else:
            positional.append(token)
        i += 1
    return opts, positional


def credentials(opts):
    """What botocore does for a profile with credential_process: run it, without a shell, with our env."""
    profile = opts.get('profile')
    if not profile:
        fail('expected --profile')
    config = configparser.RawConfigParser()
    path = os.environ.get('AWS_CONFIG_FILE', '')
    if not path or not config.read(path):
        fail('no AWS config file at %r' % path)
    section = 'profile ' + profile
    if not config.has_option(section, 'credential_process'):
        fail('profile %s has no credential_process' % profile)
    result = subprocess.run(shlex.split(config.get(section, 'credential_process')), capture_output=True, text=True)
    if result.returncode != 0:
        fail('credential_process failed: ' + result.stderr)
    creds = json.loads(result.stdout)
    if creds.get('Version') != 1 or not all(
            isinstance(creds.get(k), str) and creds.get(k) for k in ('AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration')):
        fail('credential_process printed no version-1 credentials: %r' % creds)
    return creds


def answer(value, opts):
    if 'query' in opts:
        import jmespath
        value = jmespath.search(opts['query'], value)
    if opts.get('output') == 'text':
        print('\t'.join(str(v) for v in value) if isinstance(value, list) else ('None' if value is None else value))
    else:
        print(json.dumps(value, indent=4))


def aws(command, opts, positional):
    if command == 'sts assume-role':
        if scenario.get('assumeRoleError'):
            fail(scenario['assumeRoleError'], 254)
        account = opts['role-arn'].split(':')[4]
        answer({
            'Credentials': {
                'AccessKeyId': 'ASIASTANDINSTANDIN00', 'SecretAccessKey': 'standin-secret-access-key',
                'SessionToken': 'standin-session-token', 'Expiration': '2030-01-01T00:00:00+00:00',
            },
            'AssumedRoleUser': {'Arn': 'arn:aws:sts::%s:assumed-role/r/%s' % (account, opts['role-session-name']),
                                'AssumedRoleId': 'AROASTANDIN:' + opts['role-session-name']},
            'SourceIdentity': opts.get('source-identity'),
        }, opts)
    elif command == 'sts get-caller-identity':
        credentials(opts)
        account = scenario.get('account', '111111111111')
        answer({'Account': account, 'Arn': 'arn:aws:sts::%s:assumed-role/r/s' % account, 'UserId': 'x'}, opts)
    elif command == 's3api put-object':
        shutil.copyfile(opts['body'], os.path.join(logs, 'put-object-body'))
        answer({'ETag': '"e"', 'VersionId': scenario.get('versionId', 'standin-version-1')}, opts)
    elif command == 's3api get-object':
        known = scenario.get('artifactVersionId')
        if known is not None and opts.get('version-id') != known:
            fail('An error occurred (NoSuchVersion) when calling the GetObject operation: '
                 'The specified version does not exist.', 254)
        shutil.copyfile(scenario['artifact'], positional[0])
        answer({'VersionId': opts.get('version-id'), 'ContentLength': os.path.getsize(positional[0])}, opts)
    elif command == 'cloudformation describe-change-set':
        credentials(opts)
        if 'changeSet' not in scenario:
            fail('ChangeSetNotFound', 254)
        answer(scenario['changeSet'], opts)
    else:
        fail('unexpected command ' + command)


def sam(command, opts):
    if command == 'build':
        if scenario.get('samBuildExit'):
            print('Build Failed', file=sys.stderr)
            sys.exit(scenario['samBuildExit'])
        build_dir = opts['build-dir']
        files = scenario.get('samBuildFiles') or {
            'template.yaml': 'Resources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: Hello\n',
            'Hello/app.js': 'export const handler = async () => "hello";\n',
        }
        for name, content in files.items():
            path = os.path.join(build_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write(content)
            if 'samBuildMtime' in scenario:
                os.utime(path, (scenario['samBuildMtime'], scenario['samBuildMtime']))
        for name, target in (scenario.get('samBuildLinks') or {}).items():
            path = os.path.join(build_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(target, path)
    elif command == 'deploy':
        credentials(opts)
        print(scenario.get('samDeployOutput', 'Successfully created/updated stack'))
        sys.exit(scenario.get('samDeployExit', 0))
    else:
        fail('unexpected command ' + command)


if tool == 'aws':
    opts, positional = parse(args[2:])
    aws(' '.join(args[:2]), opts, positional)
else:
    opts, _ = parse(args[1:])
    sam(args[0], opts)
`;

const sandboxes: string[] = [];

/** For afterAll: removes every sandbox this test file created. */
export function removeSandboxes(): void {
  for (const root of sandboxes.splice(0)) rmSync(root, { recursive: true, force: true });
}

export function createSandbox(scenario: Scenario = {}): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'crossdeploy-buildspec-'));
  sandboxes.push(root);
  const bin = join(root, 'bin');
  const logs = join(root, 'logs');
  const cwd = join(root, 'cwd');
  for (const dir of [bin, logs, cwd, join(root, 'home'), join(root, 'tmp')]) mkdirSync(dir);
  // The interpreter itself rather than a version-manager shim (pyenv's adds a second or so per call).
  const { python, jmespathDir } = realPython();
  symlinkSync(python, join(bin, 'python3'));
  // -S skips site-packages processing (a tenth of a second per call here); jmespath's directory is added back.
  const standIn = STAND_IN.replace('#!/usr/bin/env python3', `#!${python} -S`).replace(
    'import configparser,',
    `import sys; sys.path.append(${JSON.stringify(jmespathDir)})\nimport configparser,`,
  );
  for (const tool of ['aws', 'sam']) {
    writeFileSync(join(bin, tool), standIn);
    chmodSync(join(bin, tool), 0o755);
  }
  const sandbox: Sandbox = {
    root,
    bin,
    logs,
    cwd,
    setScenario: (next) => writeFileSync(join(root, 'scenario.json'), JSON.stringify(next)),
    calls: () => readCalls(logs),
  };
  sandbox.setScenario(scenario);
  return sandbox;
}

let python: { python: string; jmespathDir: string } | undefined;
function realPython() {
  if (!python) {
    const found = spawnSync(
      'python3',
      [
        '-c',
        'import os, sys, jmespath; print(sys.executable); print(os.path.dirname(os.path.dirname(jmespath.__file__)))',
      ],
      { encoding: 'utf8' },
    );
    if (found.status !== 0) {
      throw new Error(`the buildspec tests need python3 with jmespath: ${found.stderr}`);
    }
    const [executable = '', jmespathDir = ''] = found.stdout.trim().split('\n');
    python = { python: executable, jmespathDir };
  }
  return python;
}

function readCalls(logs: string): Call[] {
  const lines = (name: string) =>
    existsSync(join(logs, name)) ? readFileSync(join(logs, name), 'utf8').split('\n').filter(Boolean) : [];
  const envs = lines('env.jsonl');
  const environs = lines('environ.jsonl');
  return lines('calls.jsonl').map((line, i) => ({
    argv: JSON.parse(line) as string[],
    env: JSON.parse(envs[i] ?? '{}') as Record<string, string>,
    environ: JSON.parse(environs[i] ?? '{}') as Record<string, string>,
  }));
}

/** The environment a job starts with: the contract's variables and PATH, nothing inherited from AWS_*. */
export function jobEnvironment(sandbox: Sandbox, env: Record<string, string>): Record<string, string> {
  return {
    PATH: `${sandbox.bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: join(sandbox.root, 'home'),
    TMPDIR: join(sandbox.root, 'tmp'),
    LANG: 'C.UTF-8',
    STANDIN_LOG_DIR: sandbox.logs,
    STANDIN_SCENARIO: join(sandbox.root, 'scenario.json'),
    ...env,
  };
}

const quote = (value: string) => `'${value.replaceAll("'", "'\\''")}'`;

export async function runBuildspec(
  sandbox: Sandbox,
  text: string,
  env: Record<string, string>,
): Promise<RunResult> {
  const spec = parseBuildspec(text);
  const dir = mkdtempSync(join(sandbox.root, 'driver-'));
  const driver: string[] = ['__failed=0'];
  let n = 0;
  // Sourced in an `if` body, never in its condition (or after `||`), where bash would ignore `set -e`.
  const source = (phase: string, command: string, when: string) => {
    const file = join(dir, `${++n}-${phase}.sh`);
    writeFileSync(file, command);
    driver.push(
      `if ${when}; then`,
      `  . ${quote(file)}`,
      '  __status=$?',
      '  if [ "$__status" -ne 0 ]; then',
      `    echo "[buildspec] ${phase} command ${n} exited with status $__status" >&2`,
      '    if [ "$__failed" -eq 0 ]; then __failed=$__status; fi',
      '  fi',
      'fi',
    );
  };
  for (const phase of PHASES) {
    const p = spec.phases[phase];
    if (!p) continue;
    // The phase runs only when nothing failed before it; its finally commands run once it has started.
    driver.push('__entered=0', 'if [ "$__failed" -eq 0 ]; then __entered=1; fi');
    for (const command of p.commands ?? []) source(phase, command, '[ "$__failed" -eq 0 ]');
    for (const command of p.finally ?? []) source(phase, command, '[ "$__entered" -eq 1 ]');
  }
  const exportedFile = join(dir, 'exported');
  driver.push(
    `for __name in ${(spec.env?.['exported-variables'] ?? []).join(' ')}; do`,
    // CodeBuild reports environment variables: a variable the buildspec set but did not export is not one.
    '  if printenv "$__name" > /dev/null; then printf \'%s\\0%s\\0\' "$__name" "$(printenv "$__name")"; fi',
    `done > ${quote(exportedFile)}`,
    'exit "$__failed"',
  );
  writeFileSync(join(dir, 'driver.sh'), `${driver.join('\n')}\n`);
  const result = await run('bash', [join(dir, 'driver.sh')], {
    cwd: sandbox.cwd,
    env: jobEnvironment(sandbox, env),
  });
  const exported: Record<string, string> = {};
  if (existsSync(exportedFile)) {
    const parts = readFileSync(exportedFile, 'utf8').split('\0');
    for (let i = 0; i + 1 < parts.length; i += 2) exported[parts[i]!] = parts[i + 1]!;
  }
  return { ...result, exported, calls: sandbox.calls() };
}

export function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The text between `<<'MARKER'` and the closing MARKER line inside one of the buildspec's commands. */
export function heredoc(text: string, marker: string): string {
  for (const phase of Object.values(parseBuildspec(text).phases)) {
    for (const command of phase?.commands ?? []) {
      const start = command.indexOf(`<<'${marker}'\n`);
      if (start === -1) continue;
      const body = command.slice(start + marker.length + 5);
      return body.slice(0, body.indexOf(`\n${marker}\n`) + 1);
    }
  }
  throw new Error(`no heredoc ${marker} in the buildspec`);
}

export type ZipEntry = string | { symlink: string } | { mode: number; content: string };

/** Writes a zip with python3's zipfile (the tool the buildspecs use), including entries a zip tool would refuse. */
export async function makeZip(path: string, entries: Record<string, ZipEntry>): Promise<void> {
  const script = `
import json, sys, zipfile
entries = json.load(sys.stdin)
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for name, entry in entries.items():
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.create_system = 3
        if isinstance(entry, str):
            info.external_attr = 0o100644 << 16
            z.writestr(info, entry)
        elif 'symlink' in entry:
            info.external_attr = 0o120777 << 16
            z.writestr(info, entry['symlink'])
        else:
            info.external_attr = entry['mode'] << 16
            z.writestr(info, entry['content'])
`;
  const child = spawn('python3', ['-c', script, path], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(JSON.stringify(entries));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`makeZip failed with ${code}`);
}

/**
 * SAM CLI's own reading of `--parameter-overrides` words (CfnParameterOverridesType in samcli/cli/types.py),
 * ported as the oracle: what the buildspec passes must come back out as the registry's exact values.
 */
export function samParameterOverrides(words: string[]): Record<string, string> {
  const key = `([A-Za-z0-9"']+)`;
  const value = String.raw`("(?:\\.|[^"\\]+)*"|'(?:\\.|[^'\\]+)*'|(?:\\.|[^ "\\]+)+)`;
  const patterns = [
    new RegExp(`(?:ParameterKey=${key},ParameterValue=${value})`, 'g'),
    new RegExp(`(?:(?: )${key}=${value})`, 'g'),
  ];
  const unquote = (text: string) => {
    let out = text;
    if (
      out.length > 0 &&
      ((out[0] === '"' && out.at(-1) === '"') || (out[0] === "'" && out.at(-1) === "'"))
    ) {
      out = out.slice(1, -1);
    }
    return out.replaceAll('\\ ', ' ').replaceAll('\\"', '"').replaceAll("\\'", "'");
  };
  const result: Record<string, string> = {};
  for (const word of words) {
    const normalized = ` ${word.trim()}`;
    const pattern = patterns.find((p) => [...normalized.matchAll(p)].length > 0);
    if (!pattern) throw new Error(`SAM CLI would reject ${JSON.stringify(word)}`);
    for (const match of normalized.matchAll(pattern)) result[unquote(match[1]!)] = unquote(match[2]!);
  }
  return result;
}

/** A target and a deployment for running the buildspecs with the contract's real environment. */
export const fixtureRegistry = parseRegistry({
  applications: {
    'hello-world': {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/hello-world.git' },
      templatePath: 'app/template.yaml',
      defaultRef: 'main',
      environments: {
        prod: {
          accountId: '222222222222',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
          externalId: 'crossdeploy-prod-7f3a',
          executionRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec',
          stackName: 'hello-world-prod',
          artifactsBucket: 'crossdeploy-artifacts-222222222222-eu-west-1',
          capabilities: ['CAPABILITY_IAM', 'CAPABILITY_AUTO_EXPAND'],
          parameterOverrides: { Stage: 'prod', LogLevel: 'info' },
          allowedRequesters: { iam: ['ci-*'] },
        },
        staging: {
          accountId: '111111111111',
          region: 'eu-west-1',
          deployRoleArn: 'arn:aws:iam::111111111111:role/crossdeploy-deploy',
          executionRoleArn: 'arn:aws:iam::111111111111:role/crossdeploy-cfn-exec',
          stackName: 'hello-world-staging',
          artifactsBucket: 'crossdeploy-artifacts-111111111111-eu-west-1',
          allowedRequesters: { iam: ['ci-*'] },
        },
      },
    },
  },
});

export function fixtureTarget(environment = 'prod'): Target {
  const target = findTarget(fixtureRegistry, 'hello-world', environment);
  if (!target) throw new Error(`the fixture registry has no environment ${environment}`);
  return target;
}

export function fixtureDeployment(overrides: Partial<Deployment> = {}): Deployment {
  return {
    deploymentId: '01JCROSSDEPLOY0000000000AB',
    application: 'hello-world',
    environment: 'prod',
    ref: 'release/1.2',
    requester: {
      type: 'iam',
      arn: 'arn:aws:sts::123456789012:assumed-role/ci-deployer/run-42',
      principal: 'arn:aws:iam::123456789012:role/ci-deployer',
    },
    trigger: 'api',
    dryRun: false,
    status: 'RUNNING',
    requestedAt: '2026-11-28T10:00:00.000Z',
    updatedAt: '2026-11-28T10:00:00.000Z',
    buildOutput: {
      bucket: 'crossdeploy-output',
      key: 'builds/hello-world/01JCROSSDEPLOY0000000000AA.zip',
      versionId: 'v3.xyz_Version-Id',
      sha256: 'a'.repeat(64),
      resolvedCommit: 'b'.repeat(40),
    },
    ...overrides,
  };
}
