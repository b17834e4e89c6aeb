/* The helper's subcommands; main.c dispatches to them. Each returns the exit code. */
#ifndef DL_COMMANDS_H
#define DL_COMMANDS_H

#include <stdbool.h>

/* main's own argv, for an op that executes the helper again (see reexec.h). */
extern char **dl_main_argv;

/* Set in an op the fork server forked, when the server is a child subreaper: a
 * process the op leaves behind is reparented to the server, which reaps it. */
extern bool dl_orphans_reaped;

/* What main does with ARGV once it is set up: `--config-fd`, then the op's handler
 * (the fork server's children start here too). */
int dl_dispatch(int argc, char **argv);

int cmd_run(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_meta(int argc, char **argv);
int cmd_apply(int argc, char **argv);
int cmd_xattrs(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_userns_exec(int argc, char **argv);
int cmd_syncfs(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_net(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_fork_server(int argc, char **argv);

#endif
