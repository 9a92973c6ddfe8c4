/* log.c — see log.h. Writes whole lines with one write(2) so concurrent
 * writers (the watcher thread) never interleave mid-line. */
#include "log.h"
#include "escape.h"
#include "timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

static LogLevel max_level = LOG_LEVEL_INFO;
static LogFormat log_format = LOG_FORMAT_TEXT;
static const char *log_ident = "banger";
/* stderr is a journald stream: it stamps time and identity itself and
 * reads a "<N>" syslog priority at the start of each line. */
static bool log_to_journal;

/* syslog(3) priorities, for the journal's "<N>" prefix. */
static const int level_priority[_LOG_LEVEL_MAX] = {
	[LOG_LEVEL_ERROR] = 3,
	[LOG_LEVEL_WARN] = 4,
	[LOG_LEVEL_INFO] = 6,
	[LOG_LEVEL_DEBUG] = 7,
};

static const char *const level_names[_LOG_LEVEL_MAX] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* systemd sets $JOURNAL_STREAM to "DEV:INO" of the stream it connected to
 * stdout/stderr; it only means our stderr when the numbers still match (a
 * child whose stderr was redirected inherits the variable, not the stream). */
bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;
	if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(LogLevel level, LogFormat format, const char *ident)
{
	log_to_journal = log_stderr_is_journal();
	max_level = level;
	log_format = format;
	if (ident)
		log_ident = ident;
}

LogLevel log_get_level(void)
{
	return max_level;
}

int log_level_from_string(const char *s)
{
	for (int i = 0; i < _LOG_LEVEL_MAX; i++)
		if (streq(s, level_names[i]))
			return i;
	return -EINVAL;
}

/* Expand %m ourselves: errno is not the error we were handed. */
static char *expand_m(const char *fmt, int err)
{
	const char *m = strstr(fmt, "%m");
	if (!m || err == 0)
		return xstrdup(fmt);
	const char *e = strerror(abs(err));
	size_t n = strlen(fmt) + strlen(e) * 4 + 1;
	char *out = xmalloc(n), *o = out;
	for (const char *p = fmt; *p;) {
		if (p[0] == '%' && p[1] == '%') {
			*o++ = *p++;
			*o++ = *p++;
		} else if (p[0] == '%' && p[1] == 'm') {
			for (const char *q = e; *q; q++) {
				if (*q == '%')
					*o++ = '%';
				*o++ = *q;
			}
			p += 2;
		} else
			*o++ = *p++;
	}
	*o = 0;
	return out;
}

int log_full(LogLevel level, int err, const char *file, int line, const char *fmt, ...)
{
	int saved = errno;
	int ret = err == 0 ? 0 : -abs(err);
	_cleanup_free_ char *f = NULL, *msg = NULL, *out = NULL;
	size_t outlen = 0;
	va_list ap;

	if (level > max_level)
		return ret;
	f = expand_m(fmt, err);
	va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (vasprintf(&msg, f, ap) < 0)
		msg = NULL;
#pragma GCC diagnostic pop
	va_end(ap);
	if (!msg)
		return ret;

	FILE *o = open_memstream(&out, &outlen);
	if (!o)
		return ret;
	char ts[40];
	time_format_rfc3339_ms(time_now_realtime_ms(), ts, sizeof(ts));
	if (log_to_journal)
		fprintf(o, "<%d>", level_priority[level]);
	if (log_format == LOG_FORMAT_JSON) {
		fputc('{', o);
		if (!log_to_journal)
			fprintf(o, "\"time\":\"%s\",", ts);
		fprintf(o, "\"level\":\"%s\",\"ident\":\"%s\",\"msg\":\"", level_names[level],
			log_ident);
		escape_fputs(o, msg, ESCAPE_JSON);
		fprintf(o, "\"");
		if (log_get_level() >= LOG_LEVEL_DEBUG)
			fprintf(o, ",\"src\":\"%s:%d\"", file, line);
		fprintf(o, "}\n");
	} else {
		/* One event, one line: a file name or console text with a
		 * newline or an escape sequence in it cannot forge a line. Under
		 * the journal, level, time and identifier are its own fields. */
		if (!log_to_journal)
			fprintf(o, "%s %s %-5s ", ts, log_ident, level_names[level]);
		escape_fputs(o, msg, ESCAPE_DISPLAY);
		if (log_get_level() >= LOG_LEVEL_DEBUG)
			fprintf(o, " (%s:%d)", file, line);
		fputc('\n', o);
	}
	fclose(o);
	ssize_t _unused_ w = write(STDERR_FILENO, out, outlen);
	errno = saved;
	return ret;
}
