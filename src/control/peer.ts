// Who is on the other end of an accepted control connection: the socket's fd, and the kernel's peer credentials for it.

import type * as net from 'node:net';
import { NattUnsupportedError } from '../errors';
import { getPeerCred, requireNative } from '../native/binding';
import type { PeerCred } from '../native/types';

export type { PeerCred } from '../native/types';

/**
 * The file descriptor under a net.Socket or net.Server, or undefined where Node does not expose it.
 *
 * Node has no public API for the fd of an accepted socket. libuv's pipe handle carries it as `_handle.fd` on every Unix
 * (Linux, the BSDs, macOS); on Windows, or should a future Node drop the field, this gives undefined and the control
 * server refuses to serve rather than serve unchecked. This function is the only place natt reads `_handle`.
 */
export function handleFd(s: net.Socket | net.Server): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/** Throws, saying why, where peer credentials cannot be read (no addon, no pipe fd): the server will not start. */
export function assertPeerCheckable(server: net.Server): void {
  requireNative();
  if (handleFd(server) === undefined) {
    throw new NattUnsupportedError(
      'this Node does not expose the control socket\'s file descriptor, so the peer of a connection cannot be checked ' +
        '(SO_PEERCRED): the control server refuses to serve unchecked',
    );
  }
}

/** The peer's credentials (SO_PEERCRED, LOCAL_PEEREID or getpeereid), or an Error saying why not. */
export function peerOf(sock: net.Socket): PeerCred {
  const fd = handleFd(sock);
  if (fd === undefined) throw new NattUnsupportedError('the connection has no file descriptor to ask for its peer credentials');
  return getPeerCred(fd);
}
