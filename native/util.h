#ifndef DL_UTIL_H
#define DL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define DL_PROTOCOL_VERSION 1

/* Exit codes of the protocol. */
#define DL_EXIT_OK 0
#define DL_EXIT_FAILED 1
#define DL_EXIT_USAGE 2

/* Prints "dockless-helper OP: MESSAGE" on stderr and exits DL_EXIT_USAGE. */
void dl_usage(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Parses the options of the tree walkers, `--root DIR [--status-fd N]`, into ROOT and
 * STATUS_FD (left as it is when not given); anything else, or no `--root`, is a usage
 * error of OP. */
void dl_parse_root_args(const char *op, int argc, char **argv, const char **root, int *status_fd);

/* Parses a whole string as an unsigned number in BASE, at most MAX. */
int dl_parse_ulong(const char *s, int base, unsigned long max, unsigned long *out);

/* write(2) until done, retrying EINTR; returns -1 with errno on failure. */
int dl_write_all(int fd, const void *buf, size_t len);

/* read(2) retrying EINTR. */
ssize_t dl_read_retry(int fd, void *buf, size_t len);

/* Reads FD to its end into a malloc'd buffer. */
int dl_read_to_end(int fd, char **out, size_t *len);

/* PID's start time (field 22 of /proc/PID/stat, clock ticks since boot), what
 * the library records beside a pid so that a reused pid is never taken for it;
 * -1 with errno (ESRCH: gone or unreadable, EIO: unparsable) on failure. */
int dl_proc_start_time(pid_t pid, unsigned long long *start);

#endif
