import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { DynamoDeploymentStore, TABLE_DEFINITION } from '#shared/aws/store.ts';

/** A DynamoDB client for the dynalite that test/setup/dynalite.ts started (loopback, dummy credentials). */
export function testDynamoClient(): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: inject('dynamoEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

/** A fresh table in the shared dynalite, and the real store on it. */
export async function createTestStore() {
  const client = testDynamoClient();
  const tableName = `test-${randomUUID()}`;
  await client.send(new CreateTableCommand({ TableName: tableName, ...TABLE_DEFINITION }));
  // dynalite answers ResourceNotFound until the table is ACTIVE, even with createTableMs: 0.
  await waitUntilTableExists(
    { client, maxWaitTime: 10, minDelay: 0.05, maxDelay: 0.2 },
    { TableName: tableName },
  );
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { store: new DynamoDeploymentStore({ client: doc, tableName }), client, doc, tableName };
}
