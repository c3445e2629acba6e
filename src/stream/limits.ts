/**
 * The flow limits of every pipelined agent connection: the daemon's (server/), the
 * forwarding relay's and the socket client's (client/). They live in stream/, a layer of its
 * own just above protocol/ and below agent/, because client/ must not import server/ and
 * protocol/ holds no I/O; both sides import them from here, so each bound is named once.
 */

/**
 * Requests one connection may have outstanding (sent or read, not yet answered) before the
 * reader stops taking more (RFC 9987 §3 lets a client pipeline; nothing says how deep).
 */
export const MAX_IN_FLIGHT = 64;

/**
 * Reply bytes written but not yet taken by the peer before its requests stop being read:
 * one largest frame (OpenSSH AGENT_MAX_LEN, 256 KiB). A peer that does not read costs the
 * agent about this much, not what it asks for (OpenSSH's agent likewise stops reading).
 */
export const MAX_UNSENT_BYTES = 256 * 1024;
