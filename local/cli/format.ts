import { styleText } from 'node:util';

/** Small, pure formatting helpers shared by every view. */

export type Format = Parameters<typeof styleText>[0];
export type Paint = (format: Format, text: string) => string;

/** Colour is decided once per stream by the caller; rendering code only asks `paint` for it. */
export const painter = (enabled: boolean): Paint =>
  enabled ? (format, text) => styleText(format, text, { validateStream: false }) : (_format, text) => text;

export interface StreamLike {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** The usual conventions: NO_COLOR wins, FORCE_COLOR forces, a dumb terminal and pipes get none. */
export function colorEnabled(stream: StreamLike, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** Milliseconds between two ISO timestamps, or undefined when either is missing or unreadable. */
export function between(from: string | undefined, to: string | undefined): number | undefined {
  if (!from || !to) return undefined;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `2025-01-31 14:05:09` in the given time zone (the machine's by default). */
export function formatTime(iso: string, timeZone?: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const parts = new Intl.DateTimeFormat('en-CA', {
    ...(timeZone ? { timeZone } : {}),
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(date);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}:${part('second')}`;
}

const SHA = /^[0-9a-f]{40}$/i;
export const shortSha = (value: string) => (SHA.test(value) ? value.slice(0, 7) : value);

/** `main@1a2b3c4`: the requested ref and, once the build resolved it, the commit. */
export function refAndCommit(ref: string | undefined, commit: string | undefined): string {
  const shownRef = ref ? shortSha(ref) : '';
  const shownCommit = commit ? shortSha(commit) : '';
  if (!shownCommit || shownCommit === shownRef) return shownRef || '-';
  return shownRef ? `${shownRef}@${shownCommit}` : shownCommit;
}

/** One short word or two for who asked, e.g. `local:alice`, `role/Deployer`, `slack:bob`. */
export function shortRequester(requester: Record<string, unknown> | undefined): string {
  if (!requester) return '-';
  const text = (key: string) => (typeof requester[key] === 'string' ? (requester[key] as string) : undefined);
  switch (requester.type) {
    case 'local':
      return `local:${text('user') ?? '?'}`;
    case 'iam': {
      const principal = text('principal') ?? text('arn') ?? '?';
      // arn:aws:iam::123456789012:role/Deployer -> role/Deployer; the account is rarely what one scans for.
      return principal.slice(principal.lastIndexOf(':') + 1) || principal;
    }
    case 'slack':
      return `slack:${text('userName') ?? text('userId') ?? '?'}`;
    case 'schedule':
      return `schedule:${text('scheduleName') ?? '?'}`;
    default:
      return String(requester.type ?? '-');
  }
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

export interface Cell {
  text: string;
  format?: Format;
}

/** A left-aligned table; cells are padded before they are painted so colour never skews the columns. */
export function table(headers: string[], rows: (string | Cell)[][], paint: Paint): string[] {
  const cells = rows.map((row) => row.map((cell) => (typeof cell === 'string' ? { text: cell } : cell)));
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((row) => row[i]?.text.length ?? 0)),
  );
  const line = (row: Cell[]) =>
    row
      .map((cell, i) => {
        const padded = i === row.length - 1 ? cell.text : cell.text.padEnd(widths[i] ?? 0);
        return cell.format ? paint(cell.format, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return [paint('bold', line(headers.map((text) => ({ text })))), ...cells.map(line)];
}

export const STATUS_FORMAT: Record<string, Format> = {
  SUCCEEDED: 'green',
  FAILED: 'red',
  REJECTED: 'red',
  CANCELLED: 'yellow',
  SUPERSEDED: 'yellow',
  SKIPPED: 'yellow',
  RUNNING: 'cyan',
  QUEUED: 'cyan',
};
