/* notify.h — the systemd service notification protocol (sd_notify(3)),
 * written out rather than linked from libsystemd.
 *
 * Why our own: the protocol is one datagram of "KEY=VALUE\n" lines sent to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). Forty lines here spare every banger binary and test a
 * shared-library dependency, keep bangerd runnable on hosts without systemd,
 * and make the protocol testable against a socket a test listens on.
 *
 * Every function is a no-op (returns 0) when $NOTIFY_SOCKET is unset, so
 * callers need no "am I under systemd" checks. */
#pragma once

#include "util.h"

/* Send state (e.g. "READY=1\nSTATUS=3 VMs running") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when there is no socket to send to, -errno when
 * the variable is malformed or the send failed. Never blocks. */
int notify_send(const char *state);

/* The watchdog interval systemd asked for ($WATCHDOG_USEC, honouring
 * $WATCHDOG_PID), in microseconds; 0 when no watchdog is armed for us.
 * Send "WATCHDOG=1" at least every half of it. */
uint64_t notify_watchdog_usec(void);
