/* The `dockless` command's launcher. A V8 startup snapshot of the command
 * line (native/snapshot.mjs) saves most of the library's load at every
 * command, but Node takes it only from a flag on its own command line, which a
 * script's `#!` line cannot pass portably; and Node aborts (SIGTRAP, SIGSEGV)
 * on a blob that is damaged or was built by another binary, after which
 * nothing can fall back. So this checks the blob before Node sees it, and
 * runs the plain bundle (dist/bundle/cli.js) whenever any check fails
 * (native/snapshot/check.c, shared with dockless-runtime's front end). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../snapshot/check.h"

#ifndef DLCLI_NODE_PATH
#define DLCLI_NODE_PATH "node"
#endif

static const struct dl_snapshot SNAPSHOT = {
	.name = "dockless-cli",
	.script = "dist/bundle/cli-core.js",
	.magic = "dockless-cli-snapshot-1\n",
};

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
	if (built_with && dl_snapshot_usable(&SNAPSHOT, pkg, node, blob, sizeof(blob))) {
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
