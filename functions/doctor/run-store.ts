import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { DoctorRun, DoctorRunStore } from './ports.ts';

/**
 * Where doctor runs are kept between the start and the polls. In AWS: the deployments table, one item per run
 * (`PK = DOCTOR#<runId>`, `SK = RUN`), read by id only. Local mode keeps them in memory: a run is a
 * diagnostic, not history, and is worth nothing after the server stops.
 */

export class DynamoDoctorRunStore implements DoctorRunStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly tableName: string;

  constructor(options: { client: DynamoDBDocumentClient; tableName: string }) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  async put(run: DoctorRun): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { PK: `DOCTOR#${run.report.runId}`, SK: 'RUN', type: 'doctor-run', ...run },
      }),
    );
  }

  async get(runId: string): Promise<DoctorRun | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { PK: `DOCTOR#${runId}`, SK: 'RUN' },
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    return {
      report: Item.report as DoctorRun['report'],
      requester: Item.requester as DoctorRun['requester'],
    };
  }
}

export class MemoryDoctorRunStore implements DoctorRunStore {
  private readonly runs = new Map<string, DoctorRun>();

  async put(run: DoctorRun): Promise<void> {
    this.runs.set(run.report.runId, structuredClone(run));
  }

  async get(runId: string): Promise<DoctorRun | undefined> {
    const run = this.runs.get(runId);
    return run ? structuredClone(run) : undefined;
  }
}
