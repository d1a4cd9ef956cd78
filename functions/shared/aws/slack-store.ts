import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { ChatReply, ChatStore } from '../chat/ports.ts';

/**
 * The chat items in the deployments table (one table, docs/design.md), kept in their own partitions so
 * that nothing reading a deployment (`DEP#<id>`) can ever pick up a response_url:
 *
 * | Item | PK | SK | GSI2PK / GSI2SK |
 * |---|---|---|---|
 * | signed request (replay) | `SLACKREQ#<sha256(signature)>` | `SLACKREQ` | — |
 * | reply target | `CHAT#<deploymentId>` | `CHAT` | `CHAT` / `<expiresAt or keepUntil>#<deploymentId>` (the sweep) |
 */

const requestKey = (hash: string) => ({ PK: `SLACKREQ#${hash}`, SK: 'SLACKREQ' });
const replyKey = (deploymentId: string) => ({ PK: `CHAT#${deploymentId}`, SK: 'CHAT' });
const REPLY_INDEX_PK = 'CHAT';

const isConditionFailure = (error: unknown) =>
  error instanceof ConditionalCheckFailedException ||
  (error as { name?: string })?.name === 'ConditionalCheckFailedException';

function toReply(item: Record<string, unknown>): ChatReply {
  return {
    deploymentId: String(item.deploymentId),
    ...(typeof item.responseUrl === 'string' ? { responseUrl: item.responseUrl } : {}),
    teamId: String(item.teamId),
    userId: String(item.userId),
    ...(typeof item.channelId === 'string' ? { channelId: item.channelId } : {}),
    createdAt: String(item.createdAt),
    expiresAt: String(item.expiresAt),
    ...(typeof item.keepUntil === 'string' ? { keepUntil: item.keepUntil } : {}),
    stage: Number(item.stage ?? 0),
    posts: Number(item.posts ?? 0),
  };
}

export class DynamoChatStore implements ChatStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.client = options.client;
    this.table = options.tableName;
  }

  async claimRequest(signatureHash: string, deploymentId: string, at: string) {
    const key = requestKey(signatureHash);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...key, deploymentId, at },
          ConditionExpression: 'attribute_not_exists(PK)',
        }),
      );
      return { claimed: true as const };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const { Item } = await this.client.send(
        new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
      );
      return { claimed: false as const, deploymentId: String(Item?.deploymentId) };
    }
  }

  async putReply(reply: ChatReply) {
    await this.putIf(reply, 'attribute_not_exists(PK)');
  }

  async rearmReply(reply: ChatReply) {
    return this.putIf(reply, 'attribute_not_exists(PK) OR stage <= :stage', { ':stage': reply.stage });
  }

  private async putIf(reply: ChatReply, condition: string, values?: Record<string, unknown>) {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...replyKey(reply.deploymentId),
            GSI2PK: REPLY_INDEX_PK,
            GSI2SK: `${reply.keepUntil ?? reply.expiresAt}#${reply.deploymentId}`,
            ...reply,
          },
          ConditionExpression: condition,
          ...(values ? { ExpressionAttributeValues: values } : {}),
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return false;
    }
  }

  async getReply(deploymentId: string) {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.table, Key: replyKey(deploymentId), ConsistentRead: true }),
    );
    return Item ? toReply(Item) : undefined;
  }

  async claimPost(deploymentId: string, stage: number, limits: { maxPosts: number; now: string }) {
    return this.claim(deploymentId, 'stage < :stage AND posts < :max AND expiresAt > :now', {
      ':stage': stage,
      ':max': limits.maxPosts,
      ':now': limits.now,
    });
  }

  async claimBotPost(deploymentId: string, stage: number) {
    return this.claim(deploymentId, 'stage < :stage', { ':stage': stage });
  }

  /** Moves the item to `:stage` and counts a post, if it exists and `condition` holds. */
  private async claim(deploymentId: string, condition: string, values: Record<string, unknown>) {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: replyKey(deploymentId),
          UpdateExpression: 'SET stage = :stage, posts = posts + :one',
          ConditionExpression: `attribute_exists(PK) AND ${condition}`,
          ExpressionAttributeValues: { ...values, ':one': 1 },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toReply(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async retainReply(deploymentId: string, keepUntil: string, seenExpiresAt?: string) {
    // The expired URL goes: it can post nothing any more, and a credential is not kept for nothing.
    await this.updateIf(
      deploymentId,
      'SET keepUntil = :until, GSI2SK = :sk REMOVE responseUrl',
      { ':until': keepUntil, ':sk': `${keepUntil}#${deploymentId}` },
      seenExpiresAt,
    );
  }

  async finishReply(deploymentId: string, stage: number, keepUntil: string) {
    await this.updateIf(
      deploymentId,
      'SET stage = :stage, keepUntil = :until, GSI2SK = :sk REMOVE responseUrl',
      { ':stage': stage, ':until': keepUntil, ':sk': `${keepUntil}#${deploymentId}` },
    );
  }

  /** An update of an existing item (and, with `seenExpiresAt`, one not re-armed since it was read). */
  private async updateIf(
    deploymentId: string,
    update: string,
    values: Record<string, unknown>,
    seenExpiresAt?: string,
  ) {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: replyKey(deploymentId),
          UpdateExpression: update,
          ConditionExpression: `attribute_exists(PK)${seenExpiresAt ? ' AND expiresAt = :seen' : ''}`,
          ExpressionAttributeValues: { ...values, ...(seenExpiresAt ? { ':seen': seenExpiresAt } : {}) },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async deleteReply(deploymentId: string, seenExpiresAt?: string) {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.table,
          Key: replyKey(deploymentId),
          ...(seenExpiresAt
            ? {
                ConditionExpression: 'expiresAt = :seen',
                ExpressionAttributeValues: { ':seen': seenExpiresAt },
              }
            : {}),
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async listExpiredReplies(now: string, limit: number) {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'GSI2',
        KeyConditionExpression: 'GSI2PK = :pk AND GSI2SK < :now',
        ExpressionAttributeValues: { ':pk': REPLY_INDEX_PK, ':now': now },
        Limit: limit,
      }),
    );
    // GSI2 projects keys only: the deployment id is the reply's partition key after `CHAT#`.
    return Items.map((item) => String(item.PK).slice('CHAT#'.length));
  }
}
