/* dockless-runtime's native front end. A Node process costs ~80 ms before it
 * runs a line, twice runc's whole `run`; the commands that only read the state
 * under --root, signal and write the start FIFO run here, and every other
 * command line (create, run, exec, update, spec, events, ps as a table,
 * help, any flag this file does not know) is handed whole to the
 * Node front end, dist/bundle/runtime.js, which holds all of the policy. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../snapshot/check.h"
#include "commands.h"
#include "features.h"
#include "version.h"

#ifndef DLRT_NODE_PATH
#define DLRT_NODE_PATH "node"
#endif

static const char *log_path;
static bool log_json;

/* Whether this process runs in a user namespace other than the host's, whose
 * uid_map maps every id to itself. */
static bool in_nested_userns(void)
{
	unsigned long inside, outside, count;
	FILE *f = fopen("/proc/self/uid_map", "re");
	int n;

	if (f == NULL)
		return false;
	n = fscanf(f, "%lu %lu %lu", &inside, &outside, &count);
	fclose(f);
	return !(n == 3 && inside == 0 && outside == 0 && count == 4294967295UL);
}

/* Its V8 startup snapshot (native/snapshot.mjs), checked as the `dockless` launcher checks its own. */
static const struct dl_snapshot SNAPSHOT = {
	.name = "dockless-runtime",
	.script = "dist/bundle/runtime-core.js",
	.magic = "dockless-runtime-snapshot-1\n",
};

/* Execs Node on dist/bundle/runtime.js of the package this binary belongs to
 * (it lives two directories below the package: native/build/ or dist/bin/),
 * or from that code's startup snapshot when every check passes. */
static int exec_node(int argc, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 64);
	if (n <= 0) {
		perror("dockless-runtime: readlink `/proc/self/exe`");
		return 1;
	}
	self[n] = '\0';
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(self, '/');
		if (slash != NULL)
			*slash = '\0';
	}
	char *slash = strrchr(self, '/');
	if (slash == NULL)
		return 1;
	*slash = '\0';
	char script[4096], blob[4096];
	if (snprintf(script, sizeof(script), "%s/dist/bundle/runtime.js", self) >= (int)sizeof(script))
		return 1;
	char **args = calloc((size_t)argc + 4, sizeof(char *));
	if (args == NULL)
		return 1;
	const char *env = getenv("DOCKLESS_RUNTIME_NODE");
	bool other_node = env != NULL && *env;
	/* The blob is for the Node that built it (and this binary) alone. */
	bool built_with = strchr(DLRT_NODE_PATH, '/') != NULL && access(DLRT_NODE_PATH, X_OK) == 0;
	bool snapshot = !other_node && built_with && dl_snapshot_usable(&SNAPSHOT, self, DLRT_NODE_PATH, blob, sizeof(blob));
	int a = 0;
	args[a++] = "node";
	if (snapshot) {
		args[a++] = "--snapshot-blob";
		args[a++] = blob;
		args[a++] = "--";
	} else {
		args[a++] = script;
	}
	for (int i = 1; i < argc; i++)
		args[a++] = argv[i];
	if (other_node) {
		execv(env, args);
		fprintf(stderr, "dockless-runtime: execve `%s`: %s\n", env, strerror(errno));
		return 1;
	}
	/* The Node that built this binary, else the first on PATH. */
	if (strchr(DLRT_NODE_PATH, '/') != NULL)
		execv(DLRT_NODE_PATH, args);
	if (snapshot) {
		fprintf(stderr, "dockless-runtime: execve `%s`: %s\n", DLRT_NODE_PATH, strerror(errno));
		return 1;
	}
	execvp("node", args);
	fprintf(stderr, "dockless-runtime: execve `node`: %s\n", strerror(errno));
	return 1;
}

/* Prints MSG as the Node front end does: stderr, and --log in --log-format. */
static void report(const char *msg)
{
	fprintf(stderr, "dockless-runtime: %s\n", msg);
	if (log_path == NULL)
		return;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char when[96], escaped[4 * DL_ERR_MSG_MAX];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
	FILE *f = fopen(log_path, "ae");
	if (f == NULL)
		return; /* the log is best effort; stderr has it */
	if (log_json) {
		dlrt_json_escape(escaped, sizeof(escaped), msg);
		fprintf(f, "{\"level\":\"error\",\"msg\":\"%s\",\"time\":\"%s\"}\n", escaped, when);
	} else {
		size_t o = 0;
		for (const char *p = msg; *p && o + 3 < sizeof(escaped); p++) {
			if (*p == '"')
				escaped[o++] = '\\';
			escaped[o++] = *p;
		}
		escaped[o] = '\0';
		fprintf(f, "time=\"%s\" level=error msg=\"%s\"\n", when, escaped);
	}
	fclose(f);
}

/* The value of global flag NAME at argv[*i] (`--name value` or `--name=value`), or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] == '\0' && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

static const struct {
	const char *name;
	int (*run)(const struct dlrt_globals *, int, char **, struct dl_error *);
} COMMANDS[] = {
	{ "state", dlrt_cmd_state }, { "start", dlrt_cmd_start },   { "kill", dlrt_cmd_kill },
	{ "delete", dlrt_cmd_delete }, { "pause", dlrt_cmd_pause }, { "resume", dlrt_cmd_resume },
	{ "list", dlrt_cmd_list },   { "ls", dlrt_cmd_list },	    { "ps", dlrt_cmd_ps },
};

int main(int argc, char **argv)
{
	struct dlrt_globals g = { .root = "" };
	const char *root = NULL;
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i], *v;
		if (a[0] != '-')
			break;
		if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
			printf("dockless-runtime version " DLRT_VERSION "\nspec: " DLRT_OCI_VERSION "\n");
			return 0;
		}
		if ((v = flag_value(argc, argv, &i, "--root")) != NULL) {
			root = v;
		} else if ((v = flag_value(argc, argv, &i, "--log-format")) != NULL) {
			if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0)
				return exec_node(argc, argv);
			log_json = strcmp(v, "json") == 0;
		} else if ((v = flag_value(argc, argv, &i, "--log")) != NULL) {
			log_path = v;
		} else if ((v = flag_value(argc, argv, &i, "--criu")) != NULL) {
			/* ignored, as by the Node front end */
		} else if ((v = flag_value(argc, argv, &i, "--rootless")) != NULL) {
			/* Rootless exactly when the caller is not root; any contradiction is Node's error to word. */
			bool rootless = getuid() != 0;
			if (strcmp(v, "auto") != 0 && strcmp(v, rootless ? "true" : "false") != 0)
				return exec_node(argc, argv);
		} else if (strcmp(a, "--debug") != 0) {
			return exec_node(argc, argv);
		}
	}
	if (i == argc)
		return exec_node(argc, argv);
	/* A fixed document (features.h): no Node start for it. */
	if (strcmp(argv[i], "features") == 0 && i + 1 == argc)
		return fputs(DLRT_FEATURES, stdout) < 0 || fflush(stdout) != 0;
	if (root == NULL) {
		const char *xdg = getenv("XDG_RUNTIME_DIR");
		const char *user = getenv("USER");
		/* runc's rule: root of a user namespace not the host's (rootless podman's) is rootless, unless $USER is root. */
		bool rootless = getuid() != 0 || (in_nested_userns() && (user == NULL || strcmp(user, "root") != 0));
		if (rootless && xdg != NULL && *xdg)
			snprintf(g.root, sizeof(g.root), "%s/dockless-runtime", xdg);
		else if (getuid() == 0)
			snprintf(g.root, sizeof(g.root), "/run/dockless-runtime");
		else
			snprintf(g.root, sizeof(g.root), "/tmp/dockless-runtime-%u", getuid());
	} else if (root[0] == '/' && strlen(root) < sizeof(g.root)) {
		strcpy(g.root, root);
	} else {
		char cwd[1024];
		if (getcwd(cwd, sizeof(cwd)) == NULL || strlen(cwd) + strlen(root) + 2 > sizeof(g.root))
			return exec_node(argc, argv);
		strcat(strcat(strcpy(g.root, cwd), "/"), root);
	}
	/* Node resolves --root: a path with `.`, `..` or `//` in it is its to read. */
	if (strstr(g.root, "/.") != NULL || strstr(g.root, "//") != NULL)
		return exec_node(argc, argv);
	size_t len = strlen(g.root);
	while (len > 1 && g.root[len - 1] == '/')
		g.root[--len] = '\0';

	for (size_t c = 0; c < sizeof(COMMANDS) / sizeof(COMMANDS[0]); c++) {
		if (strcmp(argv[i], COMMANDS[c].name) != 0)
			continue;
		struct dl_error e = { 0 };
		int rc = COMMANDS[c].run(&g, argc - i - 1, argv + i + 1, &e);
		if (rc == DLRT_DEFER) {
			fflush(stdout);
			return exec_node(argc, argv);
		}
		if (rc < 0) {
			report(e.msg);
			return 1;
		}
		return fflush(stdout) == 0 ? 0 : 1;
	}
	return exec_node(argc, argv);
}
