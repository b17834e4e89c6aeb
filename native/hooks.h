/* OCI createContainer hooks (--hook, --hook-arg, --hook-env, --hooks-fd): host
 * programs that pid 1 runs after the container's mounts and before pivot_root,
 * in the container's namespaces and cgroups, with the state JSON the caller
 * sends on --hooks-fd on their stdin. The caller runs its own hooks (the
 * runtime namespace's) between the `hooks` status line and that state. */
#ifndef DL_HOOKS_H
#define DL_HOOKS_H

#include <stddef.h>

#include "error.h"

struct dl_hook {
	const char *path;
	unsigned int timeout; /* seconds; 0 for none */
	const char **argv;    /* NULL-terminated; argv[0] defaults to the path */
	size_t argc;
	const char **env;     /* NULL-terminated */
	size_t envc;
};

struct dl_hooks {
	int fd; /* --hooks-fd: -1 for none */
	struct dl_hook *list;
	size_t n;
	int cap; /* words of the op's argv, the most any list can hold */
};

void dl_hooks_init(struct dl_hooks *h, int argc);

/* If ARGV[I] is a hooks option, parses it and returns how many words it took;
 * 0 if it is not one. Bad values are usage errors (exit 2) of OP. */
int dl_hooks_parse(struct dl_hooks *h, int argc, char **argv, int i, const char *op);

/* Writes the `hooks` status line, reads the state from the hooks fd to its
 * end, closes it and runs the hooks in order. A hook that cannot be run,
 * exits non-zero or outlives its timeout (then killed) fails. */
int dl_hooks_run(struct dl_hooks *h, struct dl_error *e);

#endif
