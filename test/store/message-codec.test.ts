import { describe, expect, it } from 'vitest';
import { messageHash, newMessageId, type StoredMessage } from '../../src/memory/messages.js';
import { decodeList, encodeList } from '../../src/store/message-codec.js';

const stored = (id: string, role: string, content: string, at: number): StoredMessage => ({
  id,
  message: { role, content },
  tokens: 5,
  hash: messageHash({ role, content }),
  at,
});

describe('the stored message codec', () => {
  it('writes ids from this process as counter steps, and reads the same ids back', () => {
    const list = ['user', 'assistant', 'user', 'assistant'].map((role, index) => stored(newMessageId(), role, `m${index}`, 1_000 + index));
    const encoded = encodeList(list);
    expect(encoded[0]![0]).toBe(list[0]!.id);
    expect(encoded.slice(1).map((tuple) => tuple[0])).toEqual([1, 1, 1]);
    expect(decodeList(encoded)).toEqual(list);
  });

  it('writes ids of other shapes whole: another instance, an import, anything a client chose', () => {
    const list = [
      stored('AAAAAAAA0', 'user', 'a', 1),
      stored('BBBBBBBBz', 'assistant', 'b', 2),
      stored('imported-message-17', 'user', 'c', 3),
      stored('BBBBBBBB10', 'assistant', 'd', 4),
      stored('BBBBBBBB0z', 'user', 'not canonical base 36', 5),
    ];
    const encoded = encodeList(list);
    expect(encoded.map((tuple) => tuple[0])).toEqual(['AAAAAAAA0', 'BBBBBBBBz', 'imported-message-17', 'BBBBBBBB10', 'BBBBBBBB0z']);
    expect(decodeList(encoded)).toEqual(list);
  });

  it('codes the common roles as numbers and keeps any other message whole', () => {
    const tool = { id: 'x1', message: { role: 'tool', tool_call_id: 'c1', content: 'in transit' }, tokens: 4, hash: 'h', at: 9 };
    const list = [stored('u1', 'user', 'q', 1), stored('a1', 'assistant', 'r', 2), stored('s1', 'system', 's', 3), tool];
    const encoded = encodeList(list);
    expect(encoded.map((tuple) => tuple[4])).toEqual([1, 2, 3, 0]);
    expect(encoded[3]![5]).toEqual(tool.message);
    expect(decodeList(encoded)).toEqual(list);
  });

  it('reads 22-character hashes written by earlier versions as the 12-character hashes used now', () => {
    const message = { role: 'user', content: 'My order #7890 is stuck' };
    const long = `${messageHash(message)}ABCDEFGHIJ`;
    const [read] = decodeList([['old1', 9, long, 1_700_000_000_000, 1, message.content]]);
    expect(read!.hash).toBe(messageHash(message));
    expect(messageHash(message)).toHaveLength(12);
  });

  it('spends under 30 bytes per plain message beyond its text', () => {
    const list = Array.from({ length: 40 }, (_, index) =>
      stored(
        newMessageId(),
        index % 2 === 0 ? 'user' : 'assistant',
        `Turn ${index}: where is order 7890?`,
        1_700_000_000_000 + index * 1_500,
      ),
    );
    const text = list.reduce((total, item) => total + JSON.stringify(item.message.content).length, 0);
    const perMessage = (JSON.stringify(encodeList(list)).length - text) / list.length;
    expect(perMessage).toBeLessThan(30);
  });
});
