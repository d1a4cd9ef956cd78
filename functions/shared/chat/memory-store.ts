import type { ChatReply, ChatStore } from './ports.ts';

/**
 * Local mode's chat store: in memory only, so a response_url never reaches the disk of a developer's
 * machine. A restart forgets pending replies and replay claims (Slack's URLs and signatures expire within
 * minutes anyway).
 */
export class MemoryChatStore implements ChatStore {
  private readonly requests = new Map<string, string>();
  private readonly replies = new Map<string, ChatReply>();

  async claimRequest(signatureHash: string, deploymentId: string, _at: string) {
    const earlier = this.requests.get(signatureHash);
    if (earlier !== undefined) return { claimed: false as const, deploymentId: earlier };
    this.requests.set(signatureHash, deploymentId);
    return { claimed: true as const };
  }

  async putReply(reply: ChatReply) {
    if (!this.replies.has(reply.deploymentId)) this.replies.set(reply.deploymentId, { ...reply });
  }

  async rearmReply(reply: ChatReply) {
    const current = this.replies.get(reply.deploymentId);
    if (current && current.stage > reply.stage) return false;
    this.replies.set(reply.deploymentId, { ...reply });
    return true;
  }

  async getReply(deploymentId: string) {
    const reply = this.replies.get(deploymentId);
    return reply ? { ...reply } : undefined;
  }

  async claimPost(deploymentId: string, stage: number, limits: { maxPosts: number; now: string }) {
    const reply = this.replies.get(deploymentId);
    if (!reply || reply.stage >= stage || reply.posts >= limits.maxPosts || reply.expiresAt <= limits.now) {
      return undefined;
    }
    reply.stage = stage;
    reply.posts += 1;
    return { ...reply };
  }

  async claimBotPost(deploymentId: string, stage: number) {
    const reply = this.replies.get(deploymentId);
    if (!reply || reply.stage >= stage) return undefined;
    reply.stage = stage;
    reply.posts += 1;
    return { ...reply };
  }

  async retainReply(deploymentId: string, keepUntil: string, seenExpiresAt?: string) {
    const reply = this.replies.get(deploymentId);
    if (!reply || (seenExpiresAt && reply.expiresAt !== seenExpiresAt)) return;
    delete reply.responseUrl;
    reply.keepUntil = keepUntil;
  }

  async finishReply(deploymentId: string, stage: number, keepUntil: string) {
    const reply = this.replies.get(deploymentId);
    if (!reply) return;
    delete reply.responseUrl;
    reply.stage = stage;
    reply.keepUntil = keepUntil;
  }

  async deleteReply(deploymentId: string, seenExpiresAt?: string) {
    const reply = this.replies.get(deploymentId);
    if (reply && seenExpiresAt && reply.expiresAt !== seenExpiresAt) return;
    this.replies.delete(deploymentId);
  }

  async listExpiredReplies(now: string, limit: number) {
    const due = (reply: ChatReply) => reply.keepUntil ?? reply.expiresAt;
    return [...this.replies.values()]
      .filter((reply) => due(reply) < now)
      .sort((a, b) => due(a).localeCompare(due(b)))
      .slice(0, limit)
      .map((reply) => reply.deploymentId);
  }

  /** Everything held, for tests that check where a response_url may be. */
  snapshot(): { requests: [string, string][]; replies: ChatReply[] } {
    return { requests: [...this.requests], replies: [...this.replies.values()].map((r) => ({ ...r })) };
  }
}
