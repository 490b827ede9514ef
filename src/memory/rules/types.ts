import type { ChatMessage, StoredMessage } from '../messages.js';

/** A history message on its way into the prompt; rules may replace `message` (and then `tokens`). */
export interface WindowEntry {
  index: number;
  stored: StoredMessage;
  message: ChatMessage;
  tokens: number;
  /** Whole turns after this one (0 = the latest turn); a turn starts at a user message. */
  turnsAgo: number;
}

export interface RuleContext {
  countMessage(message: ChatMessage): number;
}
