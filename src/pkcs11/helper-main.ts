/**
 * The provider helper process (the role of OpenSSH's ssh-pkcs11-helper): started by the
 * agent for one provider, it dlopen()s the PKCS#11 module through koffi and answers LOAD
 * and SIGN requests on fd 3, one at a time. A module that crashes or hangs takes only this
 * process with it. The PIN arrives on the pipe (never argv or the environment) and is
 * zeroed as soon as C_Login has seen it.
 */
import { Socket } from 'node:net';
import { Pkcs11Error } from '../errors';
import { loadLibc } from '../native/libc';
import { FrameDecoder } from '../protocol/frame';
import { decodeHelperRequest, encodeHelperReply } from './helper-wire';
import type { HelperReply, HelperRequest } from './helper-wire';
import { TokenKeys } from './token-keys';

/** The pipe the agent gave us (stdio index 3). */
const CHANNEL_FD = 3;

function reasonOf(err: unknown): string {
  if (err instanceof Pkcs11Error) return err.message;
  return err instanceof Error ? `${err.name}: ${err.message}` : 'error';
}

class Helper {
  private tokens: TokenKeys | undefined;

  handle(req: HelperRequest): HelperReply {
    if (req.type === 'load') {
      if (this.tokens !== undefined) return { type: 'failure', reason: 'provider already loaded' };
      const { tokens, outcome } = TokenKeys.load(req.path, req.pin);
      if (outcome.keys.length === 0) {
        tokens.close();
        return { type: 'failure', reason: outcome.problems.join('; ') || 'no keys on the tokens' };
      }
      this.tokens = tokens;
      return { type: 'keys', keys: outcome.keys };
    }
    const signature = this.tokens?.sign(req.blob, req.data, req.flags);
    return signature === undefined ? { type: 'failure', reason: 'unknown key' } : { type: 'signature', signature };
  }
}

function main(): void {
  // Like ssh-agent and its helper: no core dumps of a process that holds a token session.
  const libc = loadLibc();
  if ('libc' in libc) {
    libc.libc.setNotDumpable();
    libc.libc.disableCoreDumps();
  }
  const channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  const frames = new FrameDecoder();
  const helper = new Helper();
  channel.on('data', (chunk: Buffer) => {
    let bodies: Buffer[];
    try {
      bodies = frames.push(chunk);
    } catch {
      process.exit(2);
    }
    for (const body of bodies) {
      let reply: HelperReply;
      try {
        reply = helper.handle(decodeHelperRequest(body));
      } catch (err) {
        reply = { type: 'failure', reason: reasonOf(err) };
      } finally {
        body.fill(0); // a LOAD body holds the PIN
      }
      channel.write(encodeHelperReply(reply));
    }
    chunk.fill(0); // the bodies were views into it (or a copy of it): wipe the PIN's bytes
  });
  // The agent went away (or closed us): nothing left to serve.
  channel.on('end', () => process.exit(0));
  channel.on('error', () => process.exit(0));
}

main();
