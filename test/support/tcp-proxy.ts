import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of `targetPort` that can go silent: while it does, the
 * connections open at that moment and those accepted meanwhile drop every byte, both ways, and
 * stay open — a network that loses packets without a reset, or a host that died. Connections
 * accepted after `speak()` work again; the silenced ones stay silent.
 */
export interface TcpProxy {
  port: number;
  silence(): void;
  speak(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let silent = false;
  const connections = new Set<{ client: net.Socket; upstream: net.Socket; silent: boolean }>();
  // Half-open sockets: a silenced connection must not answer a FIN with its own either, as the
  // kernel of a paused server would not.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
    const connection = { client, upstream, silent };
    connections.add(connection);
    client.on('data', (chunk) => {
      if (!connection.silent) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!connection.silent) client.write(chunk);
    });
    client.on('end', () => {
      if (!connection.silent) upstream.end();
    });
    upstream.on('end', () => {
      if (!connection.silent) client.end();
    });
    const end = () => {
      connections.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', () => {
      // A silenced connection must not learn that the other side went away either.
      if (!connection.silent) end();
    });
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    silence() {
      silent = true;
      for (const connection of connections) connection.silent = true;
    },
    speak() {
      silent = false;
    },
    async close() {
      for (const { client, upstream } of connections) {
        client.destroy();
        upstream.destroy();
      }
      connections.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
