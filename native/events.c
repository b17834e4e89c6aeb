#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "util.h"

int dl_events_parse(struct dl_events *ev, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];
	const char **slot;

	if (strcmp(a, "--events-file") == 0)
		slot = &ev->file;
	else if (strcmp(a, "--event-name") == 0)
		slot = &ev->name;
	else if (strcmp(a, "--event-image") == 0)
		slot = &ev->image;
	else if (strcmp(a, "--events-launch") == 0)
		slot = &ev->launch;
	else
		return 0;
	if (i + 1 >= argc)
		dl_usage(op, "%s needs 1 argument", a);
	*slot = argv[i + 1];
	return 2;
}

/* Appends S as a JSON string of at most MAX bytes of S (cut short, never mid-escape). */
static size_t put_str(char *buf, size_t at, size_t size, const char *s, size_t max)
{
	size_t used = 0;

	if (at + 2 >= size)
		return at;
	buf[at++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p && used < max; p++, used++) {
		char esc[8];
		int n;

		if (*p == '"' || *p == '\\')
			n = snprintf(esc, sizeof esc, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			n = snprintf(esc, sizeof esc, "\\u%04x", *p);
		else
			n = snprintf(esc, sizeof esc, "%c", *p);
		if (at + (size_t)n + 1 >= size)
			break;
		memcpy(buf + at, esc, (size_t)n);
		at += (size_t)n;
	}
	buf[at++] = '"';
	return at;
}

/* Renames FILE away when the file FD is open on is FILE and full; true when FD must be reopened. */
static bool rotate_if_full(const char *file, int fd)
{
	struct stat st, now;
	char old[PATH_MAX];

	if (fstat(fd, &st) < 0 || st.st_size < DL_EVENTS_MAX_BYTES)
		return false;
	/* Only the file this fd is: another writer may have rotated it already. */
	if (stat(file, &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev &&
	    (size_t)snprintf(old, sizeof old, "%s.1", file) < sizeof old)
		rename(file, old);
	return true;
}

void dl_events_write(const struct dl_events *ev, const char *action, const char *attrs)
{
	char line[PIPE_BUF];
	struct timespec ts;
	size_t at = 0;
	int n;

	if (ev->file == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof line, "{\"type\":\"container\",\"action\":\"%s\",\"id\":\"%s\",\"time\":%lld,\"attributes\":{",
		     action, ev->id ? ev->id : "", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	at = (size_t)n;
	if (attrs[0]) {
		n = snprintf(line + at, sizeof line - at, "%s", attrs);
		if (n < 0 || at + (size_t)n >= sizeof line)
			return;
		at += (size_t)n;
	}
	if (ev->name) {
		at += (size_t)snprintf(line + at, sizeof line - at, "%s\"name\":", attrs[0] ? "," : "");
		at = put_str(line, at, sizeof line - 4, ev->name, 256);
	}
	if (ev->image) {
		at += (size_t)snprintf(line + at, sizeof line - at, "%s\"image\":", attrs[0] || ev->name ? "," : "");
		at = put_str(line, at, sizeof line - 4, ev->image, 1024);
	}
	line[at++] = '}';
	line[at++] = '}';
	line[at++] = '\n';
	dl_events_append(ev->file, line, at);
}

void dl_events_append(const char *file, const char *text, size_t len)
{
	int fd;

	if (len == 0 || len >= PIPE_BUF)
		return;
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (rotate_if_full(file, fd)) {
		close(fd);
		fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
	}
	dl_write_all(fd, text, len);
	close(fd);
}

int dl_write_file_replace(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (dl_write_all(fd, data, len) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}
