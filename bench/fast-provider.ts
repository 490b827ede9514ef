/**
 * The benchmark's provider: answers chat completions at once with a unique
 * 30-60-word reply, or streams it a word per chunk. Run as its own process so it does not
 * share an event loop with what is measured. Prints its port on stdout.
 */
import { createServer } from 'node:http';
import { textMaker } from './texts.js';

// Every reply is unique (30-60 Zipf-drawn words, numbered), so nothing downstream can cache its
// way past counting or storing it; building one costs the provider a few microseconds.
const replyText = textMaker('reply', 2);

const reply = () =>
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 0,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: replyText() }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 50, completion_tokens: 40, total_tokens: 90 },
  });

const chunk = (content: string | null, finish: string | null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o-mini', choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })}\n\n`;
const stream = () => [
  ...replyText()
    .split(' ')
    .map((word) => chunk(`${word} `, null)),
  chunk(null, 'stop'),
  'data: [DONE]\n\n',
];

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (data: Buffer) => parts.push(data));
  req.on('end', () => {
    const body = Buffer.concat(parts).toString();
    if (body.includes('"stream":true')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const part of stream()) res.write(part);
      res.end();
      return;
    }
    const payload = reply();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    res.end(payload);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })));
