import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, parseCli } from './cli/args.ts';
import { type Context, run } from './cli/commands.ts';
import { ApiError, ConnectionError, EXIT, type ExitCode, SigningError, UsageError } from './cli/errors.ts';
import { colorEnabled, painter, type StreamLike } from './cli/format.ts';
import { COMMAND_HELP, GLOBAL_HELP } from './cli/help.ts';
import { createClient } from './cli/http.ts';
import { clean } from './cli/progress.ts';
import { authFor, defaultCredentials, isLoopback } from './cli/signing.ts';
import { serveConsole } from './console/command.ts';
import { signedApiCall } from './console/proxy.ts';

/**
 * `crossdeploy`, the command-line client of the crossdeploy HTTP API (bin/crossdeploy.mjs runs `main`).
 * Everything it touches outside itself comes in through `CliIo`, so tests drive it without a process.
 * Exit codes: 0 success, 1 deployment failed or rejected (or the API refused the request), 2 usage or
 * connection error.
 */

export interface CliIo {
  stdout: StreamLike;
  stderr: StreamLike;
  env: NodeJS.ProcessEnv;
  fetch: typeof fetch;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  onInterrupt: (onStop: () => void) => () => void;
}

/** The package's own version: what `--version` prints and the User-Agent carries. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
const USER_AGENT = `crossdeploy-cli/${VERSION}`;

function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    fetch: globalThis.fetch,
    now: Date.now,
    sleep: (ms) => sleep(ms),
    onInterrupt(onStop) {
      const handler = () => {
        onStop();
        // 128 + SIGINT, as a shell reports an interrupted command.
        process.exit(130);
      };
      process.once('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
  };
}

export async function main(argv: readonly string[], overrides: Partial<CliIo> = {}): Promise<ExitCode> {
  const io = { ...processIo(), ...overrides };
  let json = false;
  let command: Command['name'] | undefined;
  try {
    const parsed = parseCli(argv, io.env);
    command = parsed.command.name;
    if (!('globals' in parsed)) {
      if (parsed.command.name === 'version') {
        io.stdout.write(`crossdeploy ${VERSION}\n`);
        return EXIT.ok;
      }
      const { topic } = parsed.command;
      io.stdout.write(`${topic ? COMMAND_HELP[topic] : GLOBAL_HELP}\n`);
      return EXIT.ok;
    }
    const { globals } = parsed;
    json = globals.json;
    const auth = authFor(globals.url, globals.token, io.env);
    if (auth.kind === 'bearer' && globals.url.protocol === 'http:' && !isLoopback(globals.url)) {
      io.stderr.write(`warning: sending the API token to ${globals.url.host} over plain http\n`);
    }
    if (parsed.command.name === 'console') {
      return await serveConsole({
        port: parsed.command.port,
        call: signedApiCall({
          baseUrl: globals.url,
          auth,
          fetch: io.fetch,
          credentials: lazily(defaultCredentials),
          userAgent: USER_AGENT,
        }),
        apiUrl: globals.url,
        stdout: io.stdout,
        onInterrupt: io.onInterrupt,
      });
    }
    const client = createClient({
      baseUrl: globals.url,
      auth,
      fetch: io.fetch,
      credentials: lazily(defaultCredentials),
      sleep: io.sleep,
      userAgent: USER_AGENT,
    });
    const ctx: Context = {
      client,
      globals,
      stdout: io.stdout,
      stderr: io.stderr,
      env: io.env,
      now: io.now,
      sleep: io.sleep,
      onInterrupt: io.onInterrupt,
      newIdempotencyKey: randomUUID,
    };
    return await run(ctx, parsed.command);
  } catch (error) {
    return report(error, io, json, command);
  }
}

/** The one place errors become exit codes and messages. */
function report(error: unknown, io: CliIo, json: boolean, command: string | undefined): ExitCode {
  const paint = painter(colorEnabled(io.stderr, io.env));
  if (error instanceof UsageError) {
    const topic = error.command ?? command;
    const help = topic ? `crossdeploy ${topic} --help` : 'crossdeploy --help';
    io.stderr.write(`crossdeploy: ${error.message}\nRun \`${help}\` for usage.\n`);
    return EXIT.usage;
  }
  if (error instanceof ConnectionError || error instanceof SigningError) {
    io.stderr.write(`${paint('red', 'crossdeploy:')} ${error.message}\n`);
    return EXIT.usage;
  }
  if (error instanceof ApiError) {
    const { problem } = error;
    if (json) io.stdout.write(`${JSON.stringify(problem, null, 2)}\n`);
    const label = [problem.status, problem.code].filter(Boolean).join(' ');
    const title = problem.title ? clean(problem.title) : problem.status >= 500 ? 'server error' : 'refused';
    const lines = [`${paint('red', '✗')} ${title} (${clean(label)}): ${clean(error.message)}`];
    if (problem.field) lines.push(`  field: ${clean(problem.field)}`);
    if (problem.deploymentId) lines.push(`  recorded as deployment ${clean(problem.deploymentId)}`);
    if (error.hint) lines.push(`  ${clean(error.hint)}`);
    io.stderr.write(`${lines.join('\n')}\n`);
    // A refusal is an answer (1), and so is a server error that recorded the deployment as failed; any
    // other server error leaves the outcome unknown, like an unreachable server (2).
    return problem.status < 500 || problem.deploymentId ? EXIT.failed : EXIT.usage;
  }
  const detail = io.env.CROSSDEPLOY_DEBUG ? ((error as Error)?.stack ?? String(error)) : String(error);
  io.stderr.write(`crossdeploy: unexpected error: ${detail}\n`);
  return EXIT.usage;
}

/** Resolves `create` on first use and shares the result (the credential chain caches and refreshes). */
function lazily<T>(create: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= create();
    return value;
  };
}
