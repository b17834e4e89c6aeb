/* The container's events as the helper sees them alone (`die`, `oom`, `restart`
 * of a container whose owner may be gone): lines appended to the state
 * directory's events file, in the library's format (src/runtime/events.ts). */
#ifndef DL_EVENTS_H
#define DL_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

/* Above this size the file is rotated (renamed to FILE.1) before a line is
 * appended; the library's writer uses the same bound. */
#define DL_EVENTS_MAX_BYTES (1024 * 1024)

struct dl_events {
	const char *file;  /* --events-file: none, no events */
	const char *id;
	const char *name;  /* --event-name */
	const char *image; /* --event-image */
	const char *launch; /* --events-launch: lines the library encoded (`create`, `start`), appended first */
};

/* If ARGV[I] is an events option, parses it and returns how many words it
 * took; 0 if it is not one. */
int dl_events_parse(struct dl_events *ev, int argc, char **argv, int i, const char *op);

/* Appends one event, with ATTRS (already JSON members, `"k":v,…`, or "") besides
 * the name and image. One write(2) of less than PIPE_BUF on an O_APPEND fd, so
 * concurrent writers never interleave. Failing is not an error of the container:
 * it is ignored. */
void dl_events_write(const struct dl_events *ev, const char *action, const char *attrs);

/* Appends TEXT (whole lines, together shorter than PIPE_BUF) to FILE as
 * dl_events_write does: rotated first when full; failing is ignored. */
void dl_events_append(const char *file, const char *text, size_t len);

/* Writes DATA to PATH through PATH.tmp and a rename (not fsynced: the state
 * directory does not outlive a reboot); -1 with errno on failure. */
int dl_write_file_replace(const char *path, const char *data, size_t len);

#endif
