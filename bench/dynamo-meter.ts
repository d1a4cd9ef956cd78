import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { TABLE_DEFINITION } from '#shared/aws/store.ts';

/**
 * Counts what the store asks of DynamoDB, as an SDK middleware on the client the real store uses: calls by
 * operation, and (when `detailed`) the request units each call consumes on DynamoDB on-demand, computed from
 * the item's before and after images so that the global secondary indexes count too (dynalite's
 * ConsumedCapacity leaves them out). The images are read through a second, unmetered client.
 *
 * Rules (Amazon DynamoDB Developer Guide, "read/write capacity mode" and "GSI writes"):
 * - a write costs 1 WRU per started KB of the larger of the before and after images, at least 1, also when its
 *   condition fails (then of the existing item);
 * - each GSI the item is in before or after costs 1 WRU per started KB of the index entry for a put or a
 *   delete, 2 such writes when the index key changes, 1 when only projected attributes change, nothing when
 *   the item is in the index neither before nor after (or nothing projected changed);
 * - a strongly consistent read costs 1 RRU per started 4 KB (GetItem: of the item; Query: of all items
 *   read), half that when eventually consistent (every GSI Query); an empty result still costs the minimum.
 */

type Item = Record<string, AttributeValue>;

/** The table's global secondary indexes and their key attributes (functions/shared/aws/store.ts TABLE_DEFINITION). */
export const INDEXES = {
  GSI1: ['GSI1PK', 'GSI1SK'],
  GSI2: ['GSI2PK', 'GSI2SK'],
} as const;
type IndexName = keyof typeof INDEXES;

/** What an index copies of each item: everything (the table's design), its keys only, or keys plus a list. */
export type Projection = 'ALL' | readonly string[];
export type Projections = Record<IndexName, Projection>;
/** The projections the table is created with (TABLE_DEFINITION, which the template test holds to template.yaml). */
export const TABLE_PROJECTIONS = Object.fromEntries(
  TABLE_DEFINITION.GlobalSecondaryIndexes.map(({ IndexName, Projection }) => [
    IndexName,
    Projection.ProjectionType === 'ALL' ? 'ALL' : [],
  ]),
) as Projections;

export interface WriteRecord {
  operation: string;
  kind: string;
  conditionFailed: boolean;
  tableUnits: number;
  indexUnits: Record<IndexName, number>;
  /** Which index writes (put, delete, update, or a key change = delete + put). */
  indexWrites: Partial<Record<IndexName, string>>;
  /** The index units the same write would cost under `DynamoMeter.alternative` projections. */
  alternativeIndexUnits: Record<IndexName, number>;
}

export interface ReadRecord {
  operation: string;
  kind: string;
  index?: string;
  units: number;
  items: number;
}

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) {
    const digits = value.N.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    return Math.ceil(Math.max(1, digits.length) / 2) + 1;
  }
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + utf8(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, n) => sum + valueSize({ N: n }), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, b) => sum + b.byteLength, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, v) => sum + 1 + valueSize(v), 0);
  if (value.M !== undefined) return 3 + Object.keys(value.M).length + itemSize(value.M);
  return 0;
}

/** An item's size as DynamoDB bills it: attribute names plus values. */
export function itemSize(item: Item): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}

const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

/** What an item is, from its key: the store's item types (docs/design.md). */
export function kindOf(key: Item | undefined): string {
  const pk = key?.PK?.S ?? '';
  const sk = key?.SK?.S ?? '';
  if (pk.startsWith('DEP#')) {
    if (sk === 'META') return 'deployment';
    if (sk.startsWith('EV#')) return 'audit event';
    if (sk.startsWith('STEP#')) return 'audit step claim';
    if (sk.startsWith('TOKEN#')) return 'task token';
    return `deployment ${sk.split('#')[0]}`;
  }
  const prefix = pk.split('#')[0] ?? '';
  const names: Record<string, string> = {
    LOCK: 'lock',
    QUEUE: 'queue ticket',
    IDEM: 'idempotency key',
    REL: 'release',
  };
  return names[prefix] ?? (prefix || 'unknown');
}

function indexKey(item: Item | undefined, index: IndexName): string | undefined {
  if (!item) return undefined;
  const [hash, range] = INDEXES[index];
  const h = item[hash]?.S;
  const r = item[range]?.S;
  // A composite-key index holds only items that carry both of its key attributes (sparse index).
  return h !== undefined && r !== undefined ? `${h}\u0000${r}` : undefined;
}

const sameImage = (a: Item, b: Item) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
const sorted = (item: Item) =>
  Object.fromEntries(Object.entries(item).sort(([x], [y]) => x.localeCompare(y)));

/** The part of an item an index holds: the table's and the index's keys, and the projected attributes. */
function projected(item: Item, index: IndexName, projection: Projection): Item {
  if (projection === 'ALL') return item;
  const keep = new Set(['PK', 'SK', ...INDEXES[index], ...projection]);
  return Object.fromEntries(Object.entries(item).filter(([name]) => keep.has(name)));
}

/** The write units of one write, from the item before and after it. */
export function writeCost(
  before: Item | undefined,
  after: Item | undefined,
  conditionFailed: boolean,
  projections: Projections = TABLE_PROJECTIONS,
): Pick<WriteRecord, 'tableUnits' | 'indexUnits' | 'indexWrites'> {
  const indexUnits: Record<IndexName, number> = { GSI1: 0, GSI2: 0 };
  const indexWrites: WriteRecord['indexWrites'] = {};
  if (conditionFailed) {
    return { tableUnits: writeUnits(before ? itemSize(before) : 0), indexUnits, indexWrites };
  }
  const tableUnits = writeUnits(Math.max(before ? itemSize(before) : 0, after ? itemSize(after) : 0));
  for (const index of Object.keys(INDEXES) as IndexName[]) {
    const was = indexKey(before, index);
    const is = indexKey(after, index);
    if (was === undefined && is === undefined) continue;
    const old = before && projected(before, index, projections[index]);
    const now = after && projected(after, index, projections[index]);
    if (was === undefined) {
      indexUnits[index] = writeUnits(itemSize(now!));
      indexWrites[index] = 'put';
    } else if (is === undefined) {
      indexUnits[index] = writeUnits(itemSize(old!));
      indexWrites[index] = 'delete';
    } else if (was !== is) {
      indexUnits[index] = writeUnits(itemSize(old!)) + writeUnits(itemSize(now!));
      indexWrites[index] = 'key change';
    } else if (!sameImage(old!, now!)) {
      indexUnits[index] = writeUnits(itemSize(now!));
      indexWrites[index] = 'update';
    }
  }
  return { tableUnits, indexUnits, indexWrites };
}

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem']);

interface CommandArgs {
  input: {
    TableName?: string;
    Key?: Item;
    Item?: Item;
    ConsistentRead?: boolean;
    IndexName?: string;
    ExpressionAttributeValues?: Item;
  };
}

/** A mutex: in detailed mode one write at a time, so its before and after images are its own. */
class Lane {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => {});
    return result;
  }
}

export class DynamoMeter {
  /** Calls by operation (GetItem, PutItem, Query, ...). */
  readonly calls = new Map<string, number>();
  readonly writes: WriteRecord[] = [];
  readonly reads: ReadRecord[] = [];
  /** Compute request units (costs two extra reads per write, and serialises writes): the cost section only. */
  detailed = false;
  /** Counts nothing while set (what follows the measured deployment is not its cost). */
  paused = false;
  /** Index projections to price each write under as well (a what-if for the write target). */
  alternative: Projections = TABLE_PROJECTIONS;
  /** Called after every successful write, with its input (the stand-in jobs wait for their record by it). */
  onWrite: ((operation: string, input: CommandArgs['input']) => void) | undefined;
  private readonly lane = new Lane();
  private inspector: DynamoDBClient | undefined;

  /** Adds the middleware to `client`; `inspector` is an unmetered client on the same table. */
  attach(client: DynamoDBClient, inspector: DynamoDBClient): void {
    this.inspector = inspector;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String(context.commandName ?? '').replace(/Command$/, '');
        const input = (args as unknown as CommandArgs).input;
        if (!this.paused) this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
        if (this.paused || !this.detailed || !(WRITES.has(operation) || READS.has(operation))) {
          const result = await next(args);
          if (WRITES.has(operation)) this.onWrite?.(operation, input);
          return result;
        }
        if (READS.has(operation)) {
          const result = await next(args);
          this.recordRead(operation, input, result.output as { Item?: Item; Items?: Item[] });
          return result;
        }
        return this.lane.run(async () => {
          const key = input.Key ?? keyOf(input.Item);
          const before = await this.image(input.TableName, key);
          let conditionFailed = false;
          try {
            const result = await next(args);
            this.onWrite?.(operation, input);
            return result;
          } catch (error) {
            conditionFailed = (error as { name?: string }).name === 'ConditionalCheckFailedException';
            throw error;
          } finally {
            const after = conditionFailed ? before : await this.image(input.TableName, key);
            this.writes.push({
              operation,
              kind: kindOf(key),
              conditionFailed,
              ...writeCost(before, after, conditionFailed),
              alternativeIndexUnits: writeCost(before, after, conditionFailed, this.alternative).indexUnits,
            });
          }
        });
      },
      { step: 'build', name: 'benchDynamoMeter' },
    );
  }

  reset(): void {
    this.calls.clear();
    this.writes.length = 0;
    this.reads.length = 0;
  }

  callCount(operation: string): number {
    return this.calls.get(operation) ?? 0;
  }

  private recordRead(
    operation: string,
    input: CommandArgs['input'],
    output: { Item?: Record<string, unknown>; Items?: Record<string, unknown>[] },
  ) {
    // The document client has already unmarshalled the output at this step (its input is still marshalled).
    const items = (output.Items ?? (output.Item ? [output.Item] : [])).map(asItem);
    const bytes = items.reduce((sum, item) => sum + itemSize(item), 0);
    // GSI queries are always eventually consistent; the store asks for consistent reads elsewhere.
    const consistent = input.IndexName === undefined && input.ConsistentRead === true;
    const key = input.Key ?? (items[0] ? keyOf(items[0]) : pkOf(input));
    this.reads.push({
      operation,
      kind: kindOf(key),
      ...(input.IndexName ? { index: input.IndexName } : {}),
      units: readUnits(bytes, consistent),
      items: items.length,
    });
  }

  private async image(table: string | undefined, key: Item | undefined): Promise<Item | undefined> {
    if (!key || !table || !this.inspector) return undefined;
    const { Item } = await this.inspector.send(
      new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }),
    );
    return Item;
  }
}

/** A plain (unmarshalled) item in DynamoDB's attribute-value form, for sizing it. */
function asItem(item: Record<string, unknown>): Item {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, attributeOf(value)]));
}

function attributeOf(value: unknown): AttributeValue {
  if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Set)) {
    const keys = Object.keys(value);
    const single = keys.length === 1 ? keys[0] : undefined;
    // Already an attribute value ({ S: ... }, { M: ... }, ...).
    if (single && ['S', 'N', 'B', 'BOOL', 'NULL', 'L', 'M', 'SS', 'NS', 'BS'].includes(single)) {
      return value as AttributeValue;
    }
  }
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number' || typeof value === 'bigint') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  if (value === null || value === undefined) return { NULL: true };
  if (value instanceof Uint8Array) return { B: value };
  if (Array.isArray(value)) return { L: value.map(attributeOf) };
  if (value instanceof Set) {
    const members = [...value];
    return typeof members[0] === 'number' ? { NS: members.map(String) } : { SS: members.map(String) };
  }
  return { M: asItem(value as Record<string, unknown>) };
}

function keyOf(item: Item | undefined): Item | undefined {
  if (!item?.PK || !item.SK) return undefined;
  return { PK: item.PK, SK: item.SK };
}

/** A Query's partition, for naming what it read when it found nothing. */
function pkOf(input: CommandArgs['input']): Item | undefined {
  const pk = input.ExpressionAttributeValues?.[':pk'];
  return pk ? { PK: pk, SK: { S: '' } } : undefined;
}
