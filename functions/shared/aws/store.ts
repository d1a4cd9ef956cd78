import { createHash } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, RequestRejectedError } from '../errors.ts';
import type { DeploymentStore, Page } from '../ports.ts';
import {
  type AuditEvent,
  type Deployment,
  EVENT_TYPES,
  type Lock,
  type Release,
  TERMINAL_STATUSES,
  type TerminalStatus,
  type Ticket,
  type TokenKind,
} from '../types.ts';

/**
 * The single-table DynamoDB store. Every read is a GetItem or a Query (never a Scan), every write that
 * must not clobber is conditional, and nothing depends on TTL. Key layout: docs/design.md.
 */

const KEY_ATTRIBUTES = ['PK', 'SK', 'GSI1PK', 'GSI1SK', 'GSI2PK', 'GSI2SK'] as const;
const depKey = (id: string) => ({ PK: `DEP#${id}`, SK: 'META' });
const lockKey = (application: string, environment: string) => ({
  PK: `LOCK#${application}#${environment}`,
  SK: 'LOCK',
});
const envKey = (application: string, environment: string) => `ENV#${application}#${environment}`;
// Zero-padded so that the sort key orders numerically.
const releaseKey = (application: string, environment: string, release: number) => ({
  PK: `REL#${application}#${environment}`,
  SK: String(release).padStart(10, '0'),
});
const ticketKey = (t: Ticket) => ({
  PK: `QUEUE#${t.application}#${t.environment}`,
  SK: `${t.requestedAt}#${t.deploymentId}`,
});
/**
 * An event's sort key: its time, then the workflow's order of event types (two events in one millisecond,
 * such as LOCK_RELEASED and SUCCEEDED), then the step.
 */
const eventKey = (event: AuditEvent) => ({
  PK: `DEP#${event.deploymentId}`,
  SK: `EV#${event.at}#${String(typeOrder(event.type)).padStart(2, '0')}#${event.step}`,
});
const typeOrder = (type: string) => EVENT_TYPES.indexOf(type as AuditEvent['type']);
/** The previous release keyed events `EV#<step>`: a step starts with a letter, a time with a digit. */
const isLegacyEventKey = (sk: string) => !/^EV#\d/.test(sk);
const compareEvents = (a: AuditEvent, b: AuditEvent) =>
  a.at.localeCompare(b.at) || typeOrder(a.type) - typeOrder(b.type) || a.step.localeCompare(b.step);
const TERMINAL_VALUES = Object.fromEntries(TERMINAL_STATUSES.map((s, i) => [`:t${i}`, s]));
const NOT_TERMINAL = `NOT #status IN (${Object.keys(TERMINAL_VALUES).join(', ')})`;

const isConditionFailure = (error: unknown) =>
  error instanceof ConditionalCheckFailedException ||
  (error as { name?: string })?.name === 'ConditionalCheckFailedException';

function strip<T>(item: Record<string, unknown>): T {
  const copy = { ...item };
  for (const key of KEY_ATTRIBUTES) delete copy[key];
  return copy as T;
}

/** JSON with sorted keys, so an event written twice compares equal whatever the key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/** A local server instance's lease on the deployments it owns (local/ownership.ts). */
export interface InstanceLease {
  instanceId: string;
  /** Renewed while the server runs; once past, the instance counts as gone. */
  leaseExpiresAt: string;
  renewedAt: string;
  startedAt: string;
  /** Set by a clean shutdown, after its jobs were stopped. */
  stoppedAt?: string;
  hostname: string;
  pid: number;
  dataDir: string;
}

export class DynamoDeploymentStore implements DeploymentStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async createDeployment(deployment: Deployment) {
    const item = {
      ...depKey(deployment.deploymentId),
      GSI1PK: envKey(deployment.application, deployment.environment),
      GSI1SK: `${deployment.requestedAt}#${deployment.deploymentId}`,
      GSI2PK: 'ACTIVE',
      GSI2SK: `${deployment.requestedAt}#${deployment.deploymentId}`,
      jobs: {},
      ...deployment,
    };
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: item,
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return { created: true, deployment };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.getDeployment(deployment.deploymentId);
      if (!existing) throw error;
      return { created: false, deployment: existing };
    }
  }

  async getDeployment(deploymentId: string) {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.table, Key: depKey(deploymentId), ConsistentRead: true }),
    );
    return Item ? strip<Deployment>(Item) : undefined;
  }

  async updateDeployment(
    deploymentId: string,
    changes: Partial<Omit<Deployment, 'deploymentId' | 'status'>> & { status?: 'RUNNING' },
  ) {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ...TERMINAL_VALUES };
    const sets: string[] = [];
    let n = 0;
    for (const [field, value] of Object.entries(changes)) {
      if (value === undefined) continue;
      if (field === 'jobs') {
        // Jobs are updated one at a time, so a build record never overwrites a deploy record.
        names['#jobs'] = 'jobs';
        for (const [job, record] of Object.entries(value as Record<string, unknown>)) {
          names[`#j${n}`] = job;
          values[`:v${n}`] = record;
          sets.push(`#jobs.#j${n} = :v${n}`);
          n++;
        }
        continue;
      }
      names[`#f${n}`] = field;
      values[`:v${n}`] = value;
      sets.push(`#f${n} = :v${n}`);
      n++;
    }
    if (sets.length === 0) return this.getDeployment(deploymentId);
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: depKey(deploymentId),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_exists(PK) AND ${NOT_TERMINAL}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? strip<Deployment>(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async finishDeployment(
    deploymentId: string,
    status: TerminalStatus,
    changes: Partial<Omit<Deployment, 'deploymentId' | 'status'>>,
  ) {
    const current = await this.getDeployment(deploymentId);
    if (!current || TERMINAL_STATUSES.includes(current.status as TerminalStatus)) {
      return { changed: false, deployment: current };
    }
    const finishedAt = changes.finishedAt ?? new Date().toISOString();
    const release = status === 'SUCCEEDED' && !current.dryRun;
    const names: Record<string, string> = { '#status': 'status', '#phase': 'phase' };
    const values: Record<string, unknown> = { ...TERMINAL_VALUES, ':status': status };
    const sets = ['#status = :status'];
    let n = 0;
    for (const [field, value] of Object.entries({ ...changes, finishedAt })) {
      if (value === undefined || field === 'jobs') continue;
      names[`#f${n}`] = field;
      values[`:v${n}`] = value;
      sets.push(`#f${n} = :v${n}`);
      n++;
    }
    let update: string;
    if (release) {
      // Successful real deployments feed "last successful" (promotions); the rest leave the sparse index.
      values[':okpk'] = `OK#${current.application}#${current.environment}`;
      values[':oksk'] = `${finishedAt}#${deploymentId}`;
      update = `SET ${sets.join(', ')}, GSI2PK = :okpk, GSI2SK = :oksk REMOVE #phase`;
    } else {
      update = `SET ${sets.join(', ')} REMOVE GSI2PK, GSI2SK, #phase`;
    }
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: depKey(deploymentId),
          UpdateExpression: update,
          ConditionExpression: `attribute_exists(PK) AND ${NOT_TERMINAL}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      // A deployment that ended leaves its environment's queue, whichever path ended it.
      await this.deleteTicket({
        application: current.application,
        environment: current.environment,
        deploymentId,
        requestedAt: current.requestedAt,
      });
      return { changed: true, deployment: Attributes ? strip<Deployment>(Attributes) : undefined };
    } catch (error) {
      if (isConditionFailure(error))
        return { changed: false, deployment: await this.getDeployment(deploymentId) };
      throw error;
    }
  }

  async markSettled(deploymentId: string, settledAt: string) {
    await this.client.send(
      new UpdateCommand({
        TableName: this.table,
        Key: depKey(deploymentId),
        UpdateExpression: 'SET settledAt = if_not_exists(settledAt, :at)',
        ConditionExpression: 'attribute_exists(PK)',
        ExpressionAttributeValues: { ':at': settledAt },
      }),
    );
  }

  /**
   * Two items per event, because the event's key now holds its time and a retried step carries a later time:
   * a claim under the step (`STEP#<step>`, conditional put, keeps the first time and the content to compare)
   * and the event under `EV#<at>#<type order>#<step>`, so that a Query returns a deployment's events in the
   * order they happened. A retry re-puts the event from the claim, which also completes a write that stopped
   * between the two puts.
   */
  async appendEvent(event: AuditEvent) {
    const claimKey = { PK: `DEP#${event.deploymentId}`, SK: `STEP#${event.step}` };
    let stored = event;
    let written = true;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...claimKey, ...event },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { Item } = await this.client.send(
        new GetCommand({ TableName: this.table, Key: claimKey, ConsistentRead: true }),
      );
      if (!Item || Item.type !== event.type || canonical(Item.detail) !== canonical(event.detail)) {
        throw new ConflictError(
          `audit event ${event.step} of ${event.deploymentId} already exists with other content`,
          { cause: error },
        );
      }
      stored = strip<AuditEvent>(Item);
      written = false;
    }
    await this.client.send(
      new PutCommand({ TableName: this.table, Item: { ...eventKey(stored), ...stored } }),
    );
    return { written };
  }

  /**
   * One Query, in time order. Items the previous release wrote (`EV#<step>`, no time in the key) sort after
   * the time-keyed ones, so the page is merged by time here; docs/console.md has the migration note.
   */
  async listEvents(deploymentId: string) {
    const items = await this.queryAll({
      TableName: this.table,
      KeyConditionExpression: 'PK = :pk AND begins_with(SK, :ev)',
      ExpressionAttributeValues: { ':pk': `DEP#${deploymentId}`, ':ev': 'EV#' },
      ConsistentRead: true,
    });
    const events = items.map((item) => strip<AuditEvent>(item));
    if (items.every((item) => !isLegacyEventKey(String(item.SK)))) return events;
    return events.sort(compareEvents);
  }

  async listHistory(
    application: string,
    environment: string,
    options: { limit: number; cursor?: string },
  ): Promise<Page<Deployment>> {
    const pk = envKey(application, environment);
    // One item more than the page: DynamoDB returns a LastEvaluatedKey whenever the page is full, even when
    // nothing follows, and that cursor would lead to an empty page.
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'GSI1',
        KeyConditionExpression: 'GSI1PK = :pk',
        ExpressionAttributeValues: { ':pk': pk },
        ScanIndexForward: false,
        Limit: options.limit + 1,
        ...(options.cursor ? { ExclusiveStartKey: decodeCursor(options.cursor, pk) } : {}),
      }),
    );
    const page = Items.slice(0, options.limit);
    const last = page.at(-1);
    return {
      items: page.map((item) => strip<Deployment>(item)),
      ...(Items.length > options.limit && last
        ? {
            nextCursor: encodeCursor({
              PK: last.PK,
              SK: last.SK,
              GSI1PK: last.GSI1PK,
              GSI1SK: last.GSI1SK,
            }),
          }
        : {}),
    };
  }

  /**
   * Deployments requested in [from, to), oldest first: a Query on GSI1, whose sort key starts with the request
   * time (`<from>` sorts before `<from>#id`, `<to>#id` after `<to>`). At most `limit` records; `more` says
   * whether the window holds others.
   */
  async listRequestedBetween(
    application: string,
    environment: string,
    window: { from: string; to: string },
    options: { limit: number },
  ) {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'GSI1',
          KeyConditionExpression: 'GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': envKey(application, environment),
            ':from': window.from,
            ':to': window.to,
          },
          Limit: options.limit + 1 - items.length,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start && items.length <= options.limit);
    return {
      items: items.slice(0, options.limit).map((item) => strip<Deployment>(item)),
      more: items.length > options.limit,
    };
  }

  async lastSuccessful(application: string, environment: string) {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'GSI2',
        KeyConditionExpression: 'GSI2PK = :pk',
        ExpressionAttributeValues: { ':pk': `OK#${application}#${environment}` },
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    // GSI2 projects keys only (a status update then costs it nothing): the record is one GetItem away.
    return Items[0] ? this.deploymentAt(Items[0], `OK#${application}#${environment}`) : undefined;
  }

  async listActive() {
    const keys = await this.queryAll({
      TableName: this.table,
      IndexName: 'GSI2',
      KeyConditionExpression: 'GSI2PK = :pk',
      ExpressionAttributeValues: { ':pk': 'ACTIVE' },
    });
    const found = await Promise.all(keys.map((key) => this.deploymentAt(key, 'ACTIVE')));
    return found.filter((deployment) => deployment !== undefined);
  }

  /** The deployment a GSI2 key points at, if it still carries that key (the index is eventually consistent). */
  private async deploymentAt(key: Record<string, unknown>, gsi2pk: string) {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { PK: key.PK, SK: key.SK }, ConsistentRead: true }),
    );
    return Item?.GSI2PK === gsi2pk ? strip<Deployment>(Item) : undefined;
  }

  async getLock(application: string, environment: string) {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.table, Key: lockKey(application, environment), ConsistentRead: true }),
    );
    return Item ? strip<Lock>(Item) : undefined;
  }

  async acquireLock(lock: Lock) {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...lockKey(lock.application, lock.environment), ...lock },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return { acquired: true as const };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return { acquired: false as const, holder: await this.getLock(lock.application, lock.environment) };
    }
  }

  async takeOverLock(previous: Lock, next: Lock) {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...lockKey(next.application, next.environment), ...next },
          ConditionExpression: '#owner = :owner AND leaseExpiresAt = :lease',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': previous.owner, ':lease': previous.leaseExpiresAt },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async releaseLock(application: string, environment: string, owner: string) {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.table,
          Key: lockKey(application, environment),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async latestRelease(application: string, environment: string) {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'PK = :pk',
        ExpressionAttributeValues: { ':pk': `REL#${application}#${environment}` },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    return Items[0] ? strip<Release>(Items[0]) : undefined;
  }

  async getRelease(application: string, environment: string, release: number) {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: releaseKey(application, environment, release),
        ConsistentRead: true,
      }),
    );
    return Item ? strip<Release>(Item) : undefined;
  }

  async putRelease(release: Release) {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...releaseKey(release.application, release.environment, release.release), ...release },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async putTicket(ticket: Ticket) {
    await this.client.send(
      new PutCommand({ TableName: this.table, Item: { ...ticketKey(ticket), ...ticket } }),
    );
  }

  async listTickets(
    application: string,
    environment: string,
    options: { limit: number; newestFirst?: boolean },
  ) {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'PK = :pk',
        ExpressionAttributeValues: { ':pk': `QUEUE#${application}#${environment}` },
        ScanIndexForward: !options.newestFirst,
        Limit: options.limit,
        ConsistentRead: true,
      }),
    );
    return Items.map((item) => strip<Ticket>(item));
  }

  async deleteTicket(ticket: Ticket) {
    await this.client.send(new DeleteCommand({ TableName: this.table, Key: ticketKey(ticket) }));
  }

  async parkTicket(ticket: Ticket, taskToken: string) {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: ticketKey(ticket),
          UpdateExpression: 'SET taskToken = :token',
          // Never recreates a ticket that its deployment's end (or its lock) removed.
          ConditionExpression: 'attribute_exists(PK)',
          ExpressionAttributeValues: { ':token': taskToken },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async putTaskToken(deploymentId: string, job: TokenKind, taskToken: string) {
    await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: { PK: `DEP#${deploymentId}`, SK: `TOKEN#${job}`, taskToken },
      }),
    );
  }

  async getTaskToken(deploymentId: string, job: TokenKind) {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: { PK: `DEP#${deploymentId}`, SK: `TOKEN#${job}` },
        ConsistentRead: true,
      }),
    );
    return typeof Item?.taskToken === 'string' ? Item.taskToken : undefined;
  }

  async claimIdempotencyKey(key: string, bodyHash: string, deploymentId: string, at: string) {
    const itemKey = { PK: `IDEM#${createHash('sha256').update(key).digest('hex')}`, SK: 'IDEM' };
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...itemKey, bodyHash, deploymentId, at },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return { claimed: true as const };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { Item } = await this.client.send(
        new GetCommand({ TableName: this.table, Key: itemKey, ConsistentRead: true }),
      );
      return {
        claimed: false as const,
        bodyHash: String(Item?.bodyHash),
        deploymentId: String(Item?.deploymentId),
      };
    }
  }

  // Local-mode ownership (local/ownership.ts): which server instance runs a deployment, and whether that
  // instance still renews its lease. Items of their own, so no deployment read ever carries them.

  /** Conditional put: the first instance to claim a deployment owns it; returns the owner either way. */
  async claimDeploymentOwner(deploymentId: string, instanceId: string, at: string) {
    const key = { PK: `DEP#${deploymentId}`, SK: 'OWNER' };
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...key, instanceId, at },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return { claimed: true, owner: instanceId };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return { claimed: false, owner: (await this.getDeploymentOwner(deploymentId)) ?? '' };
    }
  }

  async getDeploymentOwner(deploymentId: string) {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: { PK: `DEP#${deploymentId}`, SK: 'OWNER' },
        ConsistentRead: true,
      }),
    );
    return typeof Item?.instanceId === 'string' ? Item.instanceId : undefined;
  }

  /** Writes an instance's lease (its own item only: an instance renews nobody else's). */
  async putInstanceLease(lease: InstanceLease) {
    await this.client.send(
      new PutCommand({
        TableName: this.table,
        Item: { PK: `INSTANCE#${lease.instanceId}`, SK: 'INSTANCE', ...lease },
      }),
    );
  }

  async getInstanceLease(instanceId: string) {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.table,
        Key: { PK: `INSTANCE#${instanceId}`, SK: 'INSTANCE' },
        ConsistentRead: true,
      }),
    );
    return Item ? strip<InstanceLease>(Item) : undefined;
  }

  private async queryAll(input: QueryCommandInput) {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({ ...input, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A cursor is opaque to clients, but it is still input: decode it strictly and refuse anything else. */
function decodeCursor(cursor: string, expectedPk: string): Record<string, string> {
  const refuse = () => new RequestRejectedError('BAD_CURSOR', 400, 'the cursor is not one this API issued');
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  if (!key || typeof key !== 'object') throw refuse();
  const record = key as Record<string, unknown>;
  const fields = ['PK', 'SK', 'GSI1PK', 'GSI1SK'];
  if (Object.keys(record).length !== fields.length || !fields.every((f) => typeof record[f] === 'string')) {
    throw refuse();
  }
  if (record.GSI1PK !== expectedPk) throw refuse();
  return record as Record<string, string>;
}

/** The table definition the tests, local mode and the template agree on. */
export const TABLE_DEFINITION = {
  AttributeDefinitions: ['PK', 'SK', 'GSI1PK', 'GSI1SK', 'GSI2PK', 'GSI2SK'].map((name) => ({
    AttributeName: name,
    AttributeType: 'S' as const,
  })),
  KeySchema: [
    { AttributeName: 'PK', KeyType: 'HASH' as const },
    { AttributeName: 'SK', KeyType: 'RANGE' as const },
  ],
  // GSI1 (history) carries whole records; GSI2 (in flight, last success, chat replies) keys only, so the
  // many updates of a deployment that change none of its GSI2 keys write nothing to that index.
  GlobalSecondaryIndexes: (
    [
      ['GSI1', 'ALL'],
      ['GSI2', 'KEYS_ONLY'],
    ] as const
  ).map(([index, projection]) => ({
    IndexName: index,
    KeySchema: [
      { AttributeName: `${index}PK`, KeyType: 'HASH' as const },
      { AttributeName: `${index}SK`, KeyType: 'RANGE' as const },
    ],
    Projection: { ProjectionType: projection },
  })),
  BillingMode: 'PAY_PER_REQUEST' as const,
};
