#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"
#include "status.h"
#include "util.h"

#define DL_RESOLVE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

int dl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how = {.flags = flags, .resolve = resolve};
	int tries = 0;
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN && ++tries < 32);
	return (int)fd;
}

int dl_open_root(const char *root, struct dl_error *e)
{
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return dl_fail_errno(e, "open", root, "open `%s`", root);
	return fd;
}

int dl_open_parent_cached(struct dl_parent_cache *cache, int rootfd, const char *path, char *name,
			  size_t name_size, const char *step, struct dl_error *e)
{
	char clean[PATH_MAX];
	char *slash;
	int fd;

	if (dl_clean_path(path, clean, sizeof clean) < 0)
		return dl_fail_errno(e, step, path, "openat2 `%s`", path);
	if (clean[0] == '\0') {
		name[0] = '\0';
		return rootfd;
	}
	slash = strrchr(clean, '/');
	if (strlen(slash ? slash + 1 : clean) + 1 > name_size)
		return dl_fail(e, ENAMETOOLONG, step, path, "name `%s`", path);
	strcpy(name, slash ? slash + 1 : clean);
	if (slash)
		*slash = '\0';
	else
		clean[0] = '\0';
	if (cache->fd >= 0 && strcmp(cache->path, clean) == 0)
		return cache->fd;
	fd = dl_open_in_root(rootfd, clean, cache->create, step, e);
	if (fd < 0) {
		snprintf(e->path, sizeof e->path, "%s", path);
		return -1;
	}
	if (cache->fd >= 0)
		close(cache->fd);
	cache->fd = fd;
	strcpy(cache->path, clean);
	return fd;
}

int dl_clean_path(const char *path, char *out, size_t size)
{
	size_t len = 0;
	const char *p = path;

	while (*p) {
		const char *start, *end;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != '/')
			p++;
		end = p;
		n = (size_t)(end - start);
		if (n == 1 && start[0] == '.')
			continue;
		if (n == 2 && start[0] == '.' && start[1] == '.') {
			/* `..` above the root stays at the root, as the kernel does for RESOLVE_IN_ROOT */
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			continue;
		}
		if (len + (len ? 1 : 0) + n + 1 > size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (len)
			out[len++] = '/';
		memcpy(out + len, start, n);
		len += n;
	}
	out[len] = '\0';
	return 0;
}

static int open_resolved(int rootfd, const char *clean)
{
	return dl_openat2(rootfd, clean[0] ? clean : ".", O_PATH | O_CLOEXEC, DL_RESOLVE);
}

/* The root-relative path of FD, from the kernel's view of both fds. */
static int path_in_root(int rootfd, int fd, char *out, size_t size)
{
	char link[64], root[PATH_MAX], here[PATH_MAX];
	ssize_t n;
	size_t rlen;

	snprintf(link, sizeof link, "/proc/self/fd/%d", rootfd);
	n = readlink(link, root, sizeof root - 1);
	if (n < 0)
		return -1;
	root[n] = '\0';
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, here, sizeof here - 1);
	if (n < 0)
		return -1;
	here[n] = '\0';
	rlen = strcmp(root, "/") == 0 ? 0 : strlen(root);
	if (strncmp(here, root, rlen) != 0 || (here[rlen] != '/' && here[rlen] != '\0')) {
		errno = EXDEV;
		return -1;
	}
	if ((size_t)snprintf(out, size, "%s", here + rlen) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* NAME in PARENT exists but does not resolve: when it is a dangling symlink, writes
 * into CLEAN the path it leads to (inside the root) followed by REST. */
static int follow_dangling(int rootfd, int parent, const char *name, const char *rest, char *clean, size_t size)
{
	char target[PATH_MAX], base[PATH_MAX], joined[3 * PATH_MAX + 2];
	ssize_t n = readlinkat(parent, name, target, sizeof target - 1);

	if (n < 0)
		return -1;
	target[n] = '\0';
	base[0] = '\0';
	if (target[0] != '/' && path_in_root(rootfd, parent, base, sizeof base) < 0)
		return -1;
	snprintf(joined, sizeof joined, "%s/%s/%s", base, target, rest ? rest : "");
	return dl_clean_path(joined, clean, size);
}

/* NAME in DIR made as CREATE says (a directory for DL_CREATE_DIR, or for a
 * component that is not the last), never through a symlink: 0, or -1 with errno
 * (EEXIST when something, perhaps a dangling symlink, is there already). */
static int make_entry(int dir, const char *name, enum dl_create create, int last)
{
	int fd;

	if (!last || create != DL_CREATE_FILE)
		return mkdirat(dir, name, 0755);
	fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int dl_open_in_root(int rootfd, const char *path, enum dl_create create, const char *step,
		    struct dl_error *e)
{
	char clean[PATH_MAX];
	int fd;

	if (dl_clean_path(path, clean, sizeof clean) < 0)
		return dl_fail_errno(e, step, path, "openat2 `%s`", path);
	fd = open_resolved(rootfd, clean);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT || create == DL_CREATE_NONE)
		return dl_fail_errno(e, step, path, "openat2 `%s`", path);

	/* Walk down from the root, creating each missing component in the directory
	 * that the previous (confined) lookup returned and then looking it up again
	 * from the root, so that a symlink anywhere is still resolved in the root. A
	 * dangling symlink is followed, as runc does: what it points to is created. */
	for (int links = 0;; links++) {
		_cleanup_close_ int parent = open_resolved(rootfd, "");
		char *comp = clean;

		if (links > 40)
			return dl_fail(e, ELOOP, step, path, "openat2 `%s`", path);
		if (parent < 0)
			return dl_fail_errno(e, step, path, "openat2 `/`");
		for (;;) {
			char *slash = strchr(comp, '/');
			int last = slash == NULL;

			if (slash)
				*slash = '\0';
			fd = open_resolved(rootfd, clean);
			if (fd < 0 && errno == ENOENT) {
				int rc = make_entry(parent, comp, create, last);
				if (rc < 0 && errno == EEXIST) {
					if (follow_dangling(rootfd, parent, comp, slash ? slash + 1 : NULL, clean, sizeof clean) == 0)
						break;
					return dl_fail(e, ENOENT, step, path, "openat2 `/%s`", clean);
				}
				if (rc < 0)
					return dl_fail_errno(e, step, path, "%s `/%s`", last && create == DL_CREATE_FILE ? "openat" : "mkdirat", clean);
				fd = open_resolved(rootfd, clean);
			}
			if (fd < 0)
				return dl_fail_errno(e, step, path, "openat2 `/%s`", clean);
			close(parent);
			parent = fd;
			if (last)
				return dl_steal_fd(&parent);
			*slash = '/';
			comp = slash + 1;
		}
	}
}

/* CLEAN (a cleaned path: no `..`) under ROOTFD in one lookup that any symlink fails
 * with ELOOP, the last component included (no O_NOFOLLOW); -1 with errno otherwise. */
static int open_nofollow(int rootfd, const char *clean)
{
	return dl_openat2(rootfd, clean[0] ? clean : ".", O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

/* CLEAN (missing: open_nofollow said ENOENT) created as CREATE says, its missing
 * parents first, each in the directory its parent's lookup returned, and opened as
 * open_nofollow does; -1 with errno on any failure, for the walk to report. */
static int create_nofollow(int rootfd, char *clean, enum dl_create create)
{
	char *slash = strrchr(clean, '/');
	const char *name = slash ? slash + 1 : clean;
	_cleanup_close_ int parent = -1;
	int dir = rootfd, rc;

	if (slash) {
		*slash = '\0';
		parent = open_nofollow(rootfd, clean);
		if (parent < 0 && errno == ENOENT)
			parent = create_nofollow(rootfd, clean, DL_CREATE_DIR);
		*slash = '/';
		if (parent < 0)
			return -1;
		dir = parent;
	}
	rc = make_entry(dir, name, create, 1);
	/* EEXIST (a dangling symlink, or a concurrent creation) is settled by the lookup. */
	if (rc < 0 && errno != EEXIST)
		return -1;
	return dl_openat2(dir, name, O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

int dl_open_in_root_nofollow(int rootfd, const char *path, enum dl_create create, const char *step,
			     struct dl_error *e)
{
	char clean[PATH_MAX];
	_cleanup_close_ int dir = -1;
	char *comp;
	int fd;

	if (dl_clean_path(path, clean, sizeof clean) < 0)
		return dl_fail_errno(e, step, path, "openat2 `%s`", path);
	/* One lookup for the whole path, and for a missing one one per missing
	 * component; only a failure takes the walk below, which names what failed. */
	fd = open_nofollow(rootfd, clean);
	if (fd < 0 && errno == ENOENT && create != DL_CREATE_NONE)
		fd = create_nofollow(rootfd, clean, create);
	if (fd >= 0)
		return fd;
	if ((errno == ENOENT || errno == ENOTDIR) && create == DL_CREATE_NONE)
		return dl_fail_errno(e, step, path, "openat2 `/%s`", clean);
	dir = dl_openat2(rootfd, ".", O_PATH | O_CLOEXEC, RESOLVE_BENEATH);
	if (dir < 0)
		return dl_fail_errno(e, step, path, "openat2 `/`");
	if (clean[0] == '\0')
		return dl_steal_fd(&dir);
	/* One component at a time: with O_NOFOLLOW a symlink comes back as itself, so
	 * that the one to blame can be named. */
	for (comp = clean;;) {
		char *slash = strchr(comp, '/');
		int last = slash == NULL, fd;
		struct stat st;

		if (slash)
			*slash = '\0';
		fd = dl_openat2(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
		if (fd < 0 && errno == ENOENT && create != DL_CREATE_NONE) {
			int rc = make_entry(dir, comp, create, last);
			/* EEXIST: a dangling symlink, refused just below. */
			if (rc < 0 && errno != EEXIST)
				return dl_fail_errno(e, step, path, "%s `/%s`", last && create == DL_CREATE_FILE ? "openat" : "mkdirat", clean);
			fd = dl_openat2(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
		}
		if (fd < 0)
			return dl_fail_errno(e, step, path, "openat2 `/%s`", clean);
		close(dir);
		dir = fd;
		if (fstat(dir, &st) < 0)
			return dl_fail_errno(e, step, path, "fstat `/%s`", clean);
		if (S_ISLNK(st.st_mode))
			return dl_fail(e, ELOOP, step, path, "`/%s` is a symlink", clean);
		if (last)
			return dl_steal_fd(&dir);
		*slash = '/';
		comp = slash + 1;
	}
}

int dl_open_parent_in_root(int rootfd, const char *path, int mkdirs, char *name, size_t name_size,
			   const char *step, struct dl_error *e)
{
	char clean[PATH_MAX];
	char *slash;
	size_t n;
	int fd;

	if (dl_clean_path(path, clean, sizeof clean) < 0)
		return dl_fail_errno(e, step, path, "openat2 `%s`", path);
	if (clean[0] == '\0')
		return dl_fail(e, EINVAL, step, path, "the root itself has no parent: `%s`", path);
	slash = strrchr(clean, '/');
	n = strlen(slash ? slash + 1 : clean);
	if (n + 1 > name_size)
		return dl_fail(e, ENAMETOOLONG, step, path, "name `%s`", path);
	memcpy(name, slash ? slash + 1 : clean, n + 1);
	if (slash == NULL) {
		fd = open_resolved(rootfd, "");
		if (fd < 0)
			return dl_fail_errno(e, step, path, "openat2 `/`");
		return fd;
	}
	*slash = '\0';
	fd = dl_open_in_root(rootfd, clean, mkdirs ? DL_CREATE_DIR : DL_CREATE_NONE, step, e);
	if (fd < 0)
		snprintf(e->path, sizeof e->path, "%s", path);
	return fd;
}

int dl_root_op_start(const char *op, int argc, char **argv, int *rootfd, char **input, size_t *len,
		     struct dl_error *e)
{
	const char *root = NULL;
	int status_fd = 3;

	dl_parse_root_args(op, argc, argv, &root, &status_fd);
	dl_status_init(status_fd);
	signal(SIGPIPE, SIG_IGN);
	*rootfd = dl_open_root(root, e);
	if (*rootfd < 0)
		return -1;
	if (dl_read_to_end(STDIN_FILENO, input, len) < 0)
		return dl_fail_errno(e, "read", "", "read `stdin`");
	return 0;
}
