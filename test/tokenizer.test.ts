import { describe, expect, it } from 'vitest';
import { encodingForModel, TiktokenTokenizer } from '../src/tokenizer.js';

describe('tokenizer', () => {
  it('picks the encoding by model family', () => {
    for (const model of ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'o3-mini', 'gpt-5', 'some-local-model'])
      expect(encodingForModel(model)).toBe('o200k_base');
    for (const model of ['gpt-4', 'gpt-4-turbo', 'gpt-3.5-turbo']) expect(encodingForModel(model)).toBe('cl100k_base');
  });

  it('counts like the provider: framing per message plus content', () => {
    const tokenizer = new TiktokenTokenizer();
    expect(tokenizer.count('hello world', 'gpt-4o')).toBe(2);
    expect(tokenizer.countMessage({ role: 'user', content: 'hello world' }, 'gpt-4o')).toBe(5);
  });

  it('treats special-token text in user content as plain text', () => {
    const tokenizer = new TiktokenTokenizer();
    expect(tokenizer.count('<|endoftext|>', 'gpt-4o')).toBeGreaterThan(1);
  });
});
