import { parseArgs } from 'node:util';
import { closestMatch } from 'leven';
import { UsageError } from './errors.ts';
import type { CommandName } from './help.ts';

/** Command-line parsing: argv in, a typed command out, or a UsageError (exit 2) that says what is wrong. */

export interface Globals {
  url: URL;
  json: boolean;
  token?: string;
}

export type HelpCommand = { name: 'help'; topic?: CommandName } | { name: 'version' };
/** What every way of asking for a deployment (deploy, promote, rollback) takes besides its target. */
export interface RequestOptions {
  reason?: string;
  dryRun: boolean;
  overrideFreeze: boolean;
  wait: boolean;
}
export type RequestCommand =
  | ({ name: 'deploy'; application: string; environment: string; ref?: string } & RequestOptions)
  | ({ name: 'promote'; application: string; from: string; to: string } & RequestOptions)
  | ({ name: 'rollback'; application: string; environment: string; release: number } & RequestOptions);
export type RunCommand =
  | RequestCommand
  | { name: 'status'; id: string }
  | { name: 'history'; application: string; environment: string; limit?: number; cursor?: string }
  | { name: 'logs'; id: string; follow: boolean }
  | { name: 'approve' | 'reject'; id: string; reason?: string }
  | { name: 'apps' }
  | { name: 'metrics'; application: string; environment: string; from?: string; to?: string }
  | { name: 'console'; port: number }
  | {
      name: 'doctor';
      application: string;
      environment: string;
      local: boolean;
      drift: boolean;
      registry?: string;
      template?: string;
    };
export type Command = HelpCommand | RunCommand;

/** Help needs no URL, so a broken CROSSDEPLOY_URL cannot stand between a user and `--help`. */
export type Parsed = { command: HelpCommand } | { command: RunCommand; globals: Globals };

const OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  ref: { type: 'string' },
  reason: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'override-freeze': { type: 'boolean' },
  wait: { type: 'boolean' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  follow: { type: 'boolean' },
  local: { type: 'boolean' },
  drift: { type: 'boolean' },
  registry: { type: 'string' },
  template: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  port: { type: 'string' },
} as const;

type OptionName = keyof typeof OPTIONS;
const GLOBAL_OPTIONS: OptionName[] = ['url', 'json', 'token', 'help', 'version'];

const REQUEST_OPTIONS: OptionName[] = ['reason', 'dry-run', 'override-freeze', 'wait'];

const COMMANDS: Record<CommandName, { positionals: string[]; options: OptionName[] }> = {
  deploy: { positionals: ['application', 'environment'], options: ['ref', ...REQUEST_OPTIONS] },
  promote: { positionals: ['application', 'from', 'to'], options: REQUEST_OPTIONS },
  rollback: { positionals: ['application', 'environment', 'release'], options: REQUEST_OPTIONS },
  status: { positionals: ['deployment-id'], options: [] },
  history: { positionals: ['application', 'environment'], options: ['limit', 'cursor'] },
  logs: { positionals: ['deployment-id'], options: ['follow'] },
  approve: { positionals: ['deployment-id'], options: ['reason'] },
  reject: { positionals: ['deployment-id'], options: ['reason'] },
  apps: { positionals: [], options: [] },
  metrics: { positionals: ['application', 'environment'], options: ['from', 'to'] },
  console: { positionals: [], options: ['port'] },
  doctor: {
    positionals: ['application', 'environment'],
    options: ['local', 'drift', 'registry', 'template'],
  },
};

const isCommand = (name: string | undefined): name is CommandName =>
  name !== undefined && Object.hasOwn(COMMANDS, name);

/**
 * The API's ids are ULIDs (26 characters of Crockford base32, case-insensitive): anything else names no
 * deployment, and a path or `..` could bend the URL. A typo is a usage error, not a 404 from the server.
 */
const DEPLOYMENT_ID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** The closest of `candidates` to a misspelt `name`, close enough to be the likely intent. */
export function suggest(name: string, candidates: readonly string[]): string | undefined {
  // Two edits, or a third of the name for longer ones: a transposition is two, and "xyzzy" matches nothing.
  return closestMatch(name, candidates, { maxDistance: Math.max(2, Math.floor(name.length / 3)) });
}

export const didYouMean = (name: string, candidates: readonly string[]) => {
  const match = suggest(name, candidates);
  return match === undefined ? '' : `; did you mean ${JSON.stringify(match)}?`;
};
export const HISTORY_LIMIT = { min: 1, max: 100 } as const;

export function defaultUrl(env: NodeJS.ProcessEnv): string {
  if (env.CROSSDEPLOY_URL) return env.CROSSDEPLOY_URL;
  return `http://127.0.0.1:${env.PORT || '3000'}`;
}

export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): Parsed {
  let values: Partial<Record<OptionName, string | boolean>>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    // Node's messages go on to suggest `--` quoting; the first sentence is the useful part.
    const message = (error as Error).message.split(/\.\s/)[0] ?? 'invalid arguments';
    throw new UsageError(message.replace(/^Unknown option/, 'unknown option'), commandIn(argv));
  }

  const [first, ...args] = positionals;
  if (values.version) return { command: { name: 'version' } };
  if (first === 'help') {
    if (args.length > 1 || (args[0] !== undefined && !isCommand(args[0]))) {
      throw new UsageError(`no help for ${JSON.stringify(args.join(' '))}`);
    }
    return { command: isCommand(args[0]) ? { name: 'help', topic: args[0] } : { name: 'help' } };
  }
  if (first === undefined) {
    if (values.help) return { command: { name: 'help' } };
    throw new UsageError('no command given');
  }
  if (!isCommand(first)) {
    throw new UsageError(
      `unknown command ${JSON.stringify(first)}${didYouMean(first, [...Object.keys(COMMANDS), 'help'])}`,
    );
  }
  const name = first;
  if (values.help) return { command: { name: 'help', topic: name } };

  const spec = COMMANDS[name];
  for (const option of Object.keys(values) as OptionName[]) {
    if (!GLOBAL_OPTIONS.includes(option) && !spec.options.includes(option)) {
      throw new UsageError(`--${option} is not an option of \`${name}\``, name);
    }
  }
  if (args.length !== spec.positionals.length) {
    const expected = spec.positionals.map((p) => `<${p}>`).join(' ') || 'no arguments';
    const problem = args.length < spec.positionals.length ? 'missing arguments' : 'too many arguments';
    throw new UsageError(`${problem}: \`${name}\` takes ${expected}`, name);
  }
  for (const [i, arg] of args.entries()) {
    if (arg.trim() === '') throw new UsageError(`<${spec.positionals[i]}> must not be empty`, name);
  }

  const str = (option: OptionName) =>
    typeof values[option] === 'string' ? (values[option] as string) : undefined;
  const flag = (option: OptionName) => values[option] === true;
  const requestOptions = (): RequestOptions => ({
    ...(str('reason') !== undefined ? { reason: str('reason') } : {}),
    dryRun: flag('dry-run'),
    overrideFreeze: flag('override-freeze'),
    wait: flag('wait'),
  });
  const command = ((): RunCommand => {
    switch (name) {
      case 'deploy':
        return {
          name,
          application: args[0] as string,
          environment: args[1] as string,
          ...(str('ref') !== undefined ? { ref: str('ref') } : {}),
          ...requestOptions(),
        };
      case 'promote':
        return {
          name,
          application: args[0] as string,
          from: args[1] as string,
          to: args[2] as string,
          ...requestOptions(),
        };
      case 'rollback':
        return {
          name,
          application: args[0] as string,
          environment: args[1] as string,
          release: parseRelease(args[2] as string),
          ...requestOptions(),
        };
      case 'status':
      case 'logs': {
        const id = (args[0] as string).toUpperCase();
        if (!DEPLOYMENT_ID.test(id)) {
          throw new UsageError(`${JSON.stringify(id)} is not a deployment id`, name);
        }
        return name === 'status' ? { name, id } : { name, id, follow: flag('follow') };
      }
      case 'approve':
      case 'reject': {
        const id = args[0] as string;
        if (!DEPLOYMENT_ID.test(id)) {
          throw new UsageError(`${JSON.stringify(id)} is not a deployment id`, name);
        }
        return { name, id, ...(str('reason') !== undefined ? { reason: str('reason') } : {}) };
      }
      case 'history': {
        const limit = str('limit');
        return {
          name,
          application: args[0] as string,
          environment: args[1] as string,
          ...(limit !== undefined ? { limit: parseLimit(limit) } : {}),
          ...(str('cursor') !== undefined ? { cursor: str('cursor') } : {}),
        };
      }
      case 'apps':
        return { name };
      case 'console': {
        const port = str('port') ?? '8001';
        if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
          throw new UsageError('--port must be a port number (0 picks a free one)', name);
        }
        return { name, port: Number(port) };
      }
      case 'metrics': {
        // The API checks the dates (and answers a problem the CLI prints); here they only travel.
        const from = str('from');
        const to = str('to');
        return {
          name,
          application: args[0] as string,
          environment: args[1] as string,
          ...(from !== undefined ? { from } : {}),
          ...(to !== undefined ? { to } : {}),
        };
      }
      case 'doctor': {
        const registry = str('registry');
        if (registry !== undefined && !flag('local')) {
          throw new UsageError(
            '--registry is an option of `doctor --local` (the API uses its bundled registry)',
            name,
          );
        }
        const template = str('template');
        if (template !== undefined && !flag('local')) {
          throw new UsageError('--template is an option of `doctor --local` (the file is read here)', name);
        }
        return {
          name,
          application: args[0] as string,
          environment: args[1] as string,
          local: flag('local'),
          drift: flag('drift'),
          ...(registry !== undefined ? { registry } : {}),
          ...(template !== undefined ? { template } : {}),
        };
      }
    }
  })();
  return { command, globals: globals(values, env) };
}

/** Release numbers start at 1 and have no gaps; `41`, not `v41` or `#41`, names one. */
function parseRelease(text: string): number {
  const release = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(release >= 1)) {
    throw new UsageError(
      `<release> must be a release number (a whole number from 1, as \`history\` shows it), not ${JSON.stringify(text)}`,
      'rollback',
    );
  }
  return release;
}

function parseLimit(text: string): number {
  const limit = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(limit >= HISTORY_LIMIT.min && limit <= HISTORY_LIMIT.max)) {
    throw new UsageError(
      `--limit must be a whole number from ${HISTORY_LIMIT.min} to ${HISTORY_LIMIT.max}`,
      'history',
    );
  }
  return limit;
}

function globals(values: Partial<Record<OptionName, string | boolean>>, env: NodeJS.ProcessEnv): Globals {
  const raw = typeof values.url === 'string' ? values.url : defaultUrl(env);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${JSON.stringify(raw)} is not a URL (--url or CROSSDEPLOY_URL)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`the crossdeploy URL must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username || url.password) {
    // Credentials in a URL end up in shell history and error messages; there is --token for that.
    throw new UsageError(
      'the crossdeploy URL must not contain credentials; use --token or CROSSDEPLOY_API_TOKEN',
    );
  }
  if (url.search || url.hash) throw new UsageError('the crossdeploy URL must not have a query or fragment');
  const token = typeof values.token === 'string' ? values.token : env.CROSSDEPLOY_API_TOKEN;
  return { url, json: values.json === true, ...(token ? { token } : {}) };
}

/** The command word in raw argv, so a parse error can point at that command's help. */
function commandIn(argv: readonly string[]): string | undefined {
  return argv.find((arg) => isCommand(arg));
}
