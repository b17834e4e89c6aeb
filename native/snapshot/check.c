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
	if (!trusted(dir, true) || !trusted(blob, false) || !trusted(key, false))
		return false;
	char expected[4 * PATH_MAX + 512];
	if (snprintf(expected, sizeof(expected), "%s", s->magic) >= (int)sizeof(expected))
		return false;
	if (!identity(expected, sizeof(expected), node) || !identity(expected, sizeof(expected), script) ||
	    !identity(expected, sizeof(expected), blob))
		return false;
	return key_matches(key, expected);
}
