/**
 * A SOCKS5 proxy for unit tests (no auth, CONNECT only, IPv4 and domain names) that records
 * where it was asked to connect. Test-only: nothing outside *.test.ts should import it.
 */
import net from 'node:net';

export interface FakeSocksOptions {
  /** Where to really connect for a requested host, so tests can use names like git.lab.test. */
  resolveName?: (host: string) => string;
}

export interface FakeSocks {
  url: string;
  port: number;
  /** Every CONNECT as `host:port`, as the client named it, including those that then failed. */
  destinations: string[];
  close(): Promise<void>;
}

const reply = (code: number): Buffer => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);

export async function startFakeSocks(options: FakeSocksOptions = {}): Promise<FakeSocks> {
  const resolveName = options.resolveName ?? ((host: string) => host);
  const destinations: string[] = [];
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };

  const server = net.createServer((client) => {
    track(client);
    client.on('error', () => {});
    // Clients may split or merge the greeting, the request and the first payload bytes freely.
    let buffered = Buffer.alloc(0);
    let greeted = false;
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!greeted) {
        const count = buffered[1];
        if (count === undefined || buffered.length < 2 + count) return;
        if (buffered[0] !== 5 || !buffered.subarray(2, 2 + count).includes(0)) return void client.end(Buffer.from([5, 0xff]));
        buffered = buffered.subarray(2 + count);
        greeted = true;
        client.write(Buffer.from([5, 0]));
      }
      if (buffered.length < 5) return;
      let host: string;
      let end: number;
      if (buffered[3] === 1) [host, end] = [[...buffered.subarray(4, 8)].join('.'), 8];
      else if (buffered[3] === 3) [host, end] = [buffered.subarray(5, 5 + buffered[4]!).toString('latin1'), 5 + buffered[4]!];
      else return void client.end(reply(8)); // address type not supported (IPv6 is not needed)
      if (buffered.length < end + 2) return;
      if (buffered[1] !== 1) return void client.end(reply(7)); // command not supported
      const port = buffered.readUInt16BE(end);
      const rest = buffered.subarray(end + 2);
      client.off('data', onData);
      // Without a data listener a flowing socket would drop what arrives before the pipe.
      client.pause();
      destinations.push(`${host}:${port}`);
      let connected = false;
      const upstream = net.connect({ host: resolveName(host), port }, () => {
        connected = true;
        client.write(reply(0));
        if (rest.length) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      track(upstream);
      // 5 = connection refused, which the clients under test turn into "could not reach …".
      upstream.on('error', () => (connected ? client.destroy() : client.end(reply(5))));
      client.on('close', () => upstream.destroy());
    };
    client.on('data', onData);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `socks5://127.0.0.1:${port}`,
    port,
    destinations,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
