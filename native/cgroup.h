/* The container's cgroups, from the helper's side. The TypeScript side creates
 * each cgroup directory and writes its limits; the shim opens them before the
 * clone, and pid 1 moves itself into them before anything else, so nothing of
 * the container ever runs outside its limits. */
#ifndef DL_CGROUP_H
#define DL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct dl_cgroups {
	const char **dirs; /* cgroup directories (host paths), one per hierarchy */
	size_t n;
	int *fds; /* the file pid 1 joins each through, opened by dl_cgroups_open */
};

/* Opens, for every directory, the file pid 1 will join it through: `tasks` on a
 * v1 hierarchy, `cgroup.procs` on v2. Before any namespace changes how host paths resolve. */
int dl_cgroups_open(struct dl_cgroups *cg, struct dl_error *e);

/* Closes the files (the shim, after the clone). */
void dl_cgroups_close(const struct dl_cgroups *cg);

/* In pid 1, first thing: moves itself into every cgroup, closes the files and,
 * with NEW_NS, unshares a cgroup namespace, rooted at the container's own cgroup. */
int dl_cgroups_join(const struct dl_cgroups *cg, bool new_ns, struct dl_error *e);

#endif
