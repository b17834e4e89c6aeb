/* The container records dockless-runtime's Node side writes (src/oci-runtime/state.ts)
 * and this front end reads: the line format of `native-state` is described in
 * native/PROTOCOL.md ("dockless-runtime's state files"). */
#ifndef DLRT_RECORD_H
#define DLRT_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "../error.h"

/* A command returns this when it cannot finish what it started without the
 * policy code: main() then execs the Node front end with the same argv. */
#define DLRT_DEFER (-1000) /* distinct from every -errno */

#define DLRT_MAX_CGROUPS 16

struct dlrt_cgroup {
	int version;          /* 1 or 2 */
	char controllers[256]; /* comma-separated, "" for none */
	char *dir;
};

/* Values kept as the JSON text Node wrote (`*_json`) are printed as they are,
 * so that this front end's JSON output is byte for byte Node's. */
struct dlrt_record {
	char *id_json, *bundle_json, *rootfs_json, *created_json, *annotations_json;
	char *id, *bundle, *created; /* decoded, for the table of `list` */
	long pid;
	unsigned long long pid_start;
	unsigned owner;
	struct dlrt_cgroup cgroups[DLRT_MAX_CGROUPS];
	size_t n_cgroups;
	bool start_hooks, poststop; /* config.json has startContainer or poststart / poststop hooks: Node runs start / delete */
	char *text;              /* the file; every pointer above points into it or is heap */
};

enum dlrt_status { DLRT_CREATING, DLRT_CREATED, DLRT_RUNNING, DLRT_PAUSED, DLRT_STOPPED };

/* Whether ID is a container id Node accepts (letters, digits, `_+.-`, not `.` or `..`). */
bool dlrt_valid_id(const char *id);

/* Reads container ID's record under ROOT. Returns 0; -ENOENT when there is no
 * container; DLRT_DEFER when the record is there but not in a form this front
 * end reads (an older version's, or one being written). */
int dlrt_read_record(const char *root, const char *id, struct dlrt_record *r);
void dlrt_free_record(struct dlrt_record *r);

/* The container's status, read live as state.ts's statusOf does. */
enum dlrt_status dlrt_status_of(const struct dlrt_record *r, const char *root);
const char *dlrt_status_name(enum dlrt_status s);

/* Whether PID is the process that started at START and has not exited. */
bool dlrt_is_alive(long pid, unsigned long long start);

/* The pids in the first readable cgroup.procs of R's cgroups into *PIDS (malloc'd);
 * returns their count, or -1 when no cgroup is readable. */
long dlrt_cgroup_pids(const struct dlrt_record *r, long **pids);

/* The freezer: the v1 cgroup with the freezer controller, else the v2 cgroup; NULL for none. */
const struct dlrt_cgroup *dlrt_freezer(const struct dlrt_record *r);
/* "FROZEN", "FREEZING", "THAWED", or NULL when unreadable. */
const char *dlrt_freezer_state(const struct dlrt_cgroup *f);

/* Writes the JSON-escaped form of S (as JSON.stringify) into OUT (size N). */
void dlrt_json_escape(char *out, size_t n, const char *s);

#endif
