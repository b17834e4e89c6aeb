/* A blob is code Node runs without checking it, and Node 20 aborts (SIGTRAP,
 * SIGSEGV) on one that is damaged or was built by another binary, after which
 * nothing can fall back: so a launcher decides here, before Node starts. Any
 * rewrite of the Node binary, the script or the blob changes the identity
 * (device, inode, size, mtime) the key names, and turns the blob off. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static bool trusted(const char *path, bool dir)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return false;
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return false;
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return false;
	return (st.st_mode & 022) == 0;
}

/* Whether every directory above DIR may be changed by no one but this user and
 * root: whoever can rename a component of the path can put another blob under
 * it between these checks and Node's open of the same path. A sticky directory
 * (/tmp) is fine, as others cannot rename what they do not own in it. */
static bool trusted_above(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return false;
	for (;;) {
		char *slash = strrchr(path, '/');
		if (slash == NULL)
			return false;
		if (slash == path) {
			if (path[1] == '\0')
				return true;
			path[1] = '\0';
		} else {
			*slash = '\0';
		}
		struct stat st;
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			return false;
		if (st.st_uid != geteuid() && st.st_uid != 0)
			return false;
		if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)
			return false;
	}
}

/* Appends PATH's identity as native/snapshot.mjs writes it; false when it cannot be read. */
static bool identity(char *out, size_t size, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return false;
	size_t used = strlen(out);
	int n = snprintf(out + used, size - used, "%s\n%llu %llu %llu %lld %ld\n", path, (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino, (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
			 (long)st.st_mtim.tv_nsec);
	return n > 0 && (size_t)n < size - used;
}

static bool key_matches(const char *key_path, const char *expected)
{
	int fd = open(key_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4 * PATH_MAX + 512];
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return strcmp(buf, expected) == 0;
}

bool dl_snapshot_usable(const struct dl_snapshot *s, const char *pkg, const char *node, char *blob, size_t blob_size)
{
	const char *off = getenv("DOCKLESS_SNAPSHOT");
	if (off != NULL && strcmp(off, "0") == 0)
		return false;
	char dir[PATH_MAX], key[PATH_MAX], script[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s/native/build", pkg) >= (int)sizeof(dir) ||
	    snprintf(blob, blob_size, "%s/%s.blob", dir, s->name) >= (int)blob_size ||
	    snprintf(key, sizeof(key), "%s/%s.blob.key", dir, s->name) >= (int)sizeof(key) ||
	    snprintf(script, sizeof(script), "%s/%s", pkg, s->script) >= (int)sizeof(script))
		return false;
	if (!trusted_above(dir) || !trusted(dir, true) || !trusted(blob, false) || !trusted(key, false))
		return false;
	char expected[4 * PATH_MAX + 512];
	if (snprintf(expected, sizeof(expected), "%s", s->magic) >= (int)sizeof(expected))
		return false;
	if (!identity(expected, sizeof(expected), node) || !identity(expected, sizeof(expected), script) ||
	    !identity(expected, sizeof(expected), blob))
		return false;
	return key_matches(key, expected);
}
