#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int dl_fail(struct dl_error *e, int err, const char *step, const char *path, const char *fmt, ...)
{
	va_list ap;

	e->step = step;
	e->err = err;
	snprintf(e->path, sizeof e->path, "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}
