/** Host ports: is one free right now (nobody listens), or which one the kernel would hand out. */
import dgram from 'node:dgram';
import net from 'node:net';

/**
 * Binds and releases, as Docker's port allocator probes; port 0 asks the kernel for a free one.
 * Returns the port, or undefined when something holds it.
 */
export async function portFree(hostIp: string, port: number, proto: 'tcp' | 'udp'): Promise<number | undefined> {
  const host = hostIp || '0.0.0.0';
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(undefined));
      s.bind(port, host, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}
