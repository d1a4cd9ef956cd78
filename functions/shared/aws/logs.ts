import { type CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { RequestRejectedError } from '../errors.ts';
import type { LogLine, LogReader, Page } from '../ports.ts';
import { type Deployment, isTerminal, type JobKind } from '../types.ts';

const JOBS: readonly JobKind[] = ['build', 'deploy'];
/** GetLogEvents may answer empty pages before the end of a stream; bound the calls one API request makes. */
const MAX_CALLS = 5;

interface Position {
  job: JobKind;
  token?: string;
}

/**
 * The build and deploy jobs' CloudWatch log lines, build first, as one paged stream. CodeBuild writes each
 * build to the stream named by the part of its build id after ':', in the project's group. The cursor
 * remembers the job and CloudWatch's forward token; while the deployment runs a cursor is always returned,
 * so a follower can poll from where it stopped.
 */
export class CloudWatchLogReader implements LogReader {
  private readonly client: CloudWatchLogsClient;
  private readonly groups: Record<JobKind, string>;

  constructor(options: { client: CloudWatchLogsClient; buildLogGroup: string; deployLogGroup: string }) {
    this.client = options.client;
    this.groups = { build: options.buildLogGroup, deploy: options.deployLogGroup };
  }

  async read(deployment: Deployment, options: { cursor?: string; limit: number }): Promise<Page<LogLine>> {
    let position: Position = options.cursor ? decodeCursor(options.cursor) : { job: 'build' };
    const items: LogLine[] = [];
    let calls = 0;
    let done = false;
    while (items.length < options.limit && calls < MAX_CALLS) {
      const index = JOBS.indexOf(position.job);
      const next = JOBS[index + 1];
      const record = deployment.jobs?.[position.job];
      if (!record) {
        // Promotions skip the build: a later job that ran means this one never will.
        if (next && deployment.jobs?.[next]) {
          position = { job: next };
          continue;
        }
        done = isTerminal(deployment.status);
        break;
      }
      const stream = record.buildId.slice(record.buildId.indexOf(':') + 1);
      calls++;
      const page = await this.page(position.job, stream, position.token, options.limit - items.length);
      for (const event of page.events) {
        items.push({
          job: position.job,
          at: new Date(event.timestamp ?? 0).toISOString(),
          message: (event.message ?? '').replace(/\r?\n$/, ''),
        });
      }
      // CloudWatch hands back the token it was given once the end of the stream is reached.
      const atEnd = page.nextToken === undefined || page.nextToken === position.token;
      if (page.nextToken !== undefined) position = { job: position.job, token: page.nextToken };
      if (!atEnd) continue;
      // A running job writes more later: stay at its end so the next read continues from here.
      if (!jobComplete(deployment, position.job)) break;
      if (!next) {
        done = isTerminal(deployment.status);
        break;
      }
      position = { job: next };
    }
    return done ? { items } : { items, nextCursor: encodeCursor(position) };
  }

  private async page(job: JobKind, logStreamName: string, nextToken: string | undefined, limit: number) {
    try {
      const response = await this.client.send(
        new GetLogEventsCommand({
          logGroupName: this.groups[job],
          logStreamName,
          startFromHead: true,
          limit: Math.min(limit, 10_000),
          ...(nextToken ? { nextToken } : {}),
        }),
      );
      return { events: response.events ?? [], nextToken: response.nextForwardToken };
    } catch (error) {
      // A job that has not written yet has no stream: that is an empty log, not a failure.
      if ((error as { name?: string }).name === 'ResourceNotFoundException') return { events: [], nextToken };
      throw error;
    }
  }
}

function jobComplete(deployment: Deployment, job: JobKind): boolean {
  const record = deployment.jobs?.[job];
  if (isTerminal(deployment.status)) return true;
  return (
    record?.finishedAt !== undefined || (record?.status !== undefined && record.status !== 'IN_PROGRESS')
  );
}

function encodeCursor(position: Position): string {
  return Buffer.from(
    JSON.stringify(position.token ? { j: position.job, t: position.token } : { j: position.job }),
  ).toString('base64url');
}

function decodeCursor(cursor: string): Position {
  const refuse = () => new RequestRejectedError('BAD_CURSOR', 400, 'the cursor is not one this API issued');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  const { j, t, ...rest } = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || (j !== 'build' && j !== 'deploy')) throw refuse();
  if (t !== undefined && (typeof t !== 'string' || t.length === 0 || t.length > 2048)) throw refuse();
  return t === undefined ? { job: j } : { job: j, token: t as string };
}
