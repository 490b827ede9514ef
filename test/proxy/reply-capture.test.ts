import { describe, expect, it } from 'vitest';
import { captureJsonReply, StreamCapture } from '../../src/proxy/reply-capture.js';
import { chunk, completion, sse } from '../support/fake-provider.js';

describe('capturing replies', () => {
  it('reads content, tool calls and usage from a JSON completion', () => {
    const reply = captureJsonReply(Buffer.from(JSON.stringify(completion({ content: 'hello' }))));
    expect(reply).toMatchObject({
      complete: true,
      finishReason: 'stop',
      message: { role: 'assistant', content: 'hello' },
      usage: { prompt_tokens: 10 },
    });
  });

  it('gives up on a body that is not a completion', () => {
    expect(captureJsonReply(Buffer.from('not json'))).toBeUndefined();
    expect(captureJsonReply(Buffer.from('{"choices":[]}'))).toBeUndefined();
  });

  it('rebuilds a stream split at arbitrary byte boundaries, multi-byte characters included', () => {
    const stream = Buffer.from(
      sse([chunk({ role: 'assistant', content: 'Grüße ' }), chunk({ content: '🚚 unterwegs' }), chunk({}, 'stop'), '[DONE]']),
    );
    const capture = new StreamCapture();
    for (let index = 0; index < stream.length; index += 7) capture.write(stream.subarray(index, index + 7));
    expect(capture.result()).toMatchObject({ complete: true, message: { role: 'assistant', content: 'Grüße 🚚 unterwegs' } });
  });

  it('is incomplete without [DONE] or without a finish_reason', () => {
    const noDone = new StreamCapture();
    noDone.write(Buffer.from(sse([chunk({ content: 'x' }, 'stop')])));
    expect(noDone.result().complete).toBe(false);
    const noFinish = new StreamCapture();
    noFinish.write(Buffer.from(sse([chunk({ content: 'x' }), '[DONE]'])));
    expect(noFinish.result().complete).toBe(false);
  });

  it('remembers only choice 0 when n > 1', () => {
    const capture = new StreamCapture();
    const second = { ...chunk({ content: 'B' }), choices: [{ index: 1, delta: { content: 'B' }, finish_reason: null }] };
    capture.write(Buffer.from(sse([chunk({ content: 'A' }), second, chunk({}, 'stop'), '[DONE]'])));
    expect(capture.result().message.content).toBe('A');
  });

  it('keeps a legacy function_call reply, whole or streamed', () => {
    const body = {
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } },
          finish_reason: 'function_call',
        },
      ],
    };
    expect(captureJsonReply(Buffer.from(JSON.stringify(body)))!.message).toEqual({
      role: 'assistant',
      content: null,
      function_call: { name: 'f', arguments: '{}' },
    });
    const capture = new StreamCapture();
    capture.write(
      Buffer.from(
        sse([
          chunk({ role: 'assistant', function_call: { name: 'lookup', arguments: '{"a"' } }),
          chunk({ function_call: { arguments: ':1}' } }),
          chunk({}, 'function_call'),
          '[DONE]',
        ]),
      ),
    );
    expect(capture.result().message).toEqual({ role: 'assistant', content: null, function_call: { name: 'lookup', arguments: '{"a":1}' } });
  });

  it('keeps an audio reply as its id, expiry and transcript, never the audio itself', () => {
    const audio = { id: 'audio_1', data: 'UklGRg==', expires_at: 2_000_000_000, transcript: 'Hello there' };
    const body = { choices: [{ index: 0, message: { role: 'assistant', content: null, audio }, finish_reason: 'stop' }] };
    expect(captureJsonReply(Buffer.from(JSON.stringify(body)))!.message).toEqual({
      role: 'assistant',
      content: null,
      audio: { id: 'audio_1', expires_at: 2_000_000_000, transcript: 'Hello there' },
    });
  });
});
