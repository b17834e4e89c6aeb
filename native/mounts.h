/* The container's filesystem: the root on the target, the mounts, device nodes and
 * symlinks inside it (all resolved in the root), pivot_root, masked and read-only paths. */
#ifndef DL_MOUNTS_H
#define DL_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "fs.h"

struct dl_mount_spec {
	const char *type; /* `bind` or a filesystem type */
	const char *src;
	const char *src_path; /* when set, where SRC is reached (a /proc/self/fd path); SRC names it in messages */
	const char *dst; /* inside the container */
	const char *opts; /* comma list, `-` for none */
	bool nofollow; /* the runtime's own mount: no symlink anywhere in DST (--mount-nofollow) */
};

struct dl_mknod_spec {
	const char *path;
	mode_t type; /* S_IFCHR, S_IFBLK or S_IFIFO */
	unsigned int major, minor;
	mode_t mode;
	uid_t uid;
	gid_t gid;
};

struct dl_symlink_spec {
	const char *target;
	const char *path;
};

struct dl_root_spec {
	const char *target;
	const char *const *lowers; /* top-most first */
	size_t n_lowers;
	const char *upper, *work;
	bool userxattr; /* overlay option `userxattr` (an overlay mounted in a user namespace) */
	bool volatile_upper; /* overlay option `volatile`, when dl_overlay_volatile_prepare allowed it */
};

/* Readies WORK for an overlay mount: clears the marker that a `volatile` mount
 * left (overlayfs refuses to mount over it) when it is from this boot, and
 * records this boot beside it when WANT asks for a volatile mount. 1: mount
 * with `volatile`; 0: without; < 0 (EUCLEAN): the marker is from another boot,
 * so the upper may have lost writes in a host crash. */
int dl_overlay_volatile_prepare(const char *work, bool want, struct dl_error *e);

/* mount --make-rprivate /, so that nothing below propagates to the caller's namespace. */
int dl_make_rprivate(struct dl_error *e);

/* Mounts the container's root on its target: overlay, or an rbind of the single lower. */
int dl_mount_root(const struct dl_root_spec *r, struct dl_error *e);

/* Whether M is a bind mount, by its type or its options. */
bool dl_mount_is_bind(const struct dl_mount_spec *m);
int dl_mount_in_root(int rootfd, const struct dl_mount_spec *m, struct dl_error *e);
/* The node or symlink at its path under ROOTFD, missing parents created; PARENT keeps
 * the last parent open for the next one (valid while nothing is mounted meanwhile). */
int dl_mknod_in_root(struct dl_parent_cache *parent, int rootfd, const struct dl_mknod_spec *n, struct dl_error *e);
int dl_symlink_in_root(struct dl_parent_cache *parent, int rootfd, const struct dl_symlink_spec *s,
		       struct dl_error *e);

/* Makes ROOTFD the root and cwd (pivot_root(".", ".") and a detach of the old root). */
int dl_pivot_root(int rootfd, struct dl_error *e);

/* The step of a mount refused because its target path holds a symlink. */
#define DL_STEP_MOUNT_TARGET "mount target"

/* After pivot_root: hide PATH under ROOTFD, the container's root (missing paths are
 * skipped; a symlink in PATH is refused). */
int dl_mask_path(int rootfd, const char *path, struct dl_error *e);
/* After pivot_root: make PATH under ROOTFD, the container's root, read-only (missing
 * paths are skipped; a symlink in PATH is refused). */
int dl_readonly_path(int rootfd, const char *path, struct dl_error *e);
/* Remounts / read-only. */
int dl_readonly_root(struct dl_error *e);

#endif
