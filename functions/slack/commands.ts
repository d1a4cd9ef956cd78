/**
 * The grammar of the slash command (the command name itself, e.g. `/deploy`, is configured in Slack):
 *
 *   /deploy <app> <env> [ref] [-- reason...]
 *   /deploy promote <app> <from> <to> [-- reason...]
 *   /deploy rollback <app> <env> <release> [-- reason...]
 *   /deploy status <id>
 *   /deploy history <app> <env>
 *   /deploy help
 *
 * The reason follows `--`, so `/deploy app env fix the bug` is an error rather than a deploy of ref `fix`.
 * Parsing only splits words: names, refs and reasons are judged by the one validation core afterwards.
 */

export type ChatCommand =
  | { kind: 'deploy'; application: string; environment: string; ref?: string; reason?: string }
  | { kind: 'status'; deploymentId: string }
  | { kind: 'history'; application: string; environment: string }
  | { kind: 'promote'; application: string; from: string; to: string; reason?: string }
  | { kind: 'rollback'; application: string; environment: string; release: number; reason?: string }
  | { kind: 'help' }
  | { kind: 'invalid'; message: string };

/** Longer than any command a person types; a cap keeps a pasted novel out of the parser and the audit. */
export const MAX_COMMAND_LENGTH = 1_000;

export const USAGE = [
  '`/deploy <app> <env> [ref] [-- reason]`',
  '`/deploy promote <app> <from> <to> [-- reason]`',
  '`/deploy rollback <app> <env> <release> [-- reason]`',
  '`/deploy status <id>`',
  '`/deploy history <app> <env>`',
  '`/deploy help`',
];

/** Quote pairs a reason may be wrapped in; Slack clients often turn straight quotes into curly ones. */
const QUOTES: Record<string, string> = { '"': '"', "'": "'", '\u201c': '\u201d', '\u2018': '\u2019' };
const OPENING_QUOTES = new Set(Object.keys(QUOTES));
const REASON_MARKER = /(?:^|\s)--(?:\s|$)/;
/** Release numbers start at 1; nine digits keep the number exact and far beyond any real history. */
const RELEASE = /^[1-9]\d{0,8}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

const invalid = (message: string): ChatCommand => ({ kind: 'invalid', message });
const withReason = (reason: string | undefined) => (reason !== undefined && reason !== '' ? { reason } : {});

/** Slack escapes `&`, `<` and `>` in the text it sends; the command means the characters themselves. */
export function unescapeSlackText(text: string): string {
  return text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

function unquote(text: string): string {
  const first = text[0] ?? '';
  const close = QUOTES[first];
  if (close !== undefined && text.length >= 2 && text.endsWith(close)) return text.slice(1, -1).trim();
  return text;
}

export function parseCommand(rawText: string): ChatCommand {
  const text = unescapeSlackText(rawText).replaceAll('\u00a0', ' ').trim();
  if (text.length > MAX_COMMAND_LENGTH) {
    return invalid(`the command is longer than ${MAX_COMMAND_LENGTH} characters`);
  }
  if (text === '') return { kind: 'help' };

  const marker = REASON_MARKER.exec(text);
  const head = marker ? text.slice(0, marker.index) : text;
  const reason = marker ? unquote(text.slice(marker.index + marker[0].length).trim()) : undefined;
  const words = head.split(/\s+/).filter((word) => word !== '');
  if (words.some((word) => CONTROL.test(word))) return invalid('the command contains control characters');

  const [first = '', ...rest] = words;
  switch (first.toLowerCase()) {
    case 'help':
      return { kind: 'help' };
    case 'promote': {
      const [application, from, to, ...extra] = rest;
      if (!application || !from || !to || extra.length > 0) {
        return invalid('usage: `/deploy promote <app> <from> <to> [-- reason]`');
      }
      return { kind: 'promote', application, from, to, ...withReason(reason) };
    }
    case 'rollback': {
      const [application, environment, release, ...extra] = rest;
      if (!application || !environment || !release || extra.length > 0) {
        return invalid('usage: `/deploy rollback <app> <env> <release> [-- reason]`');
      }
      if (!RELEASE.test(release)) {
        const target = `${application.slice(0, 63)} ${environment.slice(0, 63)}`;
        return invalid(
          `"${release.slice(0, 40)}" is not a release number (a whole number from 1, as \`/deploy history ${target}\` shows them), e.g. \`/deploy rollback ${target} 41\``,
        );
      }
      return { kind: 'rollback', application, environment, release: Number(release), ...withReason(reason) };
    }
    case 'status': {
      const [deploymentId, ...extra] = rest;
      if (!deploymentId || extra.length > 0 || reason !== undefined)
        return invalid('usage: `/deploy status <id>`');
      return { kind: 'status', deploymentId };
    }
    case 'history': {
      const [application, environment, ...extra] = rest;
      if (!application || !environment || extra.length > 0 || reason !== undefined) {
        return invalid('usage: `/deploy history <app> <env>`');
      }
      return { kind: 'history', application, environment };
    }
  }

  const [application, environment, ref, ...extra] = words;
  if (!application || !environment) {
    return invalid('name an application and an environment: `/deploy <app> <env> [ref] [-- reason]`');
  }
  const quoted = [ref, ...extra].find((word) => word !== undefined && OPENING_QUOTES.has(word[0] ?? ''));
  if (extra.length > 0 || quoted !== undefined) {
    const stray = [ref, ...extra].filter((word) => word !== undefined).join(' ');
    return invalid(
      `unexpected words "${stray.slice(0, 80)}": a reason goes after \`--\`, e.g. \`/deploy ${application} ${environment} -- ${stray.slice(0, 40)}\``,
    );
  }
  return {
    kind: 'deploy',
    application,
    environment,
    ...(ref !== undefined ? { ref } : {}),
    ...withReason(reason),
  };
}
