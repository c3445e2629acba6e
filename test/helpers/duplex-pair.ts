/**
 * Two connected in-memory Duplex streams (what Node ≥ 22.6 calls stream.duplexPair()):
 * bytes written to one are read from the other; ending or destroying one ends or destroys
 * the other, like the two ends of a socket.
 */
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {
        /* data is pushed by the peer's write */
      },
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const other = peer();
        if (!other.destroyed) other.destroy();
        cb(err);
      },
    });
  ends.push(
    make(() => ends[1]),
    make(() => ends[0]),
  );
  return [ends[0], ends[1]];
}
