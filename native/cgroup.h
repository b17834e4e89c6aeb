/* The container's cgroups, from the helper's side. The TypeScript side decides
 * each cgroup directory and its limits; the shim (or, where the TypeScript side
 * keeps that to itself, the library) creates them, the shim opens them before the
 * clone, and pid 1 moves itself into them before anything else, so nothing of
 * the container ever runs outside its limits. */
#ifndef DL_CGROUP_H
#define DL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum dl_cgroup_step_kind { DL_CGROUP_MKDIR, DL_CGROUP_WRITE, DL_CGROUP_WRITE_OPTIONAL };

/* One step of making the cgroups, in the order given: a directory to create, or
 * a value to write to an existing file (an optional one may be missing). */
struct dl_cgroup_step {
	enum dl_cgroup_step_kind kind;
	const char *path;
	const char *value;
};

struct dl_cgroups {
	const char **dirs; /* cgroup directories (host paths), one per hierarchy */
	size_t n;
	int *fds; /* the file pid 1 joins each through, opened by dl_cgroups_open */
	struct dl_cgroup_step *steps; /* --cgroup-mkdir, --cgroup-write[-optional] */
	size_t n_steps;
	bool rmdir_at_exit; /* --cgroup-rmdir-at-exit */
};

/* Runs the steps. A failure names the path and leaves what was made: the
 * library removes the container's cgroups after a failed start. */
int dl_cgroups_make(const struct dl_cgroups *cg, struct dl_error *e);

/* Opens, for every directory, the file pid 1 will join it through: `tasks` on a
 * v1 hierarchy, `cgroup.procs` on v2. Before any namespace changes how host paths resolve. */
int dl_cgroups_open(struct dl_cgroups *cg, struct dl_error *e);

/* Closes the files (the shim, after the clone). */
void dl_cgroups_close(const struct dl_cgroups *cg);

/* In the shim once pid 1 is reaped (and nothing of the container is left in
 * them): removes every directory. Returns true when none is left; false when one
 * stays (a cgroup made inside, a process still leaving), for the library to remove. */
bool dl_cgroups_remove(const struct dl_cgroups *cg);

/* In pid 1, first thing: moves itself into every cgroup, closes the files and,
 * with NEW_NS, unshares a cgroup namespace, rooted at the container's own cgroup. */
int dl_cgroups_join(const struct dl_cgroups *cg, bool new_ns, struct dl_error *e);

#endif
