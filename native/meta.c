/* dockless-helper meta --root DIR: a batch of metadata operations Node cannot do
 * (device nodes, xattrs, ownership of symlinks) on files under DIR. Records come
 * on stdin as NUL-terminated fields; every path stays inside DIR and its last
 * component is never followed. With user namespace maps the batch is applied as
 * root of a new user namespace, so that a rootless caller can give files the
 * subordinate ids the namespace maps. */
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <linux/fs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "fs.h"
#include "status.h"
#include "userns.h"
#include "util.h"

struct meta_ctx {
	int rootfd;
	struct dl_parent_cache parent;
};

struct record {
	const char *op;
	const char *path;
	const char *f[4];
};

/* Opens PATH's parent (cached) and puts the last component in NAME; "" for the root itself. */
static int open_parent(struct meta_ctx *m, const char *op, const char *path, char *name, size_t name_size,
		       struct dl_error *e)
{
	return dl_open_parent_cached(&m->parent, m->rootfd, path, name, name_size, op, e);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int do_mknod(struct meta_ctx *m, const struct record *r, struct dl_error *e)
{
	char name[NAME_MAX + 1];
	unsigned long mode, major, minor;
	mode_t type;
	int dir;

	if (strcmp(r->f[0], "c") == 0)
		type = S_IFCHR;
	else if (strcmp(r->f[0], "b") == 0)
		type = S_IFBLK;
	else if (strcmp(r->f[0], "p") == 0)
		type = S_IFIFO;
	else
		return dl_fail(e, 0, "mknod", r->path, "mknod `%s`: bad type `%s`", r->path, r->f[0]);
	if (dl_parse_ulong(r->f[1], 8, 07777, &mode) < 0 || dl_parse_ulong(r->f[2], 10, UINT32_MAX, &major) < 0 ||
	    dl_parse_ulong(r->f[3], 10, UINT32_MAX, &minor) < 0)
		return dl_fail(e, 0, "mknod", r->path, "mknod `%s`: bad mode or device number", r->path);
	dir = open_parent(m, "mknod", r->path, name, sizeof name, e);
	if (dir < 0)
		return -1;
	if (name[0] == '\0')
		return dl_fail(e, EEXIST, "mknod", r->path, "mknodat `%s`", r->path);
	if (mknodat(dir, name, type | (mode_t)mode, makedev(major, minor)) < 0)
		return dl_fail_errno(e, "mknod", r->path, "mknodat `%s`", r->path);
	return 0;
}

static int do_xattr(struct meta_ctx *m, const struct record *r, struct dl_error *e)
{
	char name[NAME_MAX + 1];
	char target[PATH_MAX];
	_cleanup_free_ char *value = NULL;
	size_t hexlen = strlen(r->f[1]), len = hexlen / 2;
	int dir;

	if (hexlen % 2)
		return dl_fail(e, 0, "xattr", r->path, "lsetxattr `%s` `%s`: odd hex value", r->path, r->f[0]);
	value = malloc(len ? len : 1);
	if (value == NULL)
		return dl_fail_errno(e, "xattr", r->path, "malloc `%zu`", len);
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(r->f[1][2 * i]), lo = hexval(r->f[1][2 * i + 1]);
		if (hi < 0 || lo < 0)
			return dl_fail(e, 0, "xattr", r->path, "lsetxattr `%s` `%s`: bad hex value", r->path, r->f[0]);
		value[i] = (char)(hi << 4 | lo);
	}
	dir = open_parent(m, "xattr", r->path, name, sizeof name, e);
	if (dir < 0)
		return -1;
	/* /proc/self/fd/N is the confined parent; the final name is looked up there and,
	 * with lsetxattr, not followed. */
	if (name[0])
		snprintf(target, sizeof target, "/proc/self/fd/%d/%s", dir, name);
	else
		snprintf(target, sizeof target, "/proc/self/fd/%d", dir);
	if ((name[0] ? lsetxattr(target, r->f[0], value, len, 0) : setxattr(target, r->f[0], value, len, 0)) < 0)
		return dl_fail_errno(e, "xattr", r->path, "lsetxattr `%s` `%s`", r->path, r->f[0]);
	return 0;
}

static int do_chown(struct meta_ctx *m, const struct record *r, struct dl_error *e)
{
	char name[NAME_MAX + 1];
	unsigned long uid, gid;
	int dir;

	if (dl_parse_ulong(r->f[0], 10, UINT32_MAX - 1, &uid) < 0 || dl_parse_ulong(r->f[1], 10, UINT32_MAX - 1, &gid) < 0)
		return dl_fail(e, 0, "chown", r->path, "fchownat `%s`: bad uid or gid", r->path);
	dir = open_parent(m, "chown", r->path, name, sizeof name, e);
	if (dir < 0)
		return -1;
	if (fchownat(dir, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH)) < 0)
		return dl_fail_errno(e, "chown", r->path, "fchownat `%s`", r->path);
	return 0;
}

static int do_chmod(struct meta_ctx *m, const struct record *r, struct dl_error *e)
{
	char name[NAME_MAX + 1], target[64];
	_cleanup_close_ int fd = -1;
	unsigned long mode;
	struct stat st;
	int dir;

	if (dl_parse_ulong(r->f[0], 8, 07777, &mode) < 0)
		return dl_fail(e, 0, "chmod", r->path, "fchmodat `%s`: bad mode `%s`", r->path, r->f[0]);
	dir = open_parent(m, "chmod", r->path, name, sizeof name, e);
	if (dir < 0)
		return -1;
	fd = openat(dir, name[0] ? name : ".", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "chmod", r->path, "openat `%s`", r->path);
	if (fstat(fd, &st) < 0)
		return dl_fail_errno(e, "chmod", r->path, "fstat `%s`", r->path);
	/* chmod(2) of a symlink would change what it points to. */
	if (S_ISLNK(st.st_mode))
		return dl_fail(e, ELOOP, "chmod", r->path, "fchmodat `%s`", r->path);
	snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
	if (chmod(target, (mode_t)mode) < 0)
		return dl_fail_errno(e, "chmod", r->path, "fchmodat `%s`", r->path);
	return 0;
}

/* utimensat(2) to the nanosecond, which Node's utimes cannot do (libuv keeps microseconds). */
static int do_utime(struct meta_ctx *m, const struct record *r, struct dl_error *e)
{
	char name[NAME_MAX + 1], *end;
	struct timespec ts[2];
	unsigned long nsec;
	long long sec;
	int dir;

	errno = 0;
	sec = strtoll(r->f[0], &end, 10);
	if (errno || *end || end == r->f[0] || dl_parse_ulong(r->f[1], 10, 999999999, &nsec) < 0)
		return dl_fail(e, 0, "utimes", r->path, "utimensat `%s`: bad time `%s.%s`", r->path, r->f[0], r->f[1]);
	ts[0].tv_sec = ts[1].tv_sec = (time_t)sec;
	ts[0].tv_nsec = ts[1].tv_nsec = (long)nsec;
	dir = open_parent(m, "utimes", r->path, name, sizeof name, e);
	if (dir < 0)
		return -1;
	if (utimensat(dir, name[0] ? name : ".", ts, AT_SYMLINK_NOFOLLOW) < 0)
		return dl_fail_errno(e, "utimes", r->path, "utimensat `%s`", r->path);
	return 0;
}

/* FS_TOPDIR_FL: the Orlov allocator of ext2/3/4 spreads the subdirectories of such a
 * directory over the block groups instead of keeping them in its own. Without a
 * journal, ext4 passes over every inode freed in the last minute (six while its
 * inode table block is dirty) each time it allocates one, scanning from the group's
 * start: a directory whose subdirectories come and go (one per container) makes
 * every allocation in its group slower. A hint: a filesystem without the flag is
 * left as it is. */
static int do_topdir(struct meta_ctx *m, const struct record *r, struct dl_error *e)
{
	char name[NAME_MAX + 1];
	_cleanup_close_ int fd = -1;
	int dir, flags;

	dir = open_parent(m, "topdir", r->path, name, sizeof name, e);
	if (dir < 0)
		return -1;
	fd = openat(dir, name[0] ? name : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "topdir", r->path, "openat `%s`", r->path);
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		if (errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL)
			return 0;
		return dl_fail_errno(e, "topdir", r->path, "ioctl `%s` FS_IOC_GETFLAGS", r->path);
	}
	if (flags & FS_TOPDIR_FL)
		return 0;
	flags |= FS_TOPDIR_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0 && errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL)
		return dl_fail_errno(e, "topdir", r->path, "ioctl `%s` FS_IOC_SETFLAGS", r->path);
	return 0;
}

static const struct {
	const char *op;
	size_t nfields; /* after the op and the path */
	int (*apply)(struct meta_ctx *m, const struct record *r, struct dl_error *e);
} meta_ops[] = {
	{"mknod", 4, do_mknod},
	{"xattr", 2, do_xattr},
	{"chown", 2, do_chown},
	{"chmod", 1, do_chmod},
	{"topdir", 0, do_topdir},
	{"utime", 2, do_utime},
};

/* Takes the next NUL-terminated field from [*p, end); NULL when there is none. */
static const char *next_field(char **p, char *end)
{
	char *start = *p, *nul;

	if (start >= end)
		return NULL;
	nul = memchr(start, '\0', (size_t)(end - start));
	if (nul == NULL)
		return NULL;
	*p = nul + 1;
	return start;
}

struct meta_batch {
	struct meta_ctx m;
	char *input;
	size_t len;
};

static int apply_batch(void *arg)
{
	struct meta_batch *b = arg;
	struct dl_error e;
	char *p = b->input, *end = b->input + b->len;

	while (p < end) {
		struct record r = {0};
		size_t k, f;

		r.op = next_field(&p, end);
		r.path = next_field(&p, end);
		if (r.op == NULL || r.path == NULL) {
			dl_fail(&e, 0, "meta", "", "read `stdin`: truncated record");
			goto fail;
		}
		for (k = 0; k < sizeof meta_ops / sizeof meta_ops[0]; k++)
			if (strcmp(meta_ops[k].op, r.op) == 0)
				break;
		if (k == sizeof meta_ops / sizeof meta_ops[0]) {
			dl_fail(&e, 0, "meta", r.path, "read `stdin`: unknown record `%s`", r.op);
			goto fail;
		}
		for (f = 0; f < meta_ops[k].nfields; f++) {
			r.f[f] = next_field(&p, end);
			if (r.f[f] == NULL) {
				dl_fail(&e, 0, meta_ops[k].op, r.path, "read `stdin`: truncated `%s` record", r.op);
				goto fail;
			}
		}
		if (meta_ops[k].apply(&b->m, &r, &e) < 0)
			goto fail;
	}
	if (b->m.parent.fd >= 0)
		close(b->m.parent.fd);
	return DL_EXIT_OK;
fail:
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}

int cmd_meta(int argc, char **argv)
{
	static struct meta_batch b = {.m.parent.fd = -1};
	struct dl_userns userns = {0};
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ char *input = NULL;
	const char *root = NULL;
	struct dl_error e;
	int status_fd = 3, status, i, taken, ret;

	for (i = 1; i < argc; i++) {
		unsigned long v;
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
			root = argv[++i];
		} else if (strcmp(argv[i], "--status-fd") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &v) < 0)
				dl_usage("meta", "--status-fd: bad number `%s`", argv[i]);
			status_fd = (int)v;
		} else if ((taken = dl_userns_parse(&userns, argc, argv, i, "meta")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("meta", "unknown option `%s`", argv[i]);
		}
	}
	if (root == NULL)
		dl_usage("meta", "--root is required");
	dl_userns_check(&userns, "meta");
	if (userns.idmap_root)
		dl_usage("meta", "unknown option `--idmap-root`");
	dl_status_init(status_fd);
	signal(SIGPIPE, SIG_IGN);
	/* Modes given in records are exact. */
	umask(0);
	rootfd = dl_open_root(root, &e);
	if (rootfd < 0)
		goto fail;
	if (dl_read_to_end(STDIN_FILENO, &input, &b.len) < 0) {
		dl_fail_errno(&e, "read", "", "read `stdin`");
		goto fail;
	}
	b.m.rootfd = rootfd;
	b.input = input;
	if (!dl_userns_enabled(&userns))
		ret = apply_batch(&b);
	else if (dl_userns_call(&userns, apply_batch, &b, &status, &e) < 0)
		goto fail;
	else
		/* The child wrote the error line of a failed record. */
		ret = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? DL_EXIT_OK : DL_EXIT_FAILED;
	if (ret != DL_EXIT_OK)
		return ret;
	dl_status_simple("done");
	return DL_EXIT_OK;
fail:
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}
