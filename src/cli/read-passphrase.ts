/**
 * `tsagent unlock-key` reads the passphrase from the terminal without echo, or from stdin
 * when stdin is not a terminal (first line). Bytes stay in a Buffer the caller zeroes.
 */
const MAX_BYTES = 1024;

export function readPassphrase(prompt: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<Buffer> {
  const tty = stdin.isTTY === true;
  if (tty) stderr.write(prompt);
  return new Promise<Buffer>((resolve, reject) => {
    const buf = Buffer.alloc(MAX_BYTES);
    let len = 0;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (tty) {
        stdin.setRawMode(false);
        stderr.write('\n');
      }
      stdin.pause();
      if (err !== undefined) {
        buf.fill(0);
        reject(err);
        return;
      }
      const out = Buffer.from(buf.subarray(0, len));
      buf.fill(0);
      resolve(out);
    };
    const onData = (chunk: Buffer): void => {
      for (const byte of chunk) {
        if (byte === 0x0a || byte === 0x0d) return finish();
        if (tty && byte === 0x03) return finish(new Error('interrupted'));
        if (tty && (byte === 0x7f || byte === 0x08)) {
          if (len > 0) buf[--len] = 0;
          continue;
        }
        if (len >= MAX_BYTES) return finish(new Error('passphrase too long'));
        buf[len++] = byte;
      }
      chunk.fill(0);
    };
    const onEnd = (): void => finish();
    if (tty) stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}
