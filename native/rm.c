/* dockless-helper rm: removes directory trees, inside a user namespace when
 * maps are given. A rootless container's upper directory holds files of its
 * subordinate ids, which the user who ran it cannot remove on the host; as root
 * of a namespace that maps those ids, it can. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "fs.h"
#include "status.h"
#include "userns.h"
#include "util.h"

struct rm_config {
	int status_fd;
	struct dl_userns userns;
	char **paths;
};

/* The id of the mount NAME (relative to FD) is on; 0 when the kernel does not say (before 5.8). */
static uint64_t mount_id(int fd, const char *name, int flags)
{
	struct statx stx;

	if (statx(fd, name, flags | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

static int remove_at(int parent, const char *name, char *path, size_t len, uint64_t parent_mnt, struct dl_error *e);

/* Removes NAME under PARENT and everything below it, never following a symlink
 * nor entering another mount: a mount left under a tree being deleted (a
 * volume, a rootfs) would have its own files deleted through it.
 * PATH (NAME's full path) is for messages and is extended in place. */
int dl_remove_at(int parent, const char *name, char *path, size_t len, struct dl_error *e)
{
	return remove_at(parent, name, path, len, 0, e);
}

static int remove_at(int parent, const char *name, char *path, size_t len, uint64_t parent_mnt, struct dl_error *e)
{
	struct stat st;
	DIR *dir;
	struct dirent *d;
	uint64_t mnt;
	int fd;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return dl_fail_errno(e, "rm", path, "fstatat `%s`", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
			return dl_fail_errno(e, "rm", path, "unlinkat `%s`", path);
		return 0;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "rm", path, "openat `%s`", path);
	mnt = mount_id(fd, "", AT_EMPTY_PATH);
	if (parent_mnt == 0 && mnt != 0)
		parent_mnt = mount_id(fd, "..", 0);
	if (mnt != 0 && parent_mnt != 0 && mnt != parent_mnt) {
		close(fd);
		return dl_fail(e, EXDEV, "rm", path, "rm `%s`: a mount point", path);
	}
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return dl_fail_errno(e, "rm", path, "fdopendir `%s`", path);
	}
	while ((errno = 0, d = readdir(dir)) != NULL) {
		size_t n = strlen(d->d_name);
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (len + 1 + n >= PATH_MAX) {
			closedir(dir);
			return dl_fail(e, ENAMETOOLONG, "rm", path, "openat `%s/%s`", path, d->d_name);
		}
		path[len] = '/';
		memcpy(path + len + 1, d->d_name, n + 1);
		if (remove_at(dirfd(dir), d->d_name, path, len + 1 + n, mnt, e) < 0) {
			closedir(dir);
			return -1;
		}
		path[len] = '\0';
	}
	if (errno != 0) {
		int err = errno;
		closedir(dir);
		return dl_fail(e, err, "rm", path, "readdir `%s`", path);
	}
	closedir(dir);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return dl_fail_errno(e, "rm", path, "unlinkat `%s`", path);
	return 0;
}

static int remove_all(char **paths, struct dl_error *e)
{
	for (; *paths; paths++) {
		char path[PATH_MAX];
		if ((*paths)[0] != '/' || strlen(*paths) >= sizeof path)
			return dl_fail(e, EINVAL, "rm", *paths, "rm `%s`: not an absolute path", *paths);
		snprintf(path, sizeof path, "%s", *paths);
		if (dl_remove_at(AT_FDCWD, *paths, path, strlen(path), e) < 0)
			return -1;
	}
	return 0;
}

static int rm_in_userns(void *arg)
{
	struct dl_error e;

	if (remove_all(arg, &e) < 0) {
		dl_status_error(&e);
		return DL_EXIT_FAILED;
	}
	return DL_EXIT_OK;
}

int cmd_rm(int argc, char **argv)
{
	static struct rm_config c;
	struct dl_error e;
	int status, i, taken;

	c.status_fd = 3;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			c.paths = &argv[i + 1];
			break;
		} else if (strcmp(argv[i], "--status-fd") == 0) {
			unsigned long v;
			if (i + 1 >= argc || dl_parse_ulong(argv[i + 1], 10, INT_MAX, &v) < 0)
				dl_usage("rm", "--status-fd needs a number");
			c.status_fd = (int)v;
			i++;
		} else if ((taken = dl_userns_parse(&c.userns, argc, argv, i, "rm")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("rm", "unknown option `%s`", argv[i]);
		}
	}
	if (c.paths == NULL)
		dl_usage("rm", "missing paths after `--`");
	dl_userns_check(&c.userns, "rm");
	if (c.userns.idmap_root)
		dl_usage("rm", "unknown option `--idmap-root`");
	dl_status_init(c.status_fd);
	signal(SIGPIPE, SIG_IGN);

	if (!dl_userns_enabled(&c.userns)) {
		if (remove_all(c.paths, &e) < 0) {
			dl_status_error(&e);
			return DL_EXIT_FAILED;
		}
		dl_status_simple("done");
		return DL_EXIT_OK;
	}
	if (dl_userns_call(&c.userns, rm_in_userns, c.paths, &status, &e) < 0) {
		dl_status_error(&e);
		return DL_EXIT_FAILED;
	}
	/* The child wrote the error line of a failed step. */
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return DL_EXIT_FAILED;
	dl_status_simple("done");
	return DL_EXIT_OK;
}
