/* The container's io, served by the shim or by the io process (see logio.h).
 * Past ~600 lines on purpose: the log writer, the live relay, input and control
 * records share one poll loop and one state, and split into files they would
 * each need all of it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logio.h"
#include "process.h"
#include "tty.h"
#include "userns.h"
#include "util.h"

#define READ_CHUNK 65536
/* As Docker's json-file: a line longer than this is logged in pieces. */
#define PARTIAL_MAX 16384
/* A line's start (a prompt) is logged once its writer pauses this long: an
 * attached reader sees it before the newline, and the pieces a burst writes are
 * still one record. */
#define PARTIAL_IDLE_MS 20
/* Room for the longest record: every byte of a piece escaped as \u00XX. */
#define LOG_BUF (PARTIAL_MAX * 6 + 256)
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#define CONTROL_RECORD 8
#define CONTROL_RESIZE 1

struct sink {
	int fd;
	bool sock;
	char *buf;
	size_t len, cap;
	unsigned long long limit; /* 0: the reader is waited for */
};

struct source {
	int fd;
	const char *stream;
	struct sink *sink;
	char part[PARTIAL_MAX];
	size_t plen;
	bool part_due;          /* part holds bytes not yet logged since the last read */
	long long part_read_ms; /* when they were read (CLOCK_MONOTONIC) */
};

struct logw {
	int fd;
	const char *path;
	unsigned long long size, max;
	unsigned long files;
	char buf[LOG_BUF];
	size_t len;
};

enum { SRC_OUT, SRC_ERR, SRC_TTY, N_SRC };
enum { IN_CALLER, IN_FIFO, N_IN };

/* On the heap, made only when a container's io is served: its buffers are no
 * cost (nor a data rlimit's) to any other op. */
struct io_state {
	struct logw log;
	struct sink out, err;
	struct source src[N_SRC];
	int in_src[N_IN];
	bool in_eof_closes;
	int in_dst;
	bool in_close_pending;
	char inbuf[READ_CHUNK];
	size_t inlen, inoff;
	bool tty;
	int tty_sock;
	int ctl;
	unsigned char ctlbuf[CONTROL_RECORD];
	size_t ctllen;
	unsigned short rows, cols;
	int done_r, complete_w;
	char readbuf[READ_CHUNK];
};
static struct io_state *io_s;
#define S (*io_s)

void dl_io_init(struct dl_io *io)
{
	memset(io, 0, sizeof *io);
	io->control_fd = -1;
	io->complete_r = -1;
	io->done_w = -1;
	io->tty_sock = -1;
	io->pidfd = -1;
	io->log_max_files = 1;
}

static unsigned long long parse_num(const char *op, const char *opt, const char *s, unsigned long max)
{
	unsigned long v;

	if (dl_parse_ulong(s, 10, max, &v) < 0)
		dl_usage(op, "%s: bad number `%s`", opt, s);
	return v;
}

int dl_io_parse(struct dl_io *io, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];
	int need;

	if (strcmp(a, "--live") == 0) {
		io->live = true;
		return 1;
	}
	if (strcmp(a, "--tty") == 0) {
		io->tty = true;
		return 1;
	}
	if (strcmp(a, "--stdin") == 0) {
		io->stdin_relay = true;
		return 1;
	}
	if (strcmp(a, "--tty-size") == 0)
		need = 2;
	else if (strcmp(a, "--log") == 0 || strcmp(a, "--log-max-size") == 0 || strcmp(a, "--log-max-files") == 0 ||
		 strcmp(a, "--live-buffer") == 0 || strcmp(a, "--stdin-fifo") == 0 || strcmp(a, "--control-fifo") == 0 ||
		 strcmp(a, "--control-fd") == 0)
		need = 1;
	else
		return 0;
	if (i + need >= argc)
		dl_usage(op, "%s needs %d argument%s", a, need, need > 1 ? "s" : "");
	if (strcmp(a, "--tty-size") == 0) {
		io->rows = (unsigned short)parse_num(op, a, argv[i + 1], UINT16_MAX);
		io->cols = (unsigned short)parse_num(op, a, argv[i + 2], UINT16_MAX);
	} else if (strcmp(a, "--log") == 0) {
		io->log_path = argv[i + 1];
	} else if (strcmp(a, "--log-max-size") == 0) {
		io->log_max_size = parse_num(op, a, argv[i + 1], ULONG_MAX);
	} else if (strcmp(a, "--log-max-files") == 0) {
		io->log_max_files = (unsigned long)parse_num(op, a, argv[i + 1], 1000);
		if (io->log_max_files == 0)
			dl_usage(op, "--log-max-files: at least 1");
	} else if (strcmp(a, "--live-buffer") == 0) {
		io->live_buffer = parse_num(op, a, argv[i + 1], ULONG_MAX);
	} else if (strcmp(a, "--stdin-fifo") == 0) {
		io->stdin_fifo = argv[i + 1];
	} else if (strcmp(a, "--control-fifo") == 0) {
		io->control_fifo = argv[i + 1];
	} else {
		io->control_fd = (int)parse_num(op, a, argv[i + 1], INT_MAX);
		if (io->control_fd < 3)
			dl_usage(op, "--control-fd: 3 or above");
	}
	return need + 1;
}

bool dl_io_enabled(const struct dl_io *io)
{
	return io->log_path != NULL || io->tty || io->stdin_fifo != NULL || io->control_fifo != NULL;
}

/* ---- the log ---- */

static void log_flush(struct logw *l)
{
	/* A full disk loses log lines, never the container: it is not stopped for them. */
	if (l->len > 0 && dl_write_all(l->fd, l->buf, l->len) == 0)
		l->size += l->len;
	l->len = 0;
}

static void log_rotate(struct logw *l)
{
	char from[PATH_MAX], to[PATH_MAX];

	if (l->files <= 1) {
		if (ftruncate(l->fd, 0) == 0)
			l->size = 0;
		return;
	}
	/* Renaming over the oldest removes it. Readers holding a file keep reading it. */
	for (unsigned long k = l->files - 1; k >= 1; k--) {
		if (k == 1)
			snprintf(from, sizeof from, "%s", l->path);
		else
			snprintf(from, sizeof from, "%s.%lu", l->path, k - 1);
		snprintf(to, sizeof to, "%s.%lu", l->path, k);
		rename(from, to);
	}
	close(l->fd);
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
	l->size = 0;
}

/* What a byte becomes in a JSON string: 0 as it is, else the letter after `\`
 * (`u` for \u00XX). */
static char escapes[256];

static void escapes_init(void)
{
	for (int c = 0; c < 0x20; c++)
		escapes[c] = 'u';
	escapes['\b'] = 'b';
	escapes['\t'] = 't';
	escapes['\n'] = 'n';
	escapes['\f'] = 'f';
	escapes['\r'] = 'r';
	escapes['"'] = '"';
	escapes['\\'] = '\\';
	escapes[0x7f] = 'u';
}

static size_t escape(char *out, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i = 0;

	while (i < n) {
		size_t run = i;
		while (run < n && escapes[(unsigned char)p[run]] == 0)
			run++;
		memcpy(out + o, p + i, run - i);
		o += run - i;
		if (run == n)
			break;
		unsigned char c = (unsigned char)p[run];
		out[o++] = '\\';
		out[o++] = escapes[c];
		if (escapes[c] == 'u') {
			memcpy(out + o, "00", 2);
			out[o + 2] = hex[c >> 4];
			out[o + 3] = hex[c & 15];
			o += 4;
		}
		i = run + 1;
	}
	return o;
}

static void log_record(struct logw *l, const char *stream, const char *time, const char *p, size_t n)
{
	char *rec;
	size_t len;

	if (l->fd < 0)
		return;
	if (l->len + n * 6 + 256 > sizeof l->buf)
		log_flush(l);
	rec = l->buf + l->len;
	len = 0;
	memcpy(rec, "{\"log\":\"", 8);
	len += 8;
	len += escape(rec + len, p, n);
	{
		size_t sl = strlen(stream), tl = strlen(time);
		memcpy(rec + len, "\",\"stream\":\"", 12);
		len += 12;
		memcpy(rec + len, stream, sl);
		len += sl;
		memcpy(rec + len, "\",\"time\":\"", 10);
		len += 10;
		memcpy(rec + len, time, tl);
		len += tl;
		memcpy(rec + len, "\"}\n", 3);
		len += 3;
	}
	if (l->max > 0 && l->size + l->len + len > l->max && l->size + l->len > 0) {
		/* The record goes first in the next file: the one before stays within the size. */
		if (l->len > 0 && dl_write_all(l->fd, l->buf, l->len) == 0)
			l->size += l->len;
		memmove(l->buf, rec, len);
		l->len = 0;
		log_rotate(l);
		if (l->fd < 0)
			return;
		rec = l->buf;
	}
	l->len += len;
}

static void now_rfc3339(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* ---- live output ---- */

static void sink_close(struct sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}

static ssize_t sink_try(struct sink *s, const char *p, size_t n)
{
	/* Per call, not on the file: an inherited descriptor is shared with the caller. */
	if (s->sock)
		return send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(s->fd, p, n);
}

static void sink_put(struct sink *s, const char *p, size_t n)
{
	if (s->fd < 0 || n == 0)
		return;
	if (s->len == 0) {
		ssize_t w = sink_try(s, p, n);
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				sink_close(s);
				return;
			}
			w = 0;
		}
		p += w;
		n -= (size_t)w;
		if (n == 0)
			return;
	}
	if (s->limit > 0 && s->len + n > s->limit) {
		/* The reader is too far behind: its stream ends here, the log has the rest. */
		sink_close(s);
		return;
	}
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : READ_CHUNK;
		while (cap < s->len + n)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (b == NULL) {
			sink_close(s);
			return;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

/* Writes what the reader takes now of the held output: 0, or -1 when the
 * reader is gone (the sink is left as it is). No allocation. */
static int sink_write_held(struct sink *s)
{
	ssize_t w = sink_try(s, s->buf, s->len);

	if (w < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	memmove(s->buf, s->buf + w, s->len - (size_t)w);
	s->len -= (size_t)w;
	return 0;
}

static void sink_flush(struct sink *s)
{
	if (s->fd >= 0 && s->len > 0 && sink_write_held(s) < 0)
		sink_close(s);
}

static void sink_open(struct sink *s, int fd, unsigned long long limit)
{
	struct stat st;

	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->limit = limit;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		s->sock = S_ISSOCK(st.st_mode);
		if (S_ISFIFO(st.st_mode))
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
}

/* ---- sources ---- */

static void source_emit(struct source *src, const char *time, const char *p, size_t n)
{
	log_record(&S.log, src->stream, time, p, n);
}

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How many of the N bytes at P end on a whole UTF-8 character: a character is
 * never split between two records. */
static size_t utf8_whole(const char *p, size_t n)
{
	for (size_t back = 1; back <= 4 && back <= n; back++) {
		unsigned char c = (unsigned char)p[n - back];
		if (c < 0x80)
			return n;
		if (c >= 0xc0) {
			size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			return need > back ? n - back : n;
		}
	}
	return n;
}

/* Logs the start of a line whose writer paused, as a record without a newline
 * (json-file's partial record; readers join it with the rest). */
static void source_idle(struct source *src, long long now)
{
	char time[48];
	size_t whole;

	if (!src->part_due || now - src->part_read_ms < PARTIAL_IDLE_MS)
		return;
	src->part_due = false;
	whole = utf8_whole(src->part, src->plen);
	if (whole == 0)
		return;
	now_rfc3339(time, sizeof time);
	source_emit(src, time, src->part, whole);
	memmove(src->part, src->part + whole, src->plen - whole);
	src->plen -= whole;
}

static void source_data(struct source *src, const char *p, size_t n)
{
	char time[48];

	now_rfc3339(time, sizeof time);
	sink_put(src->sink, p, n);
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t seg = nl ? (size_t)(nl - p) + 1 : n;
		if (src->plen == 0 && nl != NULL && seg <= PARTIAL_MAX) {
			source_emit(src, time, p, seg);
		} else {
			size_t take = seg < PARTIAL_MAX - src->plen ? seg : PARTIAL_MAX - src->plen;
			memcpy(src->part + src->plen, p, take);
			src->plen += take;
			if (src->plen == PARTIAL_MAX || (nl != NULL && take == seg)) {
				source_emit(src, time, src->part, src->plen);
				src->plen = 0;
			}
			seg = take;
		}
		p += seg;
		n -= seg;
	}
	src->part_due = src->plen > 0;
	src->part_read_ms = monotonic_ms();
}

static void source_end(struct source *src)
{
	char time[48];

	if (src->plen > 0) {
		now_rfc3339(time, sizeof time);
		source_emit(src, time, src->part, src->plen);
		src->plen = 0;
	}
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
}

/* One read; false once the source has ended. */
static bool source_read(struct source *src)
{
	ssize_t n = read(src->fd, S.readbuf, sizeof S.readbuf);

	if (n > 0) {
		source_data(src, S.readbuf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	/* EIO: a TTY master whose slave nobody holds any more. */
	source_end(src);
	return false;
}

/* ---- input and control ---- */

static void input_close_dst(void)
{
	if (S.in_dst >= 0 && S.in_dst != S.src[SRC_TTY].fd)
		close(S.in_dst);
	S.in_dst = -1;
	S.inlen = S.inoff = 0;
	for (int i = 0; i < N_IN; i++) {
		if (S.in_src[i] >= 0)
			close(S.in_src[i]);
		S.in_src[i] = -1;
	}
}

static void input_flush(void)
{
	while (S.inoff < S.inlen) {
		ssize_t w = write(S.in_dst, S.inbuf + S.inoff, S.inlen - S.inoff);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				input_close_dst(); /* the container closed its stdin */
			return;
		}
		S.inoff += (size_t)w;
	}
	S.inlen = S.inoff = 0;
	if (S.in_close_pending)
		input_close_dst();
}

static void input_read(int i)
{
	ssize_t n = read(S.in_src[i], S.inbuf, sizeof S.inbuf);

	if (n > 0) {
		S.inlen = (size_t)n;
		S.inoff = 0;
		input_flush();
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	close(S.in_src[i]);
	S.in_src[i] = -1;
	/* The caller's end of stdin closes the container's (a pipe's EOF); a terminal has none, ^D is a byte. */
	if (i == IN_CALLER && S.in_eof_closes) {
		S.in_close_pending = true;
		input_flush();
	}
}

static void apply_size(void)
{
	if (S.src[SRC_TTY].fd >= 0 && S.rows > 0 && S.cols > 0)
		dl_tty_resize(S.src[SRC_TTY].fd, S.rows, S.cols);
}

static void control_read(void)
{
	ssize_t n = read(S.ctl, S.ctlbuf + S.ctllen, sizeof S.ctlbuf - S.ctllen);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(S.ctl);
		S.ctl = -1;
		return;
	}
	if (n < 0)
		return;
	S.ctllen += (size_t)n;
	if (S.ctllen < CONTROL_RECORD)
		return;
	S.ctllen = 0;
	{
		const unsigned char *b = S.ctlbuf;
		uint32_t kind = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
		if (kind == CONTROL_RESIZE) {
			S.rows = (unsigned short)(b[4] | b[5] << 8);
			S.cols = (unsigned short)(b[6] | b[7] << 8);
			apply_size();
		}
	}
}

/* The socket closed, and FD (the master pid 1 sent, if any) made the TTY source, non-blocking. */
static bool tty_adopt(int fd)
{
	close(S.tty_sock);
	S.tty_sock = -1;
	if (fd < 0)
		return false;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	S.src[SRC_TTY].fd = fd;
	return true;
}

static void tty_receive(void)
{
	int fd = -1;

	if (dl_recv_fd(S.tty_sock, &fd) < 0 && errno == EINTR)
		return;
	if (tty_adopt(fd)) {
		S.in_dst = fd;
		apply_size();
	}
}

/* ---- the loop ---- */

/* A master sent before a quick pid 1 exited may still wait in the socket, the
 * end seen first: taken now, so that what the container wrote on it is read. */
static void tty_take_pending(void)
{
	struct pollfd p = {.fd = S.tty_sock, .events = POLLIN};
	int fd = -1;

	if (S.tty_sock < 0)
		return;
	if (poll(&p, 1, 0) > 0)
		dl_recv_fd(S.tty_sock, &fd);
	/* Read only: the input is over (S.in_dst is not set, nor closed twice later). */
	tty_adopt(fd);
}

/* Once the container is over: what is left in its sources, then the last records. */
static void drain(void)
{
	tty_take_pending();
	for (int i = 0; i < N_SRC; i++)
		while (S.src[i].fd >= 0 && source_read(&S.src[i])) {
			/* Drained when a read would wait; what is written later is not the container's. */
			struct pollfd p = {.fd = S.src[i].fd, .events = POLLIN};
			if (poll(&p, 1, 0) <= 0)
				source_end(&S.src[i]);
		}
	if (S.log.fd >= 0) {
		log_flush(&S.log);
		close(S.log.fd);
		S.log.fd = -1;
	}
}

static bool live_pending(void)
{
	return (S.out.fd >= 0 && S.out.len > 0) || (S.err.fd >= 0 && S.err.len > 0);
}

/* Hands the held output to a live reader, blocking; no allocation (it may run in
 * the child of a shim with a thread). */
static void live_hand_over(void)
{
	for (struct sink *s = &S.out; s != NULL; s = s == &S.out ? &S.err : NULL)
		while (s->fd >= 0 && s->len > 0) {
			struct pollfd p = {.fd = s->fd, .events = POLLOUT};
			if ((poll(&p, 1, -1) < 0 && errno != EINTR) || sink_write_held(s) < 0)
				break;
		}
}

static _Noreturn void finish(void)
{
	drain();
	/* A byte: it goes on for a live reader, the shim need not wait for it; EOF alone: it exits now. */
	if (live_pending())
		dl_write_all(S.complete_w, "l", 1);
	close(S.complete_w);
	live_hand_over();
	_exit(0);
}

/* The poll loop, until END_FD is readable (the container is over: true) or
 * poll fails (false). */
static bool io_loop(int end_fd)
{
	struct pollfd fds[16];
	int who[16];

	for (;;) {
		int n = 0;

#define ADD(f, ev, tag)                                                                                            \
	do {                                                                                                       \
		fds[n].fd = (f);                                                                                   \
		fds[n].events = (ev);                                                                              \
		fds[n].revents = 0;                                                                                \
		who[n++] = (tag);                                                                                  \
	} while (0)
		ADD(end_fd, POLLIN, 100);
		for (int i = 0; i < N_SRC; i++)
			/* A reader that is waited for holds its sources back: the container waits with them. */
			if (S.src[i].fd >= 0 && !(S.src[i].sink->limit == 0 && S.src[i].sink->len > 0))
				ADD(S.src[i].fd, POLLIN, i);
		if (S.out.fd >= 0 && S.out.len > 0)
			ADD(S.out.fd, POLLOUT, 10);
		if (S.err.fd >= 0 && S.err.len > 0)
			ADD(S.err.fd, POLLOUT, 11);
		if (S.in_dst >= 0 && S.inoff < S.inlen)
			ADD(S.in_dst, POLLOUT, 20);
		/* Before input: a resize the caller made before it wrote is applied before what it wrote is read. */
		if (S.ctl >= 0)
			ADD(S.ctl, POLLIN, 40);
		if (S.in_dst >= 0 && S.inoff >= S.inlen)
			for (int i = 0; i < N_IN; i++)
				if (S.in_src[i] >= 0)
					ADD(S.in_src[i], POLLIN, 30 + i);
		if (S.tty_sock >= 0)
			ADD(S.tty_sock, POLLIN, 50);
#undef ADD
		int timeout = -1;
		long long now = monotonic_ms();
		for (int i = 0; i < N_SRC; i++)
			if (S.src[i].fd >= 0 && S.src[i].part_due) {
				long long left = S.src[i].part_read_ms + PARTIAL_IDLE_MS - now;
				left = left < 0 ? 0 : left;
				if (timeout < 0 || left < timeout)
					timeout = (int)left;
			}
		if (poll(fds, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		for (int k = 0; k < n; k++) {
			if (fds[k].revents == 0)
				continue;
			switch (who[k]) {
			case 100:
				return true;
			case 10:
				sink_flush(&S.out);
				break;
			case 11:
				sink_flush(&S.err);
				break;
			case 20:
				input_flush();
				break;
			case 30:
			case 31:
				if (S.in_src[who[k] - 30] >= 0 && S.in_dst >= 0)
					input_read(who[k] - 30);
				break;
			case 40:
				control_read();
				break;
			case 50:
				tty_receive();
				break;
			default:
				if (S.src[who[k]].fd >= 0)
					source_read(&S.src[who[k]]);
			}
		}
		now = monotonic_ms();
		for (int i = 0; i < N_SRC; i++)
			if (S.src[i].fd >= 0)
				source_idle(&S.src[i], now);
		log_flush(&S.log);
	}
}

/* ---- starting it ---- */

static int open_fifo(const char *path, int *fd, struct dl_error *e)
{
	struct stat st;

	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		return dl_fail_errno(e, "io", path, "mkfifo `%s`", path);
	/* Read-write: writers may come and go without an EOF here. */
	*fd = open(path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return dl_fail_errno(e, "io", path, "open `%s`", path);
	if (fstat(*fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return dl_fail(e, EINVAL, "io", path, "open `%s`: not a FIFO", path);
	return 0;
}

static int state_init(const struct dl_io *io, struct dl_error *e)
{
	escapes_init();
	io_s = calloc(1, sizeof *io_s);
	if (io_s == NULL)
		return dl_fail(e, ENOMEM, "io", "", "calloc `io`");
	S.log.fd = -1;
	S.log.path = io->log_path;
	S.log.max = io->log_max_size;
	S.log.files = io->log_max_files;
	S.src[SRC_OUT] = (struct source){.fd = -1, .stream = "stdout", .sink = &S.out};
	S.src[SRC_ERR] = (struct source){.fd = -1, .stream = "stderr", .sink = &S.err};
	S.src[SRC_TTY] = (struct source){.fd = -1, .stream = "stdout", .sink = &S.out};
	S.in_src[IN_CALLER] = S.in_src[IN_FIFO] = -1;
	S.in_dst = -1;
	S.tty = io->tty;
	S.tty_sock = -1;
	S.ctl = -1;
	S.rows = io->rows;
	S.cols = io->cols;
	S.done_r = S.complete_w = -1;
	return 0;
}

/* In the io process: everything above 2 closed but its own, and 0, 1, 2 on
 * /dev/null, so that ending a live stream really ends it for the reader. */
static void io_child_setup(void)
{
	int devnull;

	dl_close_fds_except((int[]){S.log.fd, S.src[SRC_OUT].fd, S.src[SRC_ERR].fd, S.src[SRC_TTY].fd, S.in_dst,
				    S.in_src[IN_CALLER], S.in_src[IN_FIFO], S.tty_sock, S.ctl, S.done_r, S.complete_w,
				    S.out.fd, S.err.fd},
			    13);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		close(devnull);
	}
	prctl(PR_SET_NAME, "dockless-io");
}

static int pipes(int (*p)[2], size_t n, struct dl_error *e)
{
	for (size_t i = 0; i < n; i++)
		if (pipe2(p[i], O_CLOEXEC) < 0)
			return dl_fail_errno(e, "io", "", "pipe2 `io`");
	return 0;
}

int dl_io_start_run(struct dl_io *io, struct dl_error *e)
{
	/* out, err, in */
	int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	int sv[2] = {-1, -1};
	int live_out = -1, live_err = -1;
	bool take_stdin = io->stdin_relay || io->stdin_fifo != NULL;
	struct stat st;

	if (state_init(io, e) < 0)
		return -1;
	if (io->log_path != NULL) {
		S.log.fd = open(io->log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (S.log.fd < 0)
			return dl_fail_errno(e, "io", io->log_path, "open `%s`", io->log_path);
		if (fstat(S.log.fd, &st) == 0)
			S.log.size = (unsigned long long)st.st_size;
	}
	if (io->stdin_fifo != NULL && open_fifo(io->stdin_fifo, &S.in_src[IN_FIFO], e) < 0)
		return -1;
	if (io->control_fifo != NULL && open_fifo(io->control_fifo, &S.ctl, e) < 0)
		return -1;
	if (pipes(p, 2, e) < 0 || (take_stdin && !io->tty && pipes(p + 2, 1, e) < 0))
		return -1;
	if (io->tty && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return dl_fail_errno(e, "io", "", "socketpair `tty`");
	if (io->live) {
		live_out = fcntl(1, F_DUPFD_CLOEXEC, 3);
		live_err = fcntl(2, F_DUPFD_CLOEXEC, 3);
	}
	if (io->stdin_relay)
		S.in_src[IN_CALLER] = fcntl(0, F_DUPFD_CLOEXEC, 3);
	S.in_eof_closes = !io->tty;
	fcntl(p[0][0], F_SETFL, O_NONBLOCK);
	fcntl(p[1][0], F_SETFL, O_NONBLOCK);
	/* Fewer, larger reads for a chatty container; the default where the limit refuses it. */
	fcntl(p[0][0], F_SETPIPE_SZ, 1 << 20);
	if (p[2][1] >= 0)
		fcntl(p[2][1], F_SETFL, O_NONBLOCK);
	S.src[SRC_OUT].fd = p[0][0];
	S.src[SRC_ERR].fd = p[1][0];
	S.in_dst = p[2][1];
	S.tty_sock = sv[0];
	sink_open(&S.out, live_out, io->live_buffer);
	sink_open(&S.err, live_err, io->live_buffer);
	/* The container's ends, on 0, 1, 2 for pid 1 to inherit. */
	dup2(p[0][1], 1);
	dup2(p[1][1], 2);
	if (p[2][0] >= 0) {
		dup2(p[2][0], 0);
	} else if (take_stdin) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull < 0)
			return dl_fail_errno(e, "io", "/dev/null", "open `/dev/null`");
		dup2(devnull, 0);
		close(devnull);
	}
	close(p[0][1]);
	close(p[1][1]);
	if (p[2][0] >= 0)
		close(p[2][0]);
	io->tty_sock = sv[1];
	io->owns_stdio = true;
	return 0;
}

/* The io ends this process no longer serves: the io process has them. */
static void release_ends(void)
{
	int mine[] = {S.log.fd, S.src[SRC_OUT].fd, S.src[SRC_ERR].fd, S.in_dst, S.in_src[IN_CALLER], S.in_src[IN_FIFO],
		      S.tty_sock, S.ctl, S.out.fd, S.err.fd};

	for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
		if (mine[i] >= 0)
			close(mine[i]);
	free(S.out.buf);
	free(S.err.buf);
	free(io_s);
	io_s = NULL;
}

int dl_io_watch_run(struct dl_io *io, pid_t pid1, struct dl_error *e)
{
	/* done, complete */
	int p[2][2] = {{-1, -1}, {-1, -1}};
	pid_t pid;

	/* Close-on-exec already. */
	io->pidfd = (int)syscall(SYS_pidfd_open, pid1, 0);
	if (io->pidfd >= 0)
		return 0;
	/* Before Linux 5.3 nothing but a wait tells of pid 1's exit: a process of
	 * its own serves the io while the shim waits. */
	if (pipes(p, 2, e) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return dl_fail_errno(e, "io", "", "fork `io`");
	if (pid == 0) {
		S.done_r = p[0][0];
		S.complete_w = p[1][1];
		io_child_setup();
		io_loop(S.done_r);
		finish();
	}
	close(p[0][0]);
	close(p[1][1]);
	release_ends();
	io->pid = pid;
	io->done_w = p[0][1];
	io->complete_r = p[1][0];
	return 0;
}

void dl_io_serve(struct dl_io *io)
{
	/* Unserved, the container would wait on a full pipe while the shim waits
	 * for it: its output ends here instead, as when an io process dies. */
	if (io->pidfd >= 0 && !io_loop(io->pidfd))
		drain();
}

int dl_io_send_tty(struct dl_io *io, int *slave, struct dl_error *e)
{
	_cleanup_close_ int master = -1;

	if (dl_tty_open(io->rows, io->cols, &master, e) < 0 || dl_tty_peer(master, slave, e) < 0)
		return -1;
	if (dl_send_fd(io->tty_sock, master) < 0)
		return dl_fail_errno(e, "tty", "", "sendmsg `tty`");
	close(io->tty_sock);
	io->tty_sock = -1;
	return 0;
}

int dl_io_start_exec(struct dl_io *io, int master, struct dl_error *e)
{
	int p[2][2] = {{-1, -1}, {-1, -1}};
	int live_out;
	pid_t pid;

	if (state_init(io, e) < 0 || pipes(p, 2, e) < 0)
		return -1;
	live_out = fcntl(1, F_DUPFD_CLOEXEC, 3);
	S.in_src[IN_CALLER] = fcntl(0, F_DUPFD_CLOEXEC, 3);
	S.ctl = io->control_fd;
	pid = fork();
	if (pid < 0)
		return dl_fail_errno(e, "io", "", "fork `io`");
	if (pid == 0) {
		fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		S.src[SRC_TTY].fd = master;
		S.in_dst = master;
		S.done_r = p[0][0];
		S.complete_w = p[1][1];
		/* The caller reads the exec's output as it comes: it is waited for, as a pipe would. */
		sink_open(&S.out, live_out, 0);
		sink_open(&S.err, -1, 0);
		io_child_setup();
		io_loop(S.done_r);
		finish();
	}
	close(p[0][0]);
	close(p[1][1]);
	if (live_out >= 0)
		close(live_out);
	if (S.in_src[IN_CALLER] >= 0)
		close(S.in_src[IN_CALLER]);
	if (io->control_fd >= 0)
		close(io->control_fd);
	io->pid = pid;
	io->done_w = p[0][1];
	io->complete_r = p[1][0];
	return 0;
}

/* In the shim, once pid 1 is reaped: the last records, then whatever a live
 * reader has not taken yet goes on in a child of its own, as the io process
 * would have, so that the shim's exit does not wait for the reader. */
static void finish_in_shim(struct dl_io *io)
{
	pid_t pid = -1;

	input_close_dst();
	if (S.ctl >= 0)
		close(S.ctl);
	S.ctl = -1;
	drain();
	close(io->pidfd);
	io->pidfd = -1;
	if (live_pending())
		pid = fork();
	if (pid == 0) {
		dl_close_fds_except((int[]){S.out.fd, S.err.fd}, 2);
		prctl(PR_SET_NAME, "dockless-io");
		live_hand_over();
		_exit(0);
	}
	/* No child (fork failed): that output is dropped as a reader too far behind
	 * has it dropped (the log has it), never waited for here: the reader may be
	 * waiting for the `exited` line first. */
	release_ends();
}

void dl_io_finish(struct dl_io *io)
{
	char byte;
	bool lingers = false;

	if (io->pid <= 0 && io->pidfd < 0)
		return;
	if (io->owns_stdio) {
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			close(devnull);
		}
	}
	if (io->pidfd >= 0) {
		finish_in_shim(io);
		return;
	}
	close(io->done_w);
	io->done_w = -1;
	while (dl_read_retry(io->complete_r, &byte, 1) > 0)
		lingers = true;
	close(io->complete_r);
	io->complete_r = -1;
	/* Reaped here, so that nothing of the container outlives the shim; one that still hands
	 * output to a live reader finishes on its own. ECHILD: exec's init loop reaped it. */
	waitpid(io->pid, NULL, lingers ? WNOHANG : 0);
	io->pid = 0;
}
