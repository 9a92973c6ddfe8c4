/* log.h — leveled logging to stderr, as text or one JSON object per line,
 * in journald's stream format when stderr is the journal.
 *
 * log_errno() returns -abs(err) so call sites can write
 *     return log_errno(r, "vm %s: attach tap: %m", name);
 * and %m expands to strerror(abs(err)). */
#pragma once

#include "util.h"

typedef enum {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	_LOG_LEVEL_MAX,
} LogLevel;

typedef enum {
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
} LogFormat;

/* Also decides whether stderr is the journal (log_stderr_is_journal()):
 * then each line starts with a "<N>" syslog priority and carries no
 * timestamp, level word or identifier of its own. */
void log_setup(LogLevel level, LogFormat format, const char *ident);
bool log_stderr_is_journal(void);
int log_level_from_string(const char *s); /* -EINVAL on unknown */
LogLevel log_get_level(void);

/* Returns -abs(err) (or 0 when err is 0). */
int log_full(LogLevel level, int err, const char *file, int line, const char *fmt, ...)
	_printf_(5, 6);

#define log_error(...)            log_full(LOG_LEVEL_ERROR, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)             log_full(LOG_LEVEL_WARN, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)             log_full(LOG_LEVEL_INFO, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...)            log_full(LOG_LEVEL_DEBUG, 0, __FILE__, __LINE__, __VA_ARGS__)
#define log_errno(err, ...)       log_full(LOG_LEVEL_ERROR, (err), __FILE__, __LINE__, __VA_ARGS__)
#define log_warn_errno(err, ...)  log_full(LOG_LEVEL_WARN, (err), __FILE__, __LINE__, __VA_ARGS__)
#define log_debug_errno(err, ...) log_full(LOG_LEVEL_DEBUG, (err), __FILE__, __LINE__, __VA_ARGS__)
