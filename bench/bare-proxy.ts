/** The practical floor for any Node proxy: http-proxy forwarding to the provider, nothing else. */
import { createServer } from 'node:http';
import httpProxy from 'http-proxy';

const target = process.argv[2]!;
const proxy = httpProxy.createProxyServer({ target, agent: new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 256 }) });
const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as { port: number }).port })));
