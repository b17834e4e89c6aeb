/* dockless-helper OP [OPTIONS…] [-- ARGS…]: the one native program dockless runs.
 * The contract is native/PROTOCOL.md. */
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "util.h"

static const struct {
	const char *name;
	int (*handler)(int argc, char **argv);
} commands[] = {
	{"run", cmd_run},
	{"exec", cmd_exec},
	{"meta", cmd_meta},
	{"apply", cmd_apply},
	{"xattrs", cmd_xattrs},
	{"rm", cmd_rm},
	{"userns-exec", cmd_userns_exec},
	{"syncfs", cmd_syncfs},
	{"version", cmd_version},
	{"seal", cmd_seal},
	{"pause", cmd_pause},
	{"net", cmd_net},
	{"forward", cmd_forward},
	{"fork-server", cmd_fork_server},
};

char **dl_main_argv;
bool dl_orphans_reaped;

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	dprintf(STDOUT_FILENO, "dockless-helper %d\n", DL_PROTOCOL_VERSION);
	return DL_EXIT_OK;
}

int main(int argc, char **argv)
{
	dl_main_argv = argv;
	/* Status lines go to a caller that may be gone: EPIPE, never death by SIGPIPE
	 * (PROTOCOL.md). A workload gets SIG_DFL back before its execve. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		dl_usage(NULL, "usage: dockless-helper run|exec|meta|apply|xattrs|rm|userns-exec|syncfs|version|seal|pause|net|forward|fork-server [OPTIONS…] [-- ARGS…]");
	return dl_dispatch(argc, argv);
}

int dl_dispatch(int argc, char **argv)
{
	dl_config_argv(&argc, &argv);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].handler(argc - 1, argv + 1);
	dl_usage(NULL, "unknown op `%s`", argv[1]);
}
