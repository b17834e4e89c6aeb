/* The `dockless` command's launcher. A V8 startup snapshot of the command
 * line (native/snapshot.mjs) saves most of the library's load at every
 * command, but Node takes it only from a flag on its own command line, which a
 * script's `#!` line cannot pass portably; and Node aborts (SIGTRAP, SIGSEGV)
 * on a blob that is damaged or was built by another binary, after which
 * nothing can fall back. So this checks the blob before Node sees it, and
 * runs the plain bundle (dist/bundle/cli.js) whenever any check fails.
 *
 * The blob is code: it is used only when it, its key file and their
 * directory are regular files (a directory) owned by this user or root and
 * writable by no one else, and the key names the identity (device, inode,
 * size, mtime) of this Node binary, of the core.js it was made from and of
 * the blob itself, so that any rewrite of one of them turns it off. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DLCLI_NODE_PATH
#define DLCLI_NODE_PATH "node"
#endif

#define KEY_MAGIC "dockless-cli-snapshot-1\n"

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

static bool snapshot_usable(const char *pkg, const char *node, char *blob, size_t blob_size)
{
	const char *off = getenv("DOCKLESS_SNAPSHOT");
	if (off != NULL && strcmp(off, "0") == 0)
		return false;
	char dir[PATH_MAX], key[PATH_MAX], core[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s/native/build", pkg) >= (int)sizeof(dir) ||
	    snprintf(blob, blob_size, "%s/dockless-cli.blob", dir) >= (int)blob_size ||
	    snprintf(key, sizeof(key), "%s/dockless-cli.blob.key", dir) >= (int)sizeof(key) ||
	    snprintf(core, sizeof(core), "%s/dist/bundle/core.js", pkg) >= (int)sizeof(core))
		return false;
	if (!trusted(dir, true) || !trusted(blob, false) || !trusted(key, false))
		return false;
	char expected[4 * PATH_MAX + 512] = KEY_MAGIC;
	if (!identity(expected, sizeof(expected), node) || !identity(expected, sizeof(expected), core) ||
	    !identity(expected, sizeof(expected), blob))
		return false;
	return key_matches(key, expected);
}

int main(int argc, char **argv)
{
	char pkg[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", pkg, sizeof(pkg) - 64);
	if (n <= 0) {
		perror("dockless: readlink `/proc/self/exe`");
		return 125;
	}
	pkg[n] = '\0';
	/* This binary is dist/bin/dockless or native/build/dockless-cli: the package is three levels up. */
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(pkg, '/');
		if (slash == NULL) {
			fprintf(stderr, "dockless: cannot find the package of `%s`\n", pkg);
			return 125;
		}
		*slash = '\0';
	}
	char **args = calloc((size_t)argc + 4, sizeof(char *));
	char cli[PATH_MAX], blob[PATH_MAX];
	if (args == NULL || snprintf(cli, sizeof(cli), "%s/dist/bundle/cli.js", pkg) >= (int)sizeof(cli))
		return 125;
	/* The Node that built the blob (and this binary); the snapshot is for it alone. */
	bool built_with = strchr(DLCLI_NODE_PATH, '/') != NULL && access(DLCLI_NODE_PATH, X_OK) == 0;
	const char *node = built_with ? DLCLI_NODE_PATH : "node";
	int a = 0;
	args[a++] = "node";
	if (built_with && snapshot_usable(pkg, node, blob, sizeof(blob))) {
		args[a++] = "--snapshot-blob";
		args[a++] = blob;
		args[a++] = "--";
	} else {
		args[a++] = cli;
	}
	for (int i = 1; i < argc; i++)
		args[a++] = argv[i];
	if (built_with)
		execv(node, args);
	else
		execvp(node, args);
	fprintf(stderr, "dockless: execve `%s`: %s\n", node, strerror(errno));
	return 125;
}
