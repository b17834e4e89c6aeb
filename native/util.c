#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

void dl_usage(const char *op, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, "dockless-helper%s%s: %s\n", op ? " " : "", op ? op : "", buf);
	_exit(DL_EXIT_USAGE);
}

void dl_parse_root_args(const char *op, int argc, char **argv, const char **root, int *status_fd)
{
	for (int i = 1; i < argc; i++) {
		unsigned long v;
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
			*root = argv[++i];
		} else if (strcmp(argv[i], "--status-fd") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &v) < 0)
				dl_usage(op, "--status-fd: bad number `%s`", argv[i]);
			*status_fd = (int)v;
		} else {
			dl_usage(op, "unknown option `%s`", argv[i]);
		}
	}
	if (*root == NULL)
		dl_usage(op, "--root is required");
}

int dl_parse_ulong(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] == '\0' || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		return -1;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

int dl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t dl_read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

int dl_proc_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errno = ESRCH;
		return -1;
	}
	n = dl_read_retry(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) {
		errno = ESRCH;
		return -1;
	}
	buf[n] = '\0';
	/* After the last `)`: the command name may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL) {
		errno = EIO;
		return -1;
	}
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

int dl_read_to_end(int fd, char **out, size_t *len)
{
	size_t cap = 65536, used = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return -1;
	for (;;) {
		ssize_t n;
		if (used == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (bigger == NULL) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			buf = bigger;
			cap *= 2;
		}
		n = dl_read_retry(fd, buf + used, cap - used);
		if (n < 0) {
			int saved = errno;
			free(buf);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	*out = buf;
	*len = used;
	return 0;
}
