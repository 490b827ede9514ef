import type { RuleContext, WindowEntry } from './types.js';

const MEDIA = new Set(['image_url', 'input_image', 'input_audio', 'file', 'input_file']);

/**
 * Images, audio and files older than N turns become one-line text stand-ins: a base64 image is
 * resent in full while it is recent, not every turn for as long as the window holds its message.
 * The stored message keeps the part; only the prompt is lighter.
 */
export function stubMedia(entries: WindowEntry[], rule: { older_than_turns: number }, context: RuleContext): WindowEntry[] {
  return entries.map((entry) => {
    const content = entry.message.content;
    if (entry.turnsAgo < rule.older_than_turns || !Array.isArray(content) || !content.some(isMedia)) return entry;
    const message = {
      ...entry.message,
      content: content.map((part) => (isMedia(part) ? { type: 'text', text: `[${kind(part)} omitted by mnemo]` } : part)),
    };
    return { ...entry, message, tokens: context.countMessage(message) };
  });
}

function isMedia(part: unknown): boolean {
  return part !== null && typeof part === 'object' && MEDIA.has((part as { type?: string }).type ?? '');
}

function kind(part: unknown): string {
  const type = (part as { type: string }).type;
  return type.includes('image') ? 'image' : type.includes('audio') ? 'audio' : 'file';
}
