/* console.h — VM consoles and log caps, owned by bangerd's event loop.
 *
 * For a VMM whose serial is a unix socket (qemu: VmmDriver.serial_socket),
 * bangerd connects to that socket, writes <vm-dir>/console.log itself with
 * an exact cap (util/logcap.h LogSegment: console.log + console.log.1 never
 * hold more than the cap), and relays bytes to and from `banger console`
 * clients on <runtime-dir>/<uid8>.console (mode 0600, peers checked with
 * SO_PEERCRED: root or bangerd's own uid). The VMM serves the serial socket
 * with wait=off: while bangerd is not connected (down, restarting) the guest
 * is never blocked and its serial output is discarded.
 *
 * Files a VMM appends to itself (vmm.log always, console.log for
 * Firecracker, whose serial is its stdout) are watched with inotify
 * (IN_MODIFY) and trimmed in place to their last cap/2 bytes once they pass
 * the cap (log_trim_tail). Bound: cap plus what the VMM writes between the
 * event and the loop handling it (one reconcile pass, bounded by the pass's
 * own bounds, typically milliseconds).
 *
 * Nothing here blocks: every fd is non-blocking; a client that does not read
 * gets at most CONSOLE_CLIENT_BUF bytes buffered, the rest is dropped for
 * that client only; input that the serial socket does not take at once is
 * dropped. Control bytes pass through unchanged: escaping is for whoever
 * prints them (banger logs), not for the console. */
#pragma once

#include "util/util.h"

#include <stdint.h>

/* Per-client output buffer; what does not fit is dropped for that client. */
#define CONSOLE_CLIENT_BUF  (64 * 1024)
#define CONSOLE_MAX_CLIENTS 8

typedef struct ConsoleHub ConsoleHub;

typedef struct {
	const char *name;
	const char *console_log; /* <vm-dir>/console.log */
	const char *vmm_log;     /* <vm-dir>/vmm.log */
	const char *serial_sock; /* NULL: the VMM writes console_log itself */
	const char *listen_sock; /* <runtime-dir>/<uid8>.console (only with serial_sock) */
} ConsoleTarget;

/* One hub per bangerd; registers its fds with epfd. cap: bytes (>= LOG_CAP_MIN). */
int console_hub_new(int epfd, uint64_t cap, ConsoleHub **ret);
/* Closes every console and client; removes the listening sockets. NULL ok. */
void console_hub_free(ConsoleHub *h);
/* Idempotent, cheap when already attached: listen for clients, connect to
 * the serial socket if not connected, watch the VMM-written logs, trim logs
 * already past the cap. Call whenever the VM's VMM is alive (at every pass).
 * -errno when the serial socket cannot be connected (retried next time). */
int console_attach(ConsoleHub *h, const ConsoleTarget *t);
/* Read whatever the serial socket holds now (bounded) into console.log: the
 * VMM exited or a pass is about to read the console tail. */
void console_drain(ConsoleHub *h, const char *name);
/* The VM is gone: close its serial and clients, remove its socket. */
void console_forget(ConsoleHub *h, const char *name);
/* An epoll event on one of the hub's fds (LoopSource.ptr of SRC_CONSOLE). */
void console_on_event(ConsoleHub *h, void *ptr, uint32_t events);
/* Free what was closed during an epoll batch; called after each batch, when
 * no event of it can point at that memory any more. */
void console_hub_collect(ConsoleHub *h);
