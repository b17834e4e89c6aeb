/* The one error convention of the helper: every fallible function returns < 0
 * and fills a struct dl_error; the outermost caller turns it into a status line. */
#ifndef DL_ERROR_H
#define DL_ERROR_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define DL_ERR_PATH_MAX 1024
#define DL_ERR_MSG_MAX 512

struct dl_error {
	const char *step;           /* lowercase syscall or phase name; a string literal */
	char path[DL_ERR_PATH_MAX]; /* the path the step applied to, as the container sees it; "" for none */
	int err;                    /* errno, 0 for failures that are not a syscall's */
	char msg[DL_ERR_MSG_MAX];   /* "syscall `argument`" */
};

/* Fills E and returns -1, so that callers can `return dl_fail(...)`. */
int dl_fail(struct dl_error *e, int err, const char *step, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* dl_fail with the current errno; ERRNO is read before the other arguments are evaluated
 * by taking a copy first, so arguments may call functions. */
#define dl_fail_errno(e, step, path, ...)                                                          \
	({                                                                                         \
		int dl_saved_errno_ = errno;                                                       \
		dl_fail((e), dl_saved_errno_, (step), (path), __VA_ARGS__);                        \
	})

static inline void dl_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void dl_freep(void *p)
{
	free(*(void **)p);
}

#define _cleanup_close_ __attribute__((cleanup(dl_closep)))
#define _cleanup_free_ __attribute__((cleanup(dl_freep)))

/* Takes an fd out of a _cleanup_close_ variable. */
static inline int dl_steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#endif
