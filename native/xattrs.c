/* dockless-helper xattrs --root DIR: reads the extended attributes of files
 * under DIR, which Node cannot. Paths come on stdin, NUL-terminated; every path
 * stays inside DIR and its last component is never followed. Each attribute
 * goes to stdout as three NUL-terminated fields: PATH (as given), NAME, and
 * the value in lowercase hex. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "fs.h"
#include "status.h"
#include "util.h"

#define OUT_BUF_SIZE (64 * 1024)

struct out_buf {
	char data[OUT_BUF_SIZE];
	size_t len;
};

struct xattrs_ctx {
	int rootfd;
	struct dl_parent_cache parent;
	struct out_buf out;
};

static int out_flush(struct out_buf *o, struct dl_error *e)
{
	if (o->len > 0 && dl_write_all(STDOUT_FILENO, o->data, o->len) < 0)
		return dl_fail_errno(e, "write", "", "write `stdout`");
	o->len = 0;
	return 0;
}

static int out_put(struct out_buf *o, const char *data, size_t len, struct dl_error *e)
{
	while (len > 0) {
		size_t n = sizeof o->data - o->len;
		if (n == 0) {
			if (out_flush(o, e) < 0)
				return -1;
			continue;
		}
		if (n > len)
			n = len;
		memcpy(o->data + o->len, data, n);
		o->len += n;
		data += n;
		len -= n;
	}
	return 0;
}

static int out_field(struct out_buf *o, const char *s, struct dl_error *e)
{
	return out_put(o, s, strlen(s) + 1, e);
}

static int out_hex(struct out_buf *o, const unsigned char *value, size_t len, struct dl_error *e)
{
	static const char digits[] = "0123456789abcdef";
	char pair[2];

	for (size_t i = 0; i < len; i++) {
		pair[0] = digits[value[i] >> 4];
		pair[1] = digits[value[i] & 0xf];
		if (out_put(o, pair, 2, e) < 0)
			return -1;
	}
	return out_put(o, "", 1, e);
}

/* Puts in TARGET a path that names PATH through a confined fd of its parent:
 * the kernel looks up the last component in that directory, and the l*xattr
 * calls do not follow it. FOLLOW is set for the root itself (a directory). */
static int confined_target(struct xattrs_ctx *x, const char *path, char *target, size_t size, int *follow,
			   struct dl_error *e)
{
	char name[NAME_MAX + 1];
	int fd;

	fd = dl_open_parent_cached(&x->parent, x->rootfd, path, name, sizeof name, "xattrs", e);
	if (fd < 0)
		return -1;
	/* Only the root itself comes back without a last component. */
	*follow = name[0] == '\0';
	if (*follow) {
		snprintf(target, size, "/proc/self/fd/%d", x->rootfd);
		return 0;
	}
	if ((size_t)snprintf(target, size, "/proc/self/fd/%d/%s", fd, name) >= size)
		return dl_fail(e, ENAMETOOLONG, "xattrs", path, "llistxattr `%s`", path);
	return 0;
}

/* Reads the attribute list, or the value, into a buffer that grows as the
 * attributes do (they may change between the size query and the read). */
static ssize_t read_grow(const char *target, const char *attr, int follow, char **buf, size_t *cap)
{
	for (int tries = 0; tries < 8; tries++) {
		ssize_t n;
		char *grown;

		if (attr == NULL)
			n = follow ? listxattr(target, *buf, *cap) : llistxattr(target, *buf, *cap);
		else
			n = follow ? getxattr(target, attr, *buf, *cap) : lgetxattr(target, attr, *buf, *cap);
		if (n >= 0 || errno != ERANGE)
			return n;
		n = attr == NULL ? (follow ? listxattr(target, NULL, 0) : llistxattr(target, NULL, 0))
				 : (follow ? getxattr(target, attr, NULL, 0) : lgetxattr(target, attr, NULL, 0));
		if (n < 0)
			return n;
		grown = realloc(*buf, (size_t)n + 1);
		if (grown == NULL)
			return -1;
		*buf = grown;
		*cap = (size_t)n + 1;
	}
	errno = ERANGE;
	return -1;
}

static int read_one(struct xattrs_ctx *x, const char *path, char **names, size_t *names_cap, char **value,
		    size_t *value_cap, struct dl_error *e)
{
	char target[PATH_MAX + 64];
	int follow;
	ssize_t len;

	if (confined_target(x, path, target, sizeof target, &follow, e) < 0)
		return -1;
	len = read_grow(target, NULL, follow, names, names_cap);
	if (len < 0) {
		/* A filesystem without xattrs has none to report. */
		if (errno == ENOTSUP)
			return 0;
		return dl_fail_errno(e, "xattrs", path, "llistxattr `%s`", path);
	}
	for (char *name = *names; name < *names + len; name += strlen(name) + 1) {
		ssize_t vlen = read_grow(target, name, follow, value, value_cap);
		if (vlen < 0) {
			/* Removed since it was listed. */
			if (errno == ENODATA)
				continue;
			return dl_fail_errno(e, "xattrs", path, "lgetxattr `%s` `%s`", path, name);
		}
		if (out_field(&x->out, path, e) < 0 || out_field(&x->out, name, e) < 0 ||
		    out_hex(&x->out, (const unsigned char *)*value, (size_t)vlen, e) < 0)
			return -1;
	}
	return 0;
}

int cmd_xattrs(int argc, char **argv)
{
	static struct xattrs_ctx x = {.parent.fd = -1};
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ char *input = NULL;
	_cleanup_free_ char *names = NULL;
	_cleanup_free_ char *value = NULL;
	size_t names_cap = 0, value_cap = 0;
	struct dl_error e;
	size_t len;
	char *p, *end;

	if (dl_root_op_start("xattrs", argc, argv, &rootfd, &input, &len, &e) < 0)
		goto fail;
	x.rootfd = rootfd;
	names_cap = value_cap = 4096;
	names = malloc(names_cap);
	value = malloc(value_cap);
	if (names == NULL || value == NULL) {
		dl_fail_errno(&e, "xattrs", "", "malloc `%zu`", names_cap);
		goto fail;
	}
	p = input;
	end = input + len;
	while (p < end) {
		char *nul = memchr(p, '\0', (size_t)(end - p));
		if (nul == NULL) {
			dl_fail(&e, 0, "xattrs", "", "read `stdin`: path without a terminating NUL");
			goto fail;
		}
		if (read_one(&x, p, &names, &names_cap, &value, &value_cap, &e) < 0)
			goto fail;
		p = nul + 1;
	}
	if (out_flush(&x.out, &e) < 0)
		goto fail;
	if (x.parent.fd >= 0)
		close(x.parent.fd);
	dl_status_simple("done");
	return DL_EXIT_OK;
fail:
	if (x.parent.fd >= 0)
		close(x.parent.fd);
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}
