/* User namespaces: the id maps of a container's user namespace (written by the
 * shim, directly or through newuidmap/newgidmap), the step that makes pid 1 root
 * of it, and, for a caller that is root, the container's root assembled in the
 * host's user namespace from idmapped mounts of the layers (mount_setattr
 * MOUNT_ATTR_IDMAP) and handed to pid 1 as a detached mount. */
#ifndef DL_USERNS_H
#define DL_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "mounts.h"

/* One line of uid_map or gid_map: COUNT ids from INSIDE map to OUTSIDE on the host. */
struct dl_idmap {
	unsigned long inside, outside, count;
};

struct dl_userns {
	struct dl_idmap *uids, *gids;
	/* --mount-root-owns-upper (of the mounting namespace): the upper's top is given to the container's root. */
	bool root_owns_upper;
	size_t n_uids, n_gids;
	/* The setuid helpers that write maps a non-root caller may not write itself. */
	const char *newuidmap, *newgidmap;
	/* --idmap-root: the shim (root) mounts the root from idmapped layers and hands it over. */
	bool idmap_root;
};

/* If ARGV[I] is a user namespace option, parses it and returns how many words it
 * took; 0 if it is not one. Bad values are usage errors (exit 2) of OP. */
int dl_userns_parse(struct dl_userns *u, int argc, char **argv, int i, const char *op);

/* Usage checks once every option is parsed: maps for uids and gids go together, and
 * each maps container id 0 (the root that sets the container up). */
void dl_userns_check(const struct dl_userns *u, const char *op);

static inline bool dl_userns_enabled(const struct dl_userns *u)
{
	return u->n_uids > 0;
}

/* In the parent, after cloning PID with CLONE_NEWUSER: writes PID's uid_map and
 * gid_map, through newuidmap/newgidmap when they are given, else directly (a
 * non-root writer first denies setgroups, as the kernel requires). */
int dl_userns_write_maps(const struct dl_userns *u, pid_t pid, struct dl_error *e);

/* In the child once its maps are written: setresgid/setresuid to the namespace's
 * root (until then it runs as an id the namespace does not map) and clears the
 * supplementary groups where setgroups is allowed. */
int dl_userns_become_root(struct dl_error *e);

/* In the shim (root), once PID's maps are written: mounts R (overlay of the lowers
 * and upper, or a bind of the single lower) from idmapped mounts of each layer,
 * so that ids on disk are the container's and the container's root (a host id)
 * owns them; detached, nodev, nothing attached in the host's mount namespace.
 * *MNT gets the mount's fd, for pid 1 to move onto its target. */
int dl_userns_idmapped_root(const struct dl_userns *u, pid_t pid, const struct dl_root_spec *r, int *mnt,
			    struct dl_error *e);

/* Runs FN(ARG) in a child cloned into a new user namespace with U's maps (written
 * as for a container), as that namespace's root; the child exits with FN's return
 * value, and reports its own failures on the status descriptor. *WAIT_STATUS gets
 * the child's wait status. -1 (E filled) when the namespace could not be set up
 * from this side (clone, maps). */
int dl_userns_call(const struct dl_userns *u, int (*fn)(void *arg), void *arg, int *wait_status, struct dl_error *e);

/* As dl_userns_parse for the maps of the namespace that mounts a rootless
 * container's root (--mount-userns-uid, --mount-userns-gid, --mount-root-owns-upper). */
int dl_userns_parse_mount(struct dl_userns *u, int argc, char **argv, int i, const char *op);

/* For a rootless container whose maps leave the caller out (or do not make it
 * root): mounts R in a child of a new user namespace with MOUNT_NS's maps (the
 * caller its root, its subordinate ids: every owner of the store's files), in
 * a mount namespace of its own (with --mount-root-owns-upper the upper
 * directory's top given to the container's root, U's id 0), and returns a detached copy in *MNT for pid 1
 * to move onto its target, as podman mounts in its own namespace and nests
 * the container's. */
int dl_userns_mounted_root(const struct dl_userns *mount_ns, const struct dl_userns *u, const struct dl_root_spec *r,
			   int *mnt, struct dl_error *e);

/* One byte, and FD (when >= 0) as SCM_RIGHTS, over a unix socket. */
int dl_send_fd(int sock, int fd);
/* Receives what dl_send_fd sent; *FD is -1 when no fd came. -1 with errno, or with
 * errno 0 at EOF. */
int dl_recv_fd(int sock, int *fd);

#endif
