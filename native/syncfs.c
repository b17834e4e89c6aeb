/* dockless-helper syncfs: flushes the filesystem holding each PATH to disk
 * (syncfs(2)), so that a snapshot's files are on disk before its completion
 * marker is written. Node has no syncfs; an fsync per file costs one journal
 * commit each, some forty times slower for a layer of a few thousand files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "status.h"
#include "util.h"

static int sync_one(const char *path, struct dl_error *e)
{
	int fd;

	if (path[0] != '/')
		return dl_fail(e, EINVAL, "syncfs", path, "syncfs `%s`: not an absolute path", path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_DIRECTORY);
	if (fd < 0)
		return dl_fail_errno(e, "syncfs", path, "open `%s`", path);
	/* Since Linux 5.8 syncfs reports writeback errors of the filesystem since this fd was opened. */
	if (syncfs(fd) < 0) {
		int err = errno;
		close(fd);
		return dl_fail(e, err, "syncfs", path, "syncfs `%s`", path);
	}
	close(fd);
	return 0;
}

int cmd_syncfs(int argc, char **argv)
{
	struct dl_error e;
	char **paths = NULL;
	int status_fd = 3;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			paths = &argv[i + 1];
			break;
		} else if (strcmp(argv[i], "--status-fd") == 0) {
			unsigned long v;
			if (i + 1 >= argc || dl_parse_ulong(argv[i + 1], 10, INT_MAX, &v) < 0)
				dl_usage("syncfs", "--status-fd needs a number");
			status_fd = (int)v;
			i++;
		} else {
			dl_usage("syncfs", "unknown option `%s`", argv[i]);
		}
	}
	if (paths == NULL || paths[0] == NULL)
		dl_usage("syncfs", "missing paths after `--`");
	dl_status_init(status_fd);
	for (; *paths; paths++) {
		if (sync_one(*paths, &e) < 0) {
			dl_status_error(&e);
			return DL_EXIT_FAILED;
		}
	}
	dl_status_simple("done");
	return DL_EXIT_OK;
}
