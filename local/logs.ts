import { appendFileSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RequestRejectedError } from '#shared/errors.ts';
import type { LogLine, LogReader, Page } from '#shared/ports.ts';
import { type Deployment, isTerminal, type JobKind } from '#shared/types.ts';

/**
 * Local mode's job logs: one file per deployment, `<data>/logs/<deploymentId>.log`, one JSON line
 * `{ job, at, message }` per output line of its build and deploy jobs (the stand-in for CloudWatch Logs).
 */

/** Longest message kept per line: a job printing a megabyte without a newline must not bloat every page. */
const MAX_MESSAGE = 16_384;

export function logFile(logsDir: string, deploymentId: string): string {
  return join(logsDir, `${deploymentId}.log`);
}

export class LocalLogWriter {
  private readonly dir: string;

  constructor(logsDir: string) {
    this.dir = logsDir;
    mkdirSync(logsDir, { recursive: true });
  }

  /** One synchronous O_APPEND write per line, so lines of concurrent writers never interleave. */
  append(deploymentId: string, job: JobKind, message: string, at = new Date()): void {
    const line: LogLine = { job, at: at.toISOString(), message: message.slice(0, MAX_MESSAGE) };
    appendFileSync(logFile(this.dir, deploymentId), `${JSON.stringify(line)}\n`);
  }
}

const badCursor = () => new RequestRejectedError('BAD_CURSOR', 400, 'the cursor is not one this API issued');

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

function decodeCursor(cursor: string): number {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  const { o, ...rest } = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0)
    throw badCursor();
  return o;
}

/**
 * Pages through a deployment's log file. The cursor is the number of lines already read (opaque to callers).
 * While the deployment is not terminal a cursor is always returned, so a follower continues where it stopped,
 * as with the CloudWatch reader; once it is terminal and everything was read, there is none.
 */
export class LocalLogReader implements LogReader {
  private readonly dir: string;

  constructor(logsDir: string) {
    this.dir = logsDir;
  }

  async read(deployment: Deployment, options: { cursor?: string; limit: number }): Promise<Page<LogLine>> {
    const offset = options.cursor === undefined ? 0 : decodeCursor(options.cursor);
    const lines = await this.lines(deployment.deploymentId);
    if (offset > lines.length) throw badCursor();
    const items = lines.slice(offset, offset + options.limit).map(parseLine);
    const next = offset + items.length;
    const done = next >= lines.length && isTerminal(deployment.status);
    return done ? { items } : { items, nextCursor: encodeCursor(next) };
  }

  private async lines(deploymentId: string): Promise<string[]> {
    let text: string;
    try {
      text = await readFile(logFile(this.dir, deploymentId), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    // Only complete lines: a line being written right now is read next time.
    const end = text.lastIndexOf('\n');
    return end < 0 ? [] : text.slice(0, end).split('\n');
  }
}

function parseLine(text: string): LogLine {
  try {
    const { job, at, message } = JSON.parse(text) as LogLine;
    return { job, at, message };
  } catch {
    return { job: 'build', at: new Date(0).toISOString(), message: text };
  }
}
