/**
 * Who may talk to the agent (OpenSSH ssh-agent.c handle_socket_read): only processes running
 * as the agent's own user or as root, by the kernel's SO_PEERCRED of the connection — the
 * socket's file mode is the first fence, this is the second. When the credentials cannot be
 * read the connection is refused (fail closed).
 */
import type { Server, Socket } from 'node:net';
import type { Libc, PeerCredentials } from '../native/libc';

export type PeerVerdict =
  | { readonly allowed: true; readonly peer?: PeerCredentials }
  | { readonly allowed: false; readonly reason: string; readonly peer?: PeerCredentials };

export type PeerCheck = (sock: Socket) => PeerVerdict;

/**
 * The OS descriptor behind a net.Socket or a listening net.Server (Node exposes it only on
 * its internal handle).
 */
export function socketFd(sock: Socket | Server): number | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** A check that admits `ownUid` and root. */
export function uidPeerCheck(libc: Libc, ownUid: number): PeerCheck {
  return (sock) => {
    const fd = socketFd(sock);
    if (fd === undefined) return { allowed: false, reason: 'no descriptor for the connection' };
    const peer = libc.peerCredentials(fd);
    if (peer === undefined) return { allowed: false, reason: 'cannot read peer credentials' };
    if (peer.uid !== ownUid && peer.uid !== 0) return { allowed: false, reason: 'uid mismatch', peer };
    return { allowed: true, peer };
  };
}
