import type { ChatMessage } from './messages.js';
import type { TurnState } from './transcript.js';

export interface AssembledMessage {
  message: ChatMessage;
  tokens: number;
  /** Which part of the prompt it came from, for the preview and accounting. */
  block: 'instructions' | 'history' | 'new';
}

export interface AssembledPrompt {
  messages: AssembledMessage[];
  /** Tokens of the prompt as assembled. */
  sentTokens: number;
  /** Tokens the full stored history plus the new messages would have cost. */
  baselineTokens: number;
}

/**
 * The outbound prompt: the client's instructions first (byte-identical turn to
 * turn, so provider prefix caches keep hitting), then the kept history, then
 * what is new in this request.
 */
export function assemble(state: TurnState, countInstruction: (message: ChatMessage) => number): AssembledPrompt {
  const messages: AssembledMessage[] = [
    ...state.instructions.map((message) => ({ message, tokens: countInstruction(message), block: 'instructions' as const })),
    ...state.history.map((stored) => ({ message: stored.message, tokens: stored.tokens, block: 'history' as const })),
    ...state.fresh.map((stored) => ({ message: stored.message, tokens: stored.tokens, block: 'new' as const })),
  ];
  const sentTokens = messages.reduce((sum, entry) => sum + entry.tokens, 0);
  return { messages, sentTokens, baselineTokens: sentTokens };
}
