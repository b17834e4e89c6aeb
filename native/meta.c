/* dockless-helper meta --root DIR: a batch of metadata operations Node cannot do
 * (device nodes, xattrs, ownership of symlinks) on files under DIR. Records come
 * on stdin as NUL-terminated fields; every path stays inside DIR and its last
 * component is never followed. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "fs.h"
#include "status.h"
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

static const struct {
	const char *op;
	size_t nfields; /* after the op and the path */
	int (*apply)(struct meta_ctx *m, const struct record *r, struct dl_error *e);
} meta_ops[] = {
	{"mknod", 4, do_mknod},
	{"xattr", 2, do_xattr},
	{"chown", 2, do_chown},
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

int cmd_meta(int argc, char **argv)
{
	struct meta_ctx m = {.parent.fd = -1};
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ char *input = NULL;
	struct dl_error e;
	size_t len;
	char *p, *end;

	/* Modes given in records are exact. */
	umask(0);
	if (dl_root_op_start("meta", argc, argv, &rootfd, &input, &len, &e) < 0)
		goto fail;
	m.rootfd = rootfd;
	p = input;
	end = input + len;
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
		if (meta_ops[k].apply(&m, &r, &e) < 0)
			goto fail;
	}
	if (m.parent.fd >= 0)
		close(m.parent.fd);
	dl_status_simple("done");
	return DL_EXIT_OK;
fail:
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}
