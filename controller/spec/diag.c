/* diag.c — see diag.h. */
#include "spec/diag.h"

#include <stdarg.h>
#include <stdio.h>

void diags_add(Diags *d, const char *file, unsigned line, unsigned col, const char *field,
	       const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		abort();
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->items = xrealloc(d->items, d->cap * sizeof(Diag));
	}
	d->items[d->n++] = (Diag){
		.file = xstrdup(file ? file : "-"),
		.line = line,
		.col = col,
		.field = xstrdup(field ? field : ""),
		.message = msg,
	};
}

char *diag_format(const Diag *d)
{
	if (d->field[0])
		return xasprintf("%s:%u:%u: %s: %s", d->file, d->line, d->col, d->field,
				 d->message);
	return xasprintf("%s:%u:%u: %s", d->file, d->line, d->col, d->message);
}

void diags_clear(Diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].field);
		free(d->items[i].message);
	}
	free(d->items);
	*d = (Diags){ 0 };
}
