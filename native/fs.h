/* Paths inside a root directory that may hold hostile symlinks: every lookup
 * goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so neither a
 * symlink nor `..` nor a /proc magic link can lead outside the root. */
#ifndef DL_FS_H
#define DL_FS_H

#include <limits.h>
#include <stdint.h>

#include "error.h"

enum dl_create {
	DL_CREATE_NONE, /* a missing path is an error */
	DL_CREATE_DIR,  /* create missing directories, the last one included */
	DL_CREATE_FILE, /* create missing directories and an empty file as the last component */
};

/* openat2(2), retrying EAGAIN (a concurrent rename); returns an fd or -1 with errno. */
int dl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);

/* Opens the directory ROOT as an O_PATH fd for the *_in_root functions; returns the fd,
 * or -1 with E filled as `open` on ROOT. */
int dl_open_root(const char *root, struct dl_error *e);

/* The common start of an op over files below `--root` (meta, xattrs): its
 * options parsed, status set up, SIGPIPE ignored, the root opened into ROOTFD
 * and stdin read whole into INPUT (LEN bytes; the caller frees it). */
int dl_root_op_start(const char *op, int argc, char **argv, int *rootfd, char **input, size_t *len,
		     struct dl_error *e);

/* Cleans PATH lexically (as Go's filepath.Clean would, relative to the root):
 * no leading slash, no `.`, `..` or empty components. The root itself is "". */
int dl_clean_path(const char *path, char *out, size_t size);

/* Opens PATH under ROOTFD as an O_PATH fd, following symlinks inside the root and
 * creating what is missing as CREATE says. Failures are reported as STEP on PATH. */
int dl_open_in_root(int rootfd, const char *path, enum dl_create create, const char *step,
		    struct dl_error *e);

/* dl_open_in_root for the targets of the runtime's own mounts: no component of PATH
 * may be a symlink, not even one that stays in the root, so that an image cannot
 * redirect a security mount (runc's CVE-2019-16884 and CVE-2019-19921). A symlink is
 * an ELOOP failure whose message names it, root-relative (`` `/proc` is a symlink ``). */
int dl_open_in_root_nofollow(int rootfd, const char *path, enum dl_create create, const char *step,
			     struct dl_error *e);

/* Opens the directory that holds PATH under ROOTFD (creating missing directories
 * when MKDIRS) and copies PATH's last component into NAME; the last component is
 * never followed. PATH must not be the root itself. */
int dl_open_parent_in_root(int rootfd, const char *path, int mkdirs, char *name, size_t name_size,
			   const char *step, struct dl_error *e);

/* The parent directory of the previous path, kept open for the next path in the same
 * directory (records come sorted, so most share it). FD is -1 while there is none. */
struct dl_parent_cache {
	int fd;
	char path[PATH_MAX];
	/* DL_CREATE_DIR: missing parents are created (DL_CREATE_NONE, the default: an error). */
	enum dl_create create;
};

/* dl_open_parent_in_root through CACHE: returns the fd of PATH's parent under ROOTFD
 * (owned by CACHE), creating it when CACHE says so, and puts PATH's last component in
 * NAME; for the root itself, returns ROOTFD with NAME "". Failures are reported as STEP
 * on PATH. A cached parent is valid while nothing is mounted or replaced on the way to it. */
int dl_open_parent_cached(struct dl_parent_cache *cache, int rootfd, const char *path, char *name,
			  size_t name_size, const char *step, struct dl_error *e);

/* Removes NAME under PARENT and everything below it, never following a symlink (rm.c);
 * a missing NAME is no error. PATH (NAME's full path, LEN bytes, in a PATH_MAX buffer)
 * is for messages and is extended in place. */
int dl_remove_at(int parent, const char *name, char *path, size_t len, struct dl_error *e);

#endif
