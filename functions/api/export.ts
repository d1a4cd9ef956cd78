import { stringify } from 'csv-stringify/sync';
import { describeRequester } from '#shared/registry/requester.ts';
import type { AuditEvent, Deployment } from '#shared/types.ts';

/**
 * The audit export: every event of the deployments of a window, one row (CSV) or line (NDJSON) per event, in
 * the order they happened, each with the deployment it belongs to.
 */

export type ExportFormat = 'csv' | 'ndjson';

export const EXPORT_MEDIA_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson',
};

const COLUMNS = [
  'at',
  'event',
  'deploymentId',
  'application',
  'environment',
  'kind',
  'status',
  'requester',
  'reason',
  'ref',
  'resolvedCommit',
  'buildOutputSha256',
  'requestedAt',
  'finishedAt',
  'detail',
] as const;

type Row = Record<(typeof COLUMNS)[number], string>;

/** The events of each deployment (already in time order), merged into one timeline. */
export function exportRows(deployments: { deployment: Deployment; events: AuditEvent[] }[]): Row[] {
  const rows = deployments.flatMap(({ deployment: d, events }) =>
    events.map(
      (e): Row => ({
        at: e.at,
        event: e.type,
        deploymentId: d.deploymentId,
        application: d.application,
        environment: d.environment,
        kind: d.kind ?? 'deploy',
        status: d.status,
        requester: describeRequester(d.requester),
        reason: d.reason ?? '',
        ref: d.ref ?? '',
        resolvedCommit: d.buildOutput?.resolvedCommit ?? d.resolvedCommit ?? '',
        buildOutputSha256: d.buildOutput?.sha256 ?? '',
        requestedAt: d.requestedAt,
        finishedAt: d.finishedAt ?? '',
        detail: JSON.stringify(e.detail),
      }),
    ),
  );
  // Array.prototype.sort is stable: events of one deployment at the same instant keep their workflow order.
  return rows.sort((a, b) => a.at.localeCompare(b.at));
}

export function renderExport(format: ExportFormat, rows: Row[]): string {
  if (format === 'ndjson') {
    return rows.map((row) => `${JSON.stringify({ ...row, detail: JSON.parse(row.detail) })}\n`).join('');
  }
  return stringify(
    rows.map((row) => COLUMNS.map((column) => neutralise(row[column]))),
    { header: true, columns: [...COLUMNS], quoted_string: true },
  );
}

/**
 * A cell a spreadsheet would read as a formula (CSV injection: a reason such as `=HYPERLINK(...)`) gets a
 * leading apostrophe, as OWASP advises; the text is otherwise unchanged, and NDJSON carries it as it is.
 */
function neutralise(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}
