import type { Globals } from './args.ts';
import type { StreamLike } from './format.ts';
import type { Client } from './http.ts';

/**
 * What every CLI command gets: the API client, the global flags, the streams and the clock. Its own module
 * so commands.ts (which dispatches to doctor.ts) and doctor.ts (which takes a Context) import no loop.
 */
export interface Context {
  client: Client;
  globals: Globals;
  stdout: StreamLike;
  stderr: StreamLike;
  env: NodeJS.ProcessEnv;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Runs `onStop` on Ctrl-C while a command waits; returns the function that unregisters it. */
  onInterrupt: (onStop: () => void) => () => void;
  newIdempotencyKey: () => string;
}
