// The raw WebSocket baseline's server (scenarios 5 and 8): a Node `ws` server on loopback, in the
// runner's process, with one behaviour per path:
// - /echo: sends every frame back unchanged;
// - /ack: answers every frame with `{"ack": n}`, n the messages in it (a JSON array);
// - /broadcast: relays every frame to the other sockets on /broadcast.
import { WebSocketServer } from 'ws';
import { freePort } from '../../tests/e2e/harness.mjs';

/** Starts the server; resolves to `{ url(path), close() }`. */
export async function startWsServer() {
  const port = await freePort();
  const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
  const broadcast = new Set();
  server.on('connection', (socket, request) => {
    const path = new URL(request.url, 'ws://host').pathname;
    if (path === '/echo') {
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    } else if (path === '/ack') {
      socket.on('message', (data) => socket.send(JSON.stringify({ ack: JSON.parse(data).length })));
    } else if (path === '/broadcast') {
      broadcast.add(socket);
      socket.on('close', () => broadcast.delete(socket));
      socket.on('message', (data, isBinary) => {
        for (const other of broadcast) if (other !== socket) other.send(data, { binary: isBinary });
      });
    } else {
      socket.close(1008, `no such path: ${path}`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return {
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    close() {
      for (const socket of server.clients) socket.terminate();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
