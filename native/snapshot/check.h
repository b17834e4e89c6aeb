/* The checks a launcher makes before it hands Node a V8 startup snapshot
 * (native/snapshot.mjs builds the blobs): shared by the `dockless` launcher
 * (native/cli/main.c) and dockless-runtime's front end (native/runtime/main.c). */
#ifndef DL_SNAPSHOT_CHECK_H
#define DL_SNAPSHOT_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Which blob: native/build/<name>.blob and its key, made from <script> of the package. */
struct dl_snapshot {
	const char *name;   /* "dockless-cli" */
	const char *script; /* "dist/bundle/core.js", relative to the package */
	const char *magic;  /* the key's first line, with its '\n' */
};

/* Whether PKG's blob for S may be given to NODE (an absolute path): not turned
 * off by DOCKLESS_SNAPSHOT=0, the blob, its key and their directory owned by
 * this user or root and writable by no one else, every directory above them
 * too (or sticky), and the key naming the
 * identity of NODE, the script and the blob. Fills BLOB with its path. */
bool dl_snapshot_usable(const struct dl_snapshot *s, const char *pkg, const char *node, char *blob, size_t blob_size);

#endif
