/* The commands this front end runs itself. Each returns 0, -1 with E filled
 * (main() prints and logs it, exit 1), or DLRT_DEFER to hand the whole command
 * line to the Node front end. ARGV holds the command's own arguments. */
#ifndef DLRT_COMMANDS_H
#define DLRT_COMMANDS_H

#include "record.h"

struct dlrt_globals {
	char root[2048];
};

int dlrt_cmd_state(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_ps(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_list(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_start(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_kill(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_delete(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_pause(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);
int dlrt_cmd_resume(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e);

/* Reads ID's record for COMMAND; a missing container fills E as Node words it. */
int dlrt_load(const struct dlrt_globals *g, const char *id, struct dlrt_record *r, struct dl_error *e);

#endif
