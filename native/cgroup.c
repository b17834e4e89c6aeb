#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

int dl_cgroups_make(const struct dl_cgroups *cg, struct dl_error *e)
{
	const char *open_path = NULL;
	int fd = -1;

	for (size_t i = 0; i < cg->n_steps; i++) {
		const struct dl_cgroup_step *s = &cg->steps[i];
		size_t len;

		if (s->kind == DL_CGROUP_MKDIR) {
			if (mkdir(s->path, 0755) < 0) {
				dl_fail_errno(e, "make cgroup", s->path, "mkdir `%s`", s->path);
				goto fail;
			}
			continue;
		}
		/* A run of writes to one file shares its descriptor: each write(2) is
		 * parsed on its own (the device allow-list, one rule a write). */
		if (fd < 0 || strcmp(open_path, s->path) != 0) {
			if (fd >= 0)
				close(fd);
			open_path = s->path;
			fd = open(s->path, O_WRONLY | O_CLOEXEC);
			if (fd < 0 && errno == ENOENT && s->kind == DL_CGROUP_WRITE_OPTIONAL)
				continue;
			if (fd < 0) {
				dl_fail_errno(e, "make cgroup", s->path, "open `%s`", s->path);
				goto fail;
			}
		}
		len = strlen(s->value);
		if (write(fd, s->value, len) != (ssize_t)len) {
			dl_fail_errno(e, "make cgroup", s->path, "write `%s` to `%s`", s->value, s->path);
			goto fail;
		}
	}
	if (fd >= 0)
		close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

int dl_cgroups_open(struct dl_cgroups *cg, struct dl_error *e)
{
	for (size_t i = 0; i < cg->n; i++) {
		char path[PATH_MAX];

		if ((size_t)snprintf(path, sizeof path, "%s/tasks", cg->dirs[i]) >= sizeof path)
			return dl_fail(e, ENAMETOOLONG, "cgroup", cg->dirs[i], "open `%s/tasks`", cg->dirs[i]);
		/* O_CLOEXEC: nothing the container executes may keep one. */
		cg->fds[i] = open(path, O_WRONLY | O_CLOEXEC);
		if (cg->fds[i] < 0 && errno == ENOENT) {
			snprintf(path, sizeof path, "%s/cgroup.procs", cg->dirs[i]);
			cg->fds[i] = open(path, O_WRONLY | O_CLOEXEC);
		}
		if (cg->fds[i] < 0)
			return dl_fail_errno(e, "cgroup", path, "open `%s`", path);
	}
	return 0;
}

bool dl_cgroups_remove(const struct dl_cgroups *cg)
{
	bool all = true;

	for (size_t i = 0; i < cg->n; i++)
		if (rmdir(cg->dirs[i]) < 0 && errno != ENOENT)
			all = false;
	return all;
}

void dl_cgroups_close(const struct dl_cgroups *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		if (cg->fds[i] >= 0)
			close(cg->fds[i]);
		cg->fds[i] = -1;
	}
}

int dl_cgroups_join(const struct dl_cgroups *cg, bool new_ns, struct dl_error *e)
{
	for (size_t i = 0; i < cg->n; i++) {
		/* "0" is the writer itself. Moving the writer's own thread through v1's
		 * `tasks` skips the global cgroup_threadgroup_rwsem that moving another
		 * process takes, and with it an RCU grace period: several ms on a busy
		 * machine. pid 1 is single-threaded, so its thread is the whole process. */
		if (write(cg->fds[i], "0", 1) != 1) {
			dl_fail_errno(e, "cgroup", cg->dirs[i], "join `%s`", cg->dirs[i]);
			dl_cgroups_close(cg);
			return -1;
		}
	}
	dl_cgroups_close(cg);
	/* A cgroup namespace is rooted at the cgroup its creator is in when it is
	 * made; at clone time that was still the caller's. */
	if (new_ns && cg->n > 0 && unshare(CLONE_NEWCGROUP) < 0)
		return dl_fail_errno(e, "unshare", "", "unshare `cgroup`");
	return 0;
}
