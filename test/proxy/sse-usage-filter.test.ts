import { describe, expect, it } from 'vitest';
import { UsageChunkFilter } from '../../src/proxy/sse-usage-filter.js';

const content = 'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n';
const usage = 'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n';
const done = 'data: [DONE]\n\n';

describe('UsageChunkFilter', () => {
  it('forwards whole events as their exact bytes and drops the usage-only one', () => {
    const filter = new UsageChunkFilter();
    expect(filter.write(Buffer.from(content + usage + done)).toString()).toBe(content + done);
  });

  it('holds back only a partial event until its end arrives', () => {
    const filter = new UsageChunkFilter();
    const split = 20;
    expect(filter.write(Buffer.from(content.slice(0, split))).toString()).toBe('');
    expect(filter.write(Buffer.from(content.slice(split) + usage.slice(0, 10))).toString()).toBe(content);
    expect(filter.write(Buffer.from(usage.slice(10) + done)).toString()).toBe(done);
  });

  it('keeps chunks that carry usage and choices, and CRLF-framed events', () => {
    const filter = new UsageChunkFilter();
    const both = 'data: {"choices":[{"index":0,"delta":{}}],"usage":{"total_tokens":2}}\r\n\r\n';
    expect(filter.write(Buffer.from(both)).toString()).toBe(both);
  });

  it('hands back an unterminated tail on flush', () => {
    const filter = new UsageChunkFilter();
    filter.write(Buffer.from('data: [DONE]'));
    expect(filter.flush().toString()).toBe('data: [DONE]');
  });
});
