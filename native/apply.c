/* dockless-helper apply --root DIR: creates the entries of a layer under DIR
 * from a stream of records on stdin, in order, while Node parses and checks the
 * next ones: file creation is kernel-bound, and in a process of its own it runs
 * beside decompression and parsing on another core, as GNU tar's does beside gzip.
 * Policy (which entries, which owners, unsafe names) is decided in Node; here
 * every path is still resolved inside DIR (openat2 RESOLVE_IN_ROOT), its last
 * component never followed and never overwritten, so a bad record fails closed.
 *
 * Records are NUL-terminated fields, a regular file's content after its fields:
 *   f PATH MODE UID GID SEC NSEC SIZE <SIZE bytes>   regular file (UID/GID `-`: keep ours)
 *   d PATH MODE                                       directory
 *   s PATH TARGET UID GID SEC NSEC                    symlink
 *   h PATH TARGET                                     hard link to TARGET (a path under DIR)
 *   r PATH                                            remove PATH and what is below it
 *
 * With `--writeback BYTES`, each time as much content was written, a child
 * process syncfs(2)es the filesystem while this one goes on: the caller's own
 * flush at the end (a store's, before it marks a snapshot complete) then
 * waits for the last stretch only, not for the whole layer's writeback. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "fs.h"
#include "status.h"
#include "util.h"

#define APPLY_BUF (1 << 20)
#define APPLY_MAX_FIELDS 8

struct reader {
	char *buf;
	size_t pos, len;
	int eof;
};

struct apply_ctx {
	int rootfd;
	struct dl_parent_cache parent;
	struct reader in;
	const char *f[APPLY_MAX_FIELDS];
	unsigned long writeback, unflushed;
	pid_t flusher;
};

/* Starts a syncfs of the root's filesystem in a child, unless the last one still runs. */
static void writeback(struct apply_ctx *c)
{
	pid_t pid;

	if (c->flusher > 0) {
		if (waitpid(c->flusher, NULL, WNOHANG) == 0)
			return;
		c->flusher = -1;
	}
	c->unflushed = 0;
	pid = fork();
	if (pid == 0) {
		/* syncfs(2) takes no O_PATH fd (EBADF), which the root is: it is opened again to read.
		 * Best effort: a writeback error is the caller's own flush's to report. */
		int fd = openat(c->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			(void)syncfs(fd);
		_exit(0);
	}
	if (pid > 0)
		c->flusher = pid;
}

static int fill(struct reader *r, struct dl_error *e)
{
	ssize_t n;

	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	do
		n = read(STDIN_FILENO, r->buf + r->len, APPLY_BUF - r->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return dl_fail_errno(e, "read", "", "read `stdin`");
	if (n == 0)
		r->eof = 1;
	r->len += (size_t)n;
	return 0;
}

static int fields_of(char op)
{
	switch (op) {
	case 'f':
		return 8;
	case 'd':
		return 3;
	case 's':
		return 7;
	case 'h':
		return 3;
	case 'r':
		return 2;
	default:
		return -1;
	}
}

/* Reads the next record's fields into C->f; returns 1, or 0 at the end of the stream. */
static int next_record(struct apply_ctx *c, struct dl_error *e)
{
	struct reader *r = &c->in;

	for (;;) {
		size_t at = r->pos;
		int want = -1, got = 0;

		while (at < r->len && (want < 0 || got < want)) {
			char *nul = memchr(r->buf + at, '\0', r->len - at);
			if (nul == NULL)
				break;
			if (got == 0) {
				want = fields_of(r->buf[at]);
				if (want < 0 || nul != r->buf + at + 1)
					return dl_fail(e, EINVAL, "apply", "", "apply: bad record `%.8s`", r->buf + at);
			}
			c->f[got++] = r->buf + at;
			at = (size_t)(nul - r->buf) + 1;
		}
		if (want > 0 && got == want) {
			r->pos = at;
			return 1;
		}
		if (r->eof) {
			if (r->pos == r->len)
				return 0;
			return dl_fail(e, EINVAL, "apply", "", "apply: truncated record");
		}
		if (r->pos == 0 && r->len == APPLY_BUF)
			return dl_fail(e, E2BIG, "apply", "", "apply: record too long");
		if (fill(r, e) < 0)
			return -1;
	}
}

static int parse_id(const char *s, const char *path, int *set, unsigned long *id, struct dl_error *e)
{
	*set = strcmp(s, "-") != 0;
	if (*set && dl_parse_ulong(s, 10, UINT32_MAX - 1, id) < 0)
		return dl_fail(e, EINVAL, "apply", path, "apply `%s`: bad uid or gid `%s`", path, s);
	return 0;
}

static int parse_time(const char *sec, const char *nsec, const char *path, struct timespec ts[2], struct dl_error *e)
{
	char *end;
	long long s;
	unsigned long ns;

	errno = 0;
	s = strtoll(sec, &end, 10);
	if (errno || *end || end == sec || dl_parse_ulong(nsec, 10, 999999999, &ns) < 0)
		return dl_fail(e, EINVAL, "apply", path, "apply `%s`: bad time `%s.%s`", path, sec, nsec);
	ts[0].tv_sec = ts[1].tv_sec = (time_t)s;
	ts[0].tv_nsec = ts[1].tv_nsec = (long)ns;
	return 0;
}

static int write_all(int fd, const char *p, size_t n, const char *path, struct dl_error *e)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return dl_fail_errno(e, "write", path, "write `%s`", path);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int do_file(struct apply_ctx *c, struct dl_error *e)
{
	/* The fields live in the read buffer, which a large file's content overwrites. */
	char path[PATH_MAX];
	char name[NAME_MAX + 1];
	_cleanup_close_ int fd = -1;
	unsigned long mode, uid = 0, gid = 0, size, total;
	int has_uid, has_gid, dir;
	struct timespec ts[2];
	struct reader *r = &c->in;

	if (strlen(c->f[1]) >= sizeof path)
		return dl_fail(e, ENAMETOOLONG, "open", c->f[1], "openat `%.200s…`", c->f[1]);
	strcpy(path, c->f[1]);
	if (dl_parse_ulong(c->f[2], 8, 07777, &mode) < 0 || dl_parse_ulong(c->f[7], 10, ULONG_MAX - 1, &size) < 0)
		return dl_fail(e, EINVAL, "apply", path, "apply `%s`: bad mode or size", path);
	total = size;
	if (parse_id(c->f[3], path, &has_uid, &uid, e) < 0 || parse_id(c->f[4], path, &has_gid, &gid, e) < 0 ||
	    parse_time(c->f[5], c->f[6], path, ts, e) < 0)
		return -1;
	dir = dl_open_parent_cached(&c->parent, c->rootfd, path, name, sizeof name, "open", e);
	if (dir < 0)
		return -1;
	if (name[0] == '\0')
		return dl_fail(e, EEXIST, "open", path, "openat `%s`", path);
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 0777));
	if (fd < 0)
		return dl_fail_errno(e, "open", path, "openat `%s`", path);
	while (size > 0) {
		size_t n;
		if (r->pos == r->len) {
			if (r->eof)
				return dl_fail(e, EINVAL, "apply", path, "apply `%s`: truncated content", path);
			/* A large file's content passes through the buffer whole, not moved down each time. */
			r->pos = r->len = 0;
			if (fill(r, e) < 0)
				return -1;
			continue;
		}
		n = r->len - r->pos < size ? r->len - r->pos : size;
		if (write_all(fd, r->buf + r->pos, n, path, e) < 0)
			return -1;
		r->pos += n;
		size -= n;
	}
	/* chown(2) clears set-user-ID and set-group-ID: the mode goes after it. */
	if ((has_uid || has_gid) && fchown(fd, has_uid ? (uid_t)uid : (uid_t)-1, has_gid ? (gid_t)gid : (gid_t)-1) < 0)
		return dl_fail_errno(e, "chown", path, "fchown `%s`", path);
	if ((mode & 07000) && fchmod(fd, (mode_t)mode) < 0)
		return dl_fail_errno(e, "chmod", path, "fchmod `%s`", path);
	if (futimens(fd, ts) < 0)
		return dl_fail_errno(e, "utimes", path, "futimens `%s`", path);
	if (close(dl_steal_fd(&fd)) < 0)
		return dl_fail_errno(e, "close", path, "close `%s`", path);
	c->unflushed += total;
	if (c->writeback > 0 && c->unflushed >= c->writeback)
		writeback(c);
	return 0;
}

static int do_dir(struct apply_ctx *c, struct dl_error *e)
{
	const char *path = c->f[1];
	char name[NAME_MAX + 1];
	unsigned long mode;
	int dir;

	if (dl_parse_ulong(c->f[2], 8, 0777, &mode) < 0)
		return dl_fail(e, EINVAL, "apply", path, "apply `%s`: bad mode `%s`", path, c->f[2]);
	dir = dl_open_parent_cached(&c->parent, c->rootfd, path, name, sizeof name, "mkdir", e);
	if (dir < 0)
		return -1;
	if (name[0] == '\0' || mkdirat(dir, name, (mode_t)mode) < 0)
		return dl_fail_errno(e, "mkdir", path, "mkdirat `%s`", path);
	return 0;
}

static int do_symlink(struct apply_ctx *c, struct dl_error *e)
{
	const char *path = c->f[1];
	char name[NAME_MAX + 1];
	unsigned long uid = 0, gid = 0;
	int has_uid, has_gid, dir;
	struct timespec ts[2];

	if (parse_id(c->f[3], path, &has_uid, &uid, e) < 0 || parse_id(c->f[4], path, &has_gid, &gid, e) < 0 ||
	    parse_time(c->f[5], c->f[6], path, ts, e) < 0)
		return -1;
	dir = dl_open_parent_cached(&c->parent, c->rootfd, path, name, sizeof name, "symlink", e);
	if (dir < 0)
		return -1;
	if (name[0] == '\0')
		return dl_fail(e, EEXIST, "symlink", path, "symlinkat `%s`", path);
	if (symlinkat(c->f[2], dir, name) < 0)
		return dl_fail_errno(e, "symlink", path, "symlinkat `%s`", path);
	if ((has_uid || has_gid) &&
	    fchownat(dir, name, has_uid ? (uid_t)uid : (uid_t)-1, has_gid ? (gid_t)gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
		return dl_fail_errno(e, "chown", path, "fchownat `%s`", path);
	if (utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return dl_fail_errno(e, "utimes", path, "utimensat `%s`", path);
	return 0;
}

static int do_link(struct apply_ctx *c, struct dl_error *e)
{
	const char *path = c->f[1], *target = c->f[2];
	char name[NAME_MAX + 1], tname[NAME_MAX + 1];
	_cleanup_close_ int tdir = -1;
	int dir;

	tdir = dl_open_parent_in_root(c->rootfd, target, 0, tname, sizeof tname, "link", e);
	if (tdir < 0)
		return -1;
	dir = dl_open_parent_cached(&c->parent, c->rootfd, path, name, sizeof name, "link", e);
	if (dir < 0)
		return -1;
	if (name[0] == '\0' || tname[0] == '\0')
		return dl_fail(e, EEXIST, "link", path, "linkat `%s`", path);
	/* No AT_SYMLINK_FOLLOW: a hard link to a symlink is a second name of the symlink. */
	if (linkat(tdir, tname, dir, name, 0) < 0)
		return dl_fail_errno(e, "link", path, "linkat `%s` `%s`", target, path);
	return 0;
}

static int do_remove(struct apply_ctx *c, struct dl_error *e)
{
	const char *path = c->f[1];
	char name[NAME_MAX + 1], full[PATH_MAX];
	_cleanup_close_ int dir = -1;

	dir = dl_open_parent_in_root(c->rootfd, path, 0, name, sizeof name, "rm", e);
	if (dir < 0)
		return -1;
	if (name[0] == '\0')
		return dl_fail(e, EINVAL, "rm", path, "rm `%s`: the root", path);
	/* The cached parent may be a directory this removes. */
	if (c->parent.fd >= 0) {
		close(c->parent.fd);
		c->parent.fd = -1;
	}
	snprintf(full, sizeof full, "%s", path);
	return dl_remove_at(dir, name, full, strlen(full), e);
}

static int apply_all(struct apply_ctx *c, struct dl_error *e)
{
	int more;

	while ((more = next_record(c, e)) > 0) {
		int rc;
		switch (c->f[0][0]) {
		case 'f':
			rc = do_file(c, e);
			break;
		case 'd':
			rc = do_dir(c, e);
			break;
		case 's':
			rc = do_symlink(c, e);
			break;
		case 'h':
			rc = do_link(c, e);
			break;
		default:
			rc = do_remove(c, e);
			break;
		}
		if (rc < 0)
			return -1;
	}
	return more;
}

int cmd_apply(int argc, char **argv)
{
	struct dl_error e;
	const char *root = NULL;
	int status_fd = 3;
	_cleanup_free_ char *buf = NULL;
	struct apply_ctx c = { .parent = { .fd = -1 }, .flusher = -1 };
	int rc;

	for (int i = 1; i < argc; i++) {
		unsigned long v;
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
			root = argv[++i];
		} else if (strcmp(argv[i], "--status-fd") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &v) < 0)
				dl_usage("apply", "--status-fd: bad number `%s`", argv[i]);
			status_fd = (int)v;
		} else if (strcmp(argv[i], "--writeback") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, ULONG_MAX, &c.writeback) < 0)
				dl_usage("apply", "--writeback: bad number `%s`", argv[i]);
		} else {
			dl_usage("apply", "unknown option `%s`", argv[i]);
		}
	}
	if (root == NULL)
		dl_usage("apply", "--root is required");
	dl_status_init(status_fd);
	signal(SIGPIPE, SIG_IGN);
	/* Modes come exact from Node, which already took its own umask into account. */
	umask(0);
	/* A larger pipe: fewer wake-ups between Node's writes and our reads (best effort). */
	(void)fcntl(STDIN_FILENO, F_SETPIPE_SZ, APPLY_BUF);
	c.rootfd = dl_open_root(root, &e);
	if (c.rootfd < 0)
		goto fail;
	buf = malloc(APPLY_BUF);
	if (buf == NULL) {
		dl_fail_errno(&e, "apply", "", "malloc `%d`", APPLY_BUF);
		goto fail;
	}
	c.in.buf = buf;
	rc = apply_all(&c, &e);
	if (c.flusher > 0)
		waitpid(c.flusher, NULL, 0);
	if (rc < 0)
		goto fail;
	dl_status_simple("done");
	return DL_EXIT_OK;
fail:
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}
