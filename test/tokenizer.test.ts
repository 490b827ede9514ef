import { describe, expect, it } from 'vitest';
import { get_encoding } from 'tiktoken';
import { audioTokens, fileTokens, imageTokens } from '../src/media-tokens.js';
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

  it('counts word by word exactly as the whole text encodes, in every script and shape', () => {
    const tokenizer = new TiktokenTokenizer();
    const texts = [
      "My order #7890 is stuck, can you help? It's been 3 days — I'd like a refund.",
      'Ünïcödé wörds, 東京の天気は晴れです, مرحبا بالعالم, emoji 🎉🎉 and numbers 1234567 3.14159',
      'code: const x = { a: 1, b: [2, 3] };\n\tif (x.a  >  0) return   "yes"  ;\r\n',
      "  leading and trailing spaces  , double  spaces, a\u00a0nbsp and 's 't 're 've 'll 'd I'M DON'T",
      Array.from({ length: 200 }, (_, index) => `w${(index * 7919) % 1009}`).join(' '),
    ];
    for (const model of ['gpt-4o', 'gpt-4']) {
      const encoding = get_encoding(encodingForModel(model));
      for (const text of texts) {
        // Twice: the second count comes from remembered words.
        expect(tokenizer.count(text, model)).toBe(encoding.encode_ordinary(text).length);
        expect(tokenizer.count(`${text} again`, model)).toBe(encoding.encode_ordinary(`${text} again`).length);
      }
      encoding.free();
    }
  });

  it('stays exact once it has seen more words than it remembers: old ones are counted again', () => {
    const tokenizer = new TiktokenTokenizer();
    const encoding = get_encoding('o200k_base');
    // Words that tokenize differently (one to several tokens), well past the table's turnover.
    const word = (index: number) => `${['', 'zq', 'Über', 'x'][index % 4]}${index.toString(36)}${index % 7 === 0 ? '東京' : ''}`;
    const text = (from: number) => Array.from({ length: 1_000 }, (_, offset) => word(from + offset)).join(' ');
    for (let from = 0; from < 150_000; from += 1_000) tokenizer.count(text(from), 'gpt-4o');
    for (const from of [0, 70_000, 149_000])
      expect(tokenizer.count(`${text(from)} again`, 'gpt-4o')).toBe(encoding.encode_ordinary(`${text(from)} again`).length);
    encoding.free();
  });

  it('counts long runs without spaces exactly for ordinary text and linearly for the rest', () => {
    const tokenizer = new TiktokenTokenizer();
    const words = Array.from({ length: 3_000 }, (_, index) => `word${index}${index % 7 === 0 ? '.\n\n' : ' '}`).join('');
    const exact = tokenizer.count(words.slice(0, 500), 'gpt-4o') + tokenizer.count(words.slice(500), 'gpt-4o');
    expect(tokenizer.count(words, 'gpt-4o')).toBeLessThanOrEqual(exact);
    // 200,000 × "a" is one BPE piece: counted in segments, an upper bound, not a 44-second stall.
    expect(tokenizer.count('a'.repeat(200_000), 'gpt-4o')).toBeGreaterThanOrEqual(25_000);
  });

  describe('images, as OpenAI bills them', () => {
    const png = (width: number, height: number) => {
      const header = Buffer.alloc(24);
      header.writeUInt32BE(0x89504e47, 0);
      header.writeUInt32BE(width, 16);
      header.writeUInt32BE(height, 20);
      return `data:image/png;base64,${header.toString('base64')}`;
    };
    const image = (url: string, detail?: string) => ({ type: 'image_url', image_url: { url, detail } });

    it('counts low detail as 85, and high detail by 512-pixel tiles after scaling', () => {
      expect(imageTokens(image(png(4000, 3000), 'low'))).toBe(85);
      expect(imageTokens(image(png(1024, 1024)))).toBe(765); // scaled to 768×768: 4 tiles
      expect(imageTokens(image(png(2048, 4096)))).toBe(1105); // 1024×2048 → 768×1536: 6 tiles
      expect(imageTokens(image(png(300, 200)))).toBe(255); // 1 tile
      expect(imageTokens(image('https://example.com/cat.jpg'))).toBe(765); // unseen: as 1024×1024
    });

    it('adds them to a message', () => {
      const tokenizer = new TiktokenTokenizer();
      const message = { role: 'user', content: [{ type: 'text', text: 'hello world' }, image(png(300, 200))] };
      expect(tokenizer.countMessage(message, 'gpt-4o')).toBe(5 + 255);
    });
  });

  it('counts audio by its duration (about 10 tokens a second) and a PDF by its pages', () => {
    const wav = Buffer.alloc(44 + 32_000 * 3); // 3 s at 16 kHz, 16-bit mono: 32,000 bytes a second
    wav.write('RIFF', 0, 'ascii');
    wav.writeUInt32LE(32_000, 28);
    expect(audioTokens({ type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } })).toBe(31);
    const pdf = '%PDF-1.4 1 0 obj << /Type /Pages /Count 2 >> 2 0 obj << /Type /Page >> 3 0 obj << /Type/Page >>';
    const data = `data:application/pdf;base64,${Buffer.from(pdf).toString('base64')}`;
    expect(fileTokens({ type: 'file', file: { file_data: data, filename: 'a.pdf' } })).toBe(2 * (765 + 500));
    expect(fileTokens({ type: 'file', file: { file_id: 'file-1' } })).toBe(0);
  });
});
