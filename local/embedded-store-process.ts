/**
 * The embedded store's own process: dynalite on LevelDB in `<data>/db`, started by local/store.ts. dynalite
 * re-throws a LevelDB error (corruption, a full disk) inside its request handler, which ends whatever process
 * it runs in; here that is this process only. It reports the reason to the server, which restarts it, so
 * the server stays up and the request that met the fault gets an error.
 *
 * argv: <path> <port>. Messages to the parent: { type: 'listening', port }, { type: 'failed', message } (the
 * database cannot be opened), { type: 'fault', message } (an error ended this process).
 */
import type { AddressInfo } from 'node:net';
import { ClassicLevel } from 'classic-level';
import dynalite from 'dynalite';

type Message =
  | { type: 'listening'; port: number }
  | { type: 'failed'; message: string; locked: boolean }
  | { type: 'fault'; message: string };

const [path = '', port = '0'] = process.argv.slice(2);
const send = (message: Message) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });

/** LevelDB's own words: level wraps them as the cause of a generic "not open" error. */
function reason(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string } } | undefined;
  return [e?.message, e?.cause?.message].filter(Boolean).join(': ') || String(error);
}

async function fatal(error: unknown) {
  await send({ type: 'fault', message: reason(error) });
  process.exit(1);
}
process.on('uncaughtException', (error) => void fatal(error));
process.on('unhandledRejection', (error) => void fatal(error));
// The server went away without closing this process: nothing else may hold the database.
process.on('disconnect', () => process.exit(0));

// dynalite opens the database lazily and reports a failed open as "Database is closed": open it once here
// to learn why (held lock, corruption, permissions).
// A lock is retried for a few seconds: the store process of a server killed a moment ago (kill -9) is
// still on its way out.
for (let attempt = 1; ; attempt++) {
  try {
    const probe = new ClassicLevel(path);
    await probe.open();
    await probe.close();
    break;
  } catch (error) {
    const message = reason(error);
    const locked = /\block\b/i.test(message);
    if (locked && attempt < 30) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    await send({ type: 'failed', message, locked });
    process.exit(3);
  }
}

const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(Number(port), '127.0.0.1', () => {
  void send({ type: 'listening', port: (server.address() as AddressInfo).port });
});
// The server stops this process over IPC, after its own requests are done. A SIGINT or SIGTERM sent to the
// whole process group (Ctrl-C, `kill -TERM -<pgid>`) is the server's to handle: stopping here first would
// fail its last writes and read as a fault. A dead server closes the IPC channel ('disconnect' above).
const stop = () => {
  // dynalite's close() closes the database too.
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
};
process.on('message', (message: { type?: string }) => {
  if (message?.type === 'close') stop();
});
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
