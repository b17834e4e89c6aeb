/* The helper's subcommands; main.c dispatches to them. Each returns the exit code. */
#ifndef DL_COMMANDS_H
#define DL_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_meta(int argc, char **argv);
int cmd_xattrs(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_syncfs(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
