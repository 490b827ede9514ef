/**
 * The benchmark's provider: answers chat completions at once with a small fixed
 * reply, or streams it as 50 chunks. Run as its own process so it does not
 * share an event loop with what is measured. Prints its port on stdout.
 */
import { createServer } from 'node:http';

const reply = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 0,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Your order ships tomorrow.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 50, completion_tokens: 6, total_tokens: 56 },
});

const chunk = (content: string | null, finish: string | null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o-mini', choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] })}\n\n`;
const stream = [...Array.from({ length: 49 }, (_, index) => chunk(`w${index} `, null)), chunk(null, 'stop'), 'data: [DONE]\n\n'];

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (data: Buffer) => parts.push(data));
  req.on('end', () => {
    const body = Buffer.concat(parts).toString();
    if (body.includes('"stream":true')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const part of stream) res.write(part);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
    res.end(reply);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })));
