import { describe, expect, it } from 'vitest';
import { extractFacts, mergeFacts } from '../../src/memory/facts.js';
import { call, memoryConfig, result, stored, u } from './helpers.js';

const extractors = memoryConfig({
  facts: {
    extractors: [
      { name: 'order_id', pattern: 'order\\s*#?\\s*(\\d{3,})' },
      { name: 'order_id', pattern: '"order_id"\\s*:\\s*"?(\\d+)' },
      { name: 'email', pattern: '([\\w.+-]+@[\\w-]+\\.[\\w.]+)', scope: 'user', roles: ['user'] },
    ],
  },
}).facts.extractors;

describe('facts', () => {
  it('extracts from user text, tool call arguments and tool results', () => {
    const found = extractFacts(
      [
        { stored: stored(u('My order #7890 is stuck, mail me at ada@example.com'), 0), index: 0 },
        { stored: stored(call('c1', 'lookup', '{"order_id":"7891"}'), 1), index: 1 },
        { stored: stored(result('c1', '{"order_id": "7892", "status": "late"}'), 2), index: 2 },
      ],
      extractors,
    );
    expect(found.map((fact) => `${fact.name}=${fact.value}@${fact.index}/${fact.scope}`)).toEqual([
      'order_id=7890@0/session',
      'email=ada@example.com@0/user',
      'order_id=7891@1/session',
      'order_id=7892@2/session',
    ]);
    expect(found[0]!.source).toBe('id-0');
  });

  it('replaces an older value with a newer one and keeps the old in history', () => {
    const first = mergeFacts({}, [{ name: 'order_id', value: '7890', scope: 'session', source: 'm1', index: 0, at: 1 }]);
    const second = mergeFacts(first, [{ name: 'order_id', value: '8000', scope: 'session', source: 'm9', index: 9, at: 9 }]);
    expect(second.order_id).toMatchObject({ value: '8000', source: 'm9', history: [{ value: '7890', source: 'm1', at: 1 }] });
    expect(
      mergeFacts(second, [{ name: 'order_id', value: '8000', scope: 'session', source: 'm10', index: 10, at: 10 }]).order_id!.source,
    ).toBe('m9');
  });
});
