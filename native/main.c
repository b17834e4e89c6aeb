/* dockless-helper OP [OPTIONS…] [-- ARGS…]: the one native program dockless runs.
 * The contract is native/PROTOCOL.md. */
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "reexec.h"
#include "util.h"

static const struct {
	const char *name;
	int (*handler)(int argc, char **argv);
	/* It runs from a sealed copy of itself (dl_reexec_sealed), whatever its arguments. */
	int sealed;
} commands[] = {
	{"run", cmd_run, 1},
	{"exec", cmd_exec, 1},
	{"meta", cmd_meta, 0},
	{"apply", cmd_apply, 0},
	{"xattrs", cmd_xattrs, 0},
	{"rm", cmd_rm, 0},
	{"userns-exec", cmd_userns_exec, 0},
	{"syncfs", cmd_syncfs, 0},
	{"version", cmd_version, 0},
	{"seal", cmd_seal, 0},
	{"pause", cmd_pause, 1},
	{"net", cmd_net, 0},
	{"forward", cmd_forward, 0},
	{"fork-server", cmd_fork_server, 0},
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
	/* Sealed before the configuration is read: the copy then overlaps the caller's writing and
	 * closing the configuration pipe, which the op would otherwise wait for first. */
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (commands[i].sealed && strcmp(argv[1], commands[i].name) == 0)
			dl_reexec_sealed_early(argv);
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
