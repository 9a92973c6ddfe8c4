/* qmp.h — a small, blocking-but-bounded QEMU Machine Protocol client.
 *
 * QMP is line-oriented JSON over a unix socket: the server greets with
 * {"QMP": {...}}, the client must send qmp_capabilities before anything
 * else, and every command gets exactly one {"return": ...} or {"error": ...}
 * reply. Asynchronous {"event": ...} lines may arrive at any time, also
 * between a command and its reply; they are skipped (SHUTDOWN arrives that
 * way right after send-key ctrl-alt-delete).
 *
 * Every operation is bounded by the client's timeout (poll before each read
 * and write), so a wedged QEMU cannot stall the caller: the controller's
 * event loop calls this for short exchanges only. One QmpClient owns one
 * socket (CLOEXEC); qmp_close() accepts NULL.
 *
 * QEMU serves one QMP client per socket at a time: a second connect is
 * accepted by the kernel but greeted only after the first client leaves, so
 * callers connect, exchange and close promptly (never hold a client). */
#pragma once

#include "util/util.h"

#include <json-c/json.h>

typedef struct QmpClient QmpClient;

/* Longest reply line we accept; QMP replies we use are a few hundred bytes. */
#define QMP_LINE_MAX (1024 * 1024)

/* Connect to the QMP socket at path, read the greeting and negotiate
 * capabilities. timeout_ms bounds each following read/write (and the
 * connect + handshake as a whole). -ECONNREFUSED/-ENOENT when nothing
 * listens yet, -ETIMEDOUT, -EPROTO on a malformed greeting. */
int qmp_connect(const char *path, unsigned timeout_ms, QmpClient **ret);

/* Wrap an already connected fd (takes ownership, also on failure). No
 * handshake: call qmp_handshake(). Used by tests over a socketpair. */
int qmp_client_from_fd(int fd, unsigned timeout_ms, QmpClient **ret);

/* Read the greeting and send qmp_capabilities. */
int qmp_handshake(QmpClient *c);

/* Execute command with args (NULL: none; not consumed). On {"return": X}
 * stores a new reference to X in *ret_return (when non-NULL; caller
 * json_object_put()s it) and returns 0. On {"error": ...} returns
 * -EOPNOTSUPP for CommandNotFound, else -EREMOTEIO, and keeps the error's
 * "desc" for qmp_last_error(). Events before the reply are skipped. */
int qmp_execute(QmpClient *c, const char *command, json_object *args, json_object **ret_return);

/* Hand fd to QEMU under fdname (QMP `getfd`, the fd over SCM_RIGHTS); a
 * later `migrate fd:NAME` / `migrate-incoming fd:NAME` uses it. The caller
 * keeps (and closes) its own copy. */
int qmp_getfd(QmpClient *c, const char *fdname, int fd);

/* The "desc" of the last error reply, or "" (owned by the client). */
const char *qmp_last_error(const QmpClient *c);

/* Lines skipped so far while waiting for replies: events, and replies whose
 * id is not the awaited one (left over from an exchange that timed out). */
unsigned qmp_events_skipped(const QmpClient *c);

void qmp_close(QmpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(QmpClient *, qmp_close)
#define _cleanup_qmp_ _cleanup_(qmp_closep)
