#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status.h"
#include "util.h"

/* Until dl_status_init, the protocol's default: a failure while the options are
 * still being parsed (out of memory) is reported on fd 3 if it is open. */
#define STATUS_FD_DEFAULT 3
#define STATUS_FD_UNSET (-2)
static int status_fd = STATUS_FD_UNSET;
static int gate_fd = -1;

/* Lines stay below PIPE_BUF so that a write(2) of one is atomic. */
struct jline {
	char buf[PIPE_BUF];
	size_t len;
};

void dl_status_init(int fd)
{
	status_fd = (fd >= 0 && fcntl(fd, F_GETFD) >= 0) ? fd : -1;
}

int dl_status_fd(void)
{
	return status_fd;
}

void dl_status_set_gate(int fd)
{
	gate_fd = fd;
}

static void jl_raw(struct jline *l, const char *s)
{
	size_t n = strlen(s);

	/* Keep room for the closing "}\n". */
	if (l->len + n > sizeof l->buf - 2)
		n = sizeof l->buf - 2 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* Appends S as a JSON string, truncated to fit; at most MAX bytes of output. */
static void jl_str(struct jline *l, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t limit = sizeof l->buf - 3; /* room for the closing quote and "}\n" */
	const unsigned char *p;

	if (l->len + max < limit)
		limit = l->len + max;
	l->buf[l->len++] = '"';
	for (p = (const unsigned char *)s; *p; p++) {
		char esc[7];
		size_t n;

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			n = 2;
		} else if (*p == '\n') {
			memcpy(esc, "\\n", n = 2);
		} else if (*p == '\t') {
			memcpy(esc, "\\t", n = 2);
		} else if (*p == '\r') {
			memcpy(esc, "\\r", n = 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			n = 6;
		} else {
			esc[0] = (char)*p;
			n = 1;
		}
		if (l->len + n > limit)
			break;
		memcpy(l->buf + l->len, esc, n);
		l->len += n;
	}
	l->buf[l->len++] = '"';
}

static void jl_int(struct jline *l, long v)
{
	char num[32];

	snprintf(num, sizeof num, "%ld", v);
	jl_raw(l, num);
}

static void jl_finish_and_write(struct jline *l)
{
	l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';

	if (gate_fd >= 0) {
		char c;
		ssize_t n = dl_read_retry(gate_fd, &c, 1);
		close(gate_fd);
		gate_fd = -1;
		if (n != 1)
			_exit(DL_EXIT_FAILED);
	}
	if (status_fd == STATUS_FD_UNSET)
		dl_status_init(STATUS_FD_DEFAULT);
	if (status_fd < 0)
		return;
	/* A short write or EPIPE is ignored: the caller may be gone. */
	while (write(status_fd, l->buf, l->len) < 0 && errno == EINTR)
		;
}

void dl_status_pid(pid_t pid)
{
	dl_status_pid_start(pid, 0);
}

void dl_status_pid_start(pid_t pid, unsigned long long start)
{
	dl_status_proc("pid", pid, start);
}

void dl_status_proc(const char *type, pid_t pid, unsigned long long start)
{
	struct jline l = {.len = 0};

	jl_raw(&l, "{\"type\":");
	jl_str(&l, type, 64);
	jl_raw(&l, ",\"pid\":");
	jl_int(&l, pid);
	if (start > 0) {
		char num[32];
		snprintf(num, sizeof num, ",\"start\":%llu", start);
		jl_raw(&l, num);
	}
	jl_finish_and_write(&l);
}

void dl_status_simple(const char *type)
{
	struct jline l = {.len = 0};

	jl_raw(&l, "{\"type\":");
	jl_str(&l, type, 64);
	jl_finish_and_write(&l);
}

size_t dl_format_exited_ex(char *buf, size_t size, int wait_status, const struct dl_exited_extra *x)
{
	int n;

	if (WIFSIGNALED(wait_status))
		n = snprintf(buf, size, "{\"type\":\"exited\",\"code\":%d,\"signal\":%d%s}\n", 128 + WTERMSIG(wait_status),
			     WTERMSIG(wait_status), x->oom ? ",\"oom\":true" : "");
	else
		n = snprintf(buf, size, "{\"type\":\"exited\",\"code\":%d%s}\n", WEXITSTATUS(wait_status),
			     x->oom ? ",\"oom\":true" : "");
	return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

size_t dl_format_exited(char *buf, size_t size, int wait_status)
{
	static const struct dl_exited_extra none = {0};
	return dl_format_exited_ex(buf, size, wait_status, &none);
}

void dl_status_exited_ex(int wait_status, const struct dl_exited_extra *x)
{
	struct jline l = {.len = 0};

	l.len = dl_format_exited_ex(l.buf, sizeof l.buf, wait_status, x);
	/* dl_format_exited ends the line; drop "}\n" so the common writer can add it. */
	l.len -= 2;
	jl_finish_and_write(&l);
}

void dl_status_exited(int wait_status)
{
	static const struct dl_exited_extra none = {0};
	dl_status_exited_ex(wait_status, &none);
}

void dl_status_error(const struct dl_error *e)
{
	struct jline l = {.len = 0};
	const char *code = e->err ? strerrorname_np(e->err) : "";

	jl_raw(&l, "{\"type\":\"error\",\"step\":");
	jl_str(&l, e->step ? e->step : "", 128);
	if (e->path[0]) {
		jl_raw(&l, ",\"path\":");
		jl_str(&l, e->path, 1536);
	}
	jl_raw(&l, ",\"errno\":");
	jl_int(&l, e->err);
	jl_raw(&l, ",\"code\":");
	jl_str(&l, code ? code : "", 32);
	jl_raw(&l, ",\"message\":");
	jl_str(&l, e->msg, 2048);
	jl_finish_and_write(&l);
}
