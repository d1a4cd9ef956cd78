/**
 * chat/: the Slack integration's storage: its ports (this file) and local mode's in-memory store. The
 * DynamoDB store is aws/slack-store.ts, the cores and the HTTP poster are in functions/slack/.
 * May import: nothing of functions/shared.
 */

/**
 * Where a chat-initiated deployment reports back: Slack's `response_url`, the channel, and what the notifier
 * has already posted. The URL is a bearer credential (anyone holding it can post into the channel), so it
 * lives only on this item: never on the deployment record, in audit events, API responses or logs. The URL
 * goes when the deployment ends or when it expires, whichever comes first. The item itself stays a little
 * longer in two cases, without the URL and bounded by `keepUntil`: finished (so nothing posts the result
 * twice), and, with a bot token configured, kept so that progress goes on through the bot.
 */
export interface ChatReply {
  deploymentId: string;
  /** Absent once the URL expired and the item was kept for the bot, or the item finished. */
  responseUrl?: string;
  teamId: string;
  userId: string;
  channelId?: string;
  createdAt: string;
  /** Slack accepts posts to a response_url for 30 minutes; after this instant the URL is useless. */
  expiresAt: string;
  /** Set when the item outlives its URL (kept for the bot, or finished): the sweep deletes it after this. */
  keepUntil?: string;
  /** The rank of the last milestone posted (0: none). Posts only ever move forward. */
  stage: number;
  /** How many messages were posted (Slack allows 5 per response_url). */
  posts: number;
}

export interface ChatStore {
  /**
   * Claims one signed request (identified by a hash of its signature) for a deployment id. A replay of the
   * same request gets the id the first one claimed.
   */
  claimRequest(
    signatureHash: string,
    deploymentId: string,
    at: string,
  ): Promise<{ claimed: true } | { claimed: false; deploymentId: string }>;
  /** Stores the reply item unless one exists for the deployment (a resumed request keeps its progress). */
  putReply(reply: ChatReply): Promise<void>;
  getReply(deploymentId: string): Promise<ChatReply | undefined>;
  /**
   * Conditionally advances to `stage`: only forward, only while fewer than `maxPosts` were posted and before
   * the item expires. Returns the updated item when this call won the right to post, otherwise undefined.
   */
  claimPost(
    deploymentId: string,
    stage: number,
    limits: { maxPosts: number; now: string },
  ): Promise<ChatReply | undefined>;
  /**
   * The bot's claim: only forward, and while the item exists (the bot has no per-URL post limit and no
   * 30-minute window). Returns the updated item when this call won the right to post.
   */
  claimBotPost(deploymentId: string, stage: number): Promise<ChatReply | undefined>;
  /**
   * Keeps an item whose URL expired for the bot: drops the URL and moves the item's sweep instant to
   * `keepUntil`. A no-op when the item is gone, or (with `seenExpiresAt`) when it changed since it was read
   * (a click re-armed it meanwhile).
   */
  retainReply(deploymentId: string, keepUntil: string, seenExpiresAt?: string): Promise<void>;
  /**
   * The result was posted (or cannot be any more): drops the URL and marks the item done at `stage` until
   * `keepUntil`, when the sweep deletes it. Meanwhile nothing posts for it again and no click re-arms it (a
   * redelivered final event would otherwise post the result twice). A no-op when the item is gone.
   */
  finishReply(deploymentId: string, stage: number, keepUntil: string): Promise<void>;
  /**
   * Replaces the item with `reply` (a fresh response_url from an approval click), unless the item already
   * moved past `reply.stage`: one conditional write, so a result posted meanwhile is never followed by an
   * item that would post it again. Returns whether it was written.
   */
  rearmReply(reply: ChatReply): Promise<boolean>;
  /** Deletes the item; with `seenExpiresAt`, only if it was not re-armed since it was read. */
  deleteReply(deploymentId: string, seenExpiresAt?: string): Promise<void>;
  /**
   * Deployment ids whose items are due for the sweep before `now` (their URL expired, or their `keepUntil`
   * passed; oldest first, at most `limit`).
   */
  listExpiredReplies(now: string, limit: number): Promise<string[]>;
}

/** A Slack message as response_url and the slash-command response take it (Block Kit). */
export interface SlackMessage {
  response_type: 'ephemeral' | 'in_channel';
  /**
   * Progress messages add to the channel rather than replacing the command's message; the answer to an
   * approval button replaces the message that carried it (its buttons go).
   */
  replace_original?: boolean;
  /** Plain text shown in notifications and where blocks cannot be rendered. */
  text: string;
  blocks: Record<string, unknown>[];
}

export interface PostOutcome {
  outcome: 'posted' | 'failed';
  attempts: number;
  /** The last HTTP status, when there was a response. */
  status?: number;
  /** The last failure's kind (timeout, network, http); never its message, which could quote the URL. */
  failure?: string;
}

/** Posts to a response_url. Times out, retries with backoff, and never throws. */
export interface ResponsePoster {
  post(responseUrl: string, message: SlackMessage): Promise<PostOutcome>;
}

/**
 * Posts as the Slack app's bot user (`chat.postMessage`) into a channel, where no response_url is live any
 * more. The token is a credential: it never leaves the poster (no log line, no stored item, no outcome).
 */
export interface BotPoster {
  /**
   * Whether a bot token is configured (read lazily: only the rare paths past a URL's expiry ask); undefined
   * when that cannot be told now (the secret could not be read), so that nothing is given up for good.
   */
  configured(): Promise<boolean | undefined>;
  /** Times out, retries transient failures, and never throws. */
  post(channelId: string, message: SlackMessage): Promise<PostOutcome>;
}

/** Links a message offers (the console or local server): optional, so a message without them still works. */
export interface ChatLinks {
  /** Where a person can follow the deployment. */
  status(deploymentId: string): string | undefined;
}
