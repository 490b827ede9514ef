import { describe, expect, it } from 'vitest';
import { applyRules, type WindowEntry } from '../../src/memory/rules/index.js';
import { a, call, result, stored, tokenizer, u } from './helpers.js';
import type { ChatMessage } from '../../src/memory/messages.js';

const context = { countMessage: (message: ChatMessage) => tokenizer.countMessage(message, 'gpt-4o') };
function entries(messages: ChatMessage[], turnsAgo: number[]): WindowEntry[] {
  return messages.map((message, index) => {
    const item = stored(message, index);
    return { index, stored: item, message, tokens: item.tokens, turnsAgo: turnsAgo[index]! };
  });
}
const contents = (list: WindowEntry[]) => list.map((entry) => entry.message.content);

describe('pruning rules', () => {
  it('drop_matching removes small talk, case-insensitively, but never tool calls', () => {
    const list = entries([u('Thanks!'), a("You're welcome"), u('Where is order 7890?'), call('c1')], [2, 2, 1, 1]);
    const pruned = applyRules(
      list,
      [{ kind: 'drop_matching', patterns: ['thanks!?', "you're welcome\\.?"], roles: ['user', 'assistant'] }],
      context,
    );
    expect(contents(pruned)).toEqual(['Where is order 7890?', null]);
  });

  it('stub_tool_results replaces old results with a one-line stub naming the call', () => {
    const list = entries(
      [u('q'), call('c1'), result('c1', 'big payload '.repeat(100)), u('q2'), call('c2', 'weather', '{}'), result('c2', 'sunny')],
      [2, 2, 2, 1, 1, 1],
    );
    const pruned = applyRules(list, [{ kind: 'stub_tool_results', older_than_turns: 2 }], context);
    expect(pruned[2]!.message.content).toBe('[result of lookup_order({"order_id":"7890"}) omitted by mnemo]');
    expect(pruned[2]!.tokens).toBeLessThan(list[2]!.tokens);
    expect(pruned[5]!.message.content).toBe('sunny');
    expect(pruned).toHaveLength(6);
  });

  it('truncate cuts a long message to max_tokens with a marker', () => {
    const list = entries([u('word '.repeat(1_000))], [0]);
    const [cut] = applyRules(list, [{ kind: 'truncate', max_tokens: 100, marker: ' [cut]' }], context);
    expect(cut!.tokens).toBeLessThanOrEqual(100);
    expect(String(cut!.message.content).endsWith(' [cut]')).toBe(true);
  });

  it('role_limit keeps the newest N of a role; older tool results become stubs', () => {
    const list = entries([u('a'), u('b'), u('c'), call('c1'), result('c1', 'r1'), call('c2'), result('c2', 'r2')], [3, 2, 1, 1, 1, 0, 0]);
    expect(contents(applyRules(list, [{ kind: 'role_limit', role: 'user', max_messages: 1 }], context))).toEqual([
      'c',
      null,
      'r1',
      null,
      'r2',
    ]);
    const tools = applyRules(list, [{ kind: 'role_limit', role: 'tool', max_messages: 1 }], context);
    expect(tools[4]!.message.content).toMatch(/^\[result of lookup_order/);
    expect(tools[6]!.message.content).toBe('r2');
  });

  it('applies rules in the order given', () => {
    const list = entries([u('thanks'), u('x '.repeat(500))], [1, 0]);
    const pruned = applyRules(
      list,
      [
        { kind: 'truncate', max_tokens: 20, marker: '…' },
        { kind: 'drop_matching', patterns: ['thanks'], roles: ['user'] },
      ],
      context,
    );
    expect(pruned).toHaveLength(1);
    expect(pruned[0]!.tokens).toBeLessThanOrEqual(20);
  });

  it('stub_media replaces images, audio and files older than N turns with a text stand-in', () => {
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } };
    const withImage = (text: string): ChatMessage => ({ role: 'user', content: [{ type: 'text', text }, image] });
    const list = entries([withImage('old photo'), a('nice'), withImage('new photo')], [3, 3, 1]);
    const pruned = applyRules(list, [{ kind: 'stub_media', older_than_turns: 2 }], context);
    expect(contents(pruned)).toEqual([
      [
        { type: 'text', text: 'old photo' },
        { type: 'text', text: '[image omitted by mnemo]' },
      ],
      'nice',
      [{ type: 'text', text: 'new photo' }, image],
    ]);
    expect(pruned[0]!.tokens).toBeLessThan(list[0]!.tokens);
  });
});
