import { describe, expect, it } from 'vitest';
import { messageHash, type ChatMessage } from '../../src/memory/messages.js';
import { reconcile, type StoredView } from '../../src/memory/reconcile.js';

const u = (content: string): ChatMessage => ({ role: 'user', content });
const a = (content: string): ChatMessage => ({ role: 'assistant', content });
const call = (id: string): ChatMessage => ({
  role: 'assistant',
  content: null,
  tool_calls: [{ id, type: 'function', function: { name: 'f', arguments: '{}' } }],
});
const result = (id: string, content = 'ok'): ChatMessage => ({ role: 'tool', tool_call_id: id, content });

function view(messages: ChatMessage[]): StoredView {
  return {
    count: messages.length,
    at: (index) =>
      messages[index] && { hash: messageHash(messages[index]!), role: messages[index]!.role, tool_calls: messages[index]!.tool_calls },
  };
}
const run = (stored: ChatMessage[], incoming: ChatMessage[]) => reconcile(view(stored), incoming, incoming.map(messageHash));

describe('reconcile', () => {
  const history = [u('one'), a('r1'), u('two'), a('r2')];

  it('treats everything as new for an empty session', () => {
    expect(run([], [u('hi')])).toEqual({ mode: 'new', keep: 0, from: 0 });
  });

  it('appends what a stateless client sends after the stored history', () => {
    expect(run(history, [u('three')])).toEqual({ mode: 'stateless', keep: 4, from: 0 });
  });

  it('skips what a full-history client already sent', () => {
    expect(run(history, [...history, u('three')])).toEqual({ mode: 'continuation', keep: 4, from: 4 });
  });

  it('forks where a full-history client diverges (an edit)', () => {
    expect(run(history, [u('one'), a('r1'), u('TWO, edited')])).toEqual({ mode: 'fork', keep: 2, from: 2 });
  });

  it('forks to regenerate when the client resends history up to an earlier user message', () => {
    expect(run(history, [u('one'), a('r1'), u('two')])).toEqual({ mode: 'fork', keep: 3, from: 3 });
  });

  it('replaces the transcript when the client sends a different history of its own', () => {
    expect(run(history, [u('other'), a('other reply'), u('next')])).toEqual({ mode: 'fork', keep: 0, from: 0 });
  });

  it('skips the overlap of a sliding-window client', () => {
    expect(run(history, [u('two'), a('r2'), u('three')])).toEqual({ mode: 'overlap', keep: 4, from: 2 });
  });

  it('does not rewind when a stateless client repeats the first message', () => {
    expect(run(history, [u('one')])).toEqual({ mode: 'stateless', keep: 4, from: 0 });
  });

  it('matches SDK echoes of a reply (refusal: null, text parts) to the stored reply', () => {
    const echoed = [u('one'), { role: 'assistant', content: [{ type: 'text', text: 'r1' }], refusal: null, annotations: [] }, u('two')];
    expect(run([u('one'), a('r1')], echoed)).toEqual({ mode: 'continuation', keep: 2, from: 2 });
  });

  it('never splits a tool call from its results: a fork inside a group moves to the call', () => {
    const stored = [u('q'), call('c1'), result('c1', 'old'), a('answer')];
    expect(run(stored, [u('q'), call('c1'), result('c1', 'new result')])).toEqual({ mode: 'fork', keep: 1, from: 1 });
  });

  it('takes a tool result sent alone as the continuation of the stored call', () => {
    expect(run([u('q'), call('c1')], [result('c1')])).toEqual({ mode: 'stateless', keep: 2, from: 0 });
    expect(run([u('q'), call('c1')], [call('c1'), result('c1')])).toEqual({ mode: 'overlap', keep: 2, from: 1 });
  });

  it('looks at each stored message a bounded number of times, however repetitive the history', () => {
    // Repeated turns make every overlap length a near match; trying each one was quadratic.
    const pairs = (count: number) => Array.from({ length: count }, () => [u('same question'), a('same answer')]).flat();
    const stored = [u('start'), ...pairs(2_000), a('last reply')];
    const incoming = [...pairs(1_999), u('different'), a('x'), u('again')];
    let reads = 0;
    const counted = view(stored);
    const counting: StoredView = { count: counted.count, at: (index) => (reads++, counted.at(index)) };
    const result = reconcile(counting, incoming, incoming.map(messageHash));
    expect(result.mode).toBe('fork');
    expect(reads).toBeLessThanOrEqual(4 * stored.length);
  });
});
