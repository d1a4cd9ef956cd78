/**
 * The CLI's errors, each mapped to an exit code in one place (local/cli.ts). The API's own errors arrive
 * as problem documents, so this module only describes what can go wrong on the client side.
 */

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Wrong arguments or options: the request was never sent. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/** crossdeploy could not be reached, timed out, or answered with something that is not its API. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
}

/** No AWS credentials or region to sign a request to a deployed crossdeploy. */
export class SigningError extends Error {
  override readonly name = 'SigningError';
}

/** An application/problem+json document (RFC 9457) with crossdeploy's stable code. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  deploymentId?: string;
  field?: string;
  [key: string]: unknown;
}

/** The API refused or failed a request; `problem` is what it said (or a stand-in built from a bare status). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly problem: Problem;
  /** The body exactly as received, so `--json` can print what the server said. */
  readonly body: unknown;
  /** What to try instead (a close name, the command that does what was asked), added by the command. */
  hint?: string;
  constructor(problem: Problem, body: unknown) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.problem = problem;
    this.body = body;
  }
}
