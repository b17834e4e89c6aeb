#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record.h"

#define FORMAT_LINE "dockless-runtime-state 1"

bool dlrt_valid_id(const char *id)
{
	if (*id == '\0' || strlen(id) > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_+.-", *p))
			return false;
	return true;
}

static char *read_file(const char *path, size_t max)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max + 1);
	if (buf == NULL)
		return NULL;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == max) {
			free(buf);
			errno = EFBIG;
			return NULL;
		}
	}
	buf[len] = '\0';
	return buf;
}

/* Decodes the JSON string literal S (as JSON.stringify writes one); NULL for an
 * escape other than the ones JSON.stringify uses for ASCII. */
static char *json_decode(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return NULL;
	char *out = malloc(n), *o = out;
	if (out == NULL)
		return NULL;
	for (size_t i = 1; i < n - 1; i++) {
		if (s[i] != '\\') {
			*o++ = s[i];
			continue;
		}
		char c = s[++i];
		const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
		const char *k = c ? strchr(from, c) : NULL;
		unsigned v;
		if (k != NULL) {
			*o++ = to[k - from];
		} else if (c == 'u' && i + 4 < n - 1 && sscanf(s + i + 1, "%4x", &v) == 1 && v > 0 && v < 0x80) {
			*o++ = (char)v;
			i += 4;
		} else {
			free(out);
			return NULL;
		}
	}
	*o = '\0';
	return out;
}

void dlrt_free_record(struct dlrt_record *r)
{
	free(r->id);
	free(r->bundle);
	free(r->created);
	for (size_t i = 0; i < r->n_cgroups; i++)
		free(r->cgroups[i].dir);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static int parse(struct dlrt_record *r)
{
	char *save = NULL;
	char *line = strtok_r(r->text, "\n", &save);
	if (line == NULL || strcmp(line, FORMAT_LINE) != 0)
		return DLRT_DEFER;
	bool have_pid = false;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *value = strchr(line, ' ');
		if (value == NULL)
			return DLRT_DEFER;
		*value++ = '\0';
		if (strcmp(line, "id") == 0) {
			r->id_json = value;
		} else if (strcmp(line, "bundle") == 0) {
			r->bundle_json = value;
		} else if (strcmp(line, "rootfs") == 0) {
			r->rootfs_json = value;
		} else if (strcmp(line, "created") == 0) {
			r->created_json = value;
		} else if (strcmp(line, "annotations") == 0) {
			r->annotations_json = value;
		} else if (strcmp(line, "pid") == 0) {
			r->pid = strtol(value, NULL, 10);
			have_pid = true;
		} else if (strcmp(line, "pidStart") == 0) {
			r->pid_start = strtoull(value, NULL, 10);
		} else if (strcmp(line, "owner") == 0) {
			r->owner = (unsigned)strtoul(value, NULL, 10);
		} else if (strcmp(line, "hooks") == 0) {
			r->start_hooks = strstr(value, "poststart") != NULL || strstr(value, "startContainer") != NULL;
			r->poststop = strstr(value, "poststop") != NULL;
		} else if (strcmp(line, "cgroup") == 0) {
			/* cgroup VERSION CONTROLLERS|- "DIR" */
			if (r->n_cgroups == DLRT_MAX_CGROUPS)
				return DLRT_DEFER;
			struct dlrt_cgroup *c = &r->cgroups[r->n_cgroups];
			char *ctl = strchr(value, ' ');
			char *dir = ctl ? strchr(ctl + 1, ' ') : NULL;
			if (dir == NULL)
				return DLRT_DEFER;
			*ctl++ = '\0';
			*dir++ = '\0';
			c->version = atoi(value);
			if ((c->version != 1 && c->version != 2) || strlen(ctl) >= sizeof(c->controllers))
				return DLRT_DEFER;
			strcpy(c->controllers, strcmp(ctl, "-") == 0 ? "" : ctl);
			if ((c->dir = json_decode(dir)) == NULL)
				return DLRT_DEFER;
			r->n_cgroups++;
		}
		/* Unknown keys are for newer readers. */
	}
	if (!have_pid || r->id_json == NULL || r->bundle_json == NULL || r->rootfs_json == NULL ||
	    r->created_json == NULL || r->annotations_json == NULL)
		return DLRT_DEFER;
	r->id = json_decode(r->id_json);
	r->bundle = json_decode(r->bundle_json);
	r->created = json_decode(r->created_json);
	if (r->id == NULL || r->bundle == NULL || r->created == NULL)
		return DLRT_DEFER;
	return 0;
}

int dlrt_read_record(const char *root, const char *id, struct dlrt_record *r)
{
	char path[4096];
	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/%s/native-state", root, id);
	r->text = read_file(path, 1 << 20);
	if (r->text == NULL) {
		/* No record of ours, but Node's: written by a version before this front end. */
		snprintf(path, sizeof(path), "%s/%s/state.json", root, id);
		struct stat st;
		if (errno == ENOENT && stat(path, &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
			return -ENOENT;
		return DLRT_DEFER;
	}
	int rc = parse(r);
	if (rc < 0)
		dlrt_free_record(r);
	return rc;
}

bool dlrt_is_alive(long pid, unsigned long long start)
{
	if (pid <= 0)
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	_cleanup_free_ char *stat = read_file(path, 4096);
	if (stat == NULL)
		return false;
	/* Fields after the command, which may itself hold spaces and parentheses. */
	char *p = strrchr(stat, ')');
	if (p == NULL || p[1] == '\0')
		return false;
	p += 2;
	char state = *p;
	for (int field = 0; field < 19; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return false;
		p++;
	}
	return state != 'Z' && state != 'X' && strtoull(p, NULL, 10) == start;
}

const struct dlrt_cgroup *dlrt_freezer(const struct dlrt_record *r)
{
	for (size_t i = 0; i < r->n_cgroups; i++) {
		const struct dlrt_cgroup *c = &r->cgroups[i];
		if (c->version != 1)
			continue;
		/* The controllers are a comma-separated list; match a whole name. */
		char list[sizeof(c->controllers) + 2];
		snprintf(list, sizeof(list), ",%s,", c->controllers);
		if (strstr(list, ",freezer,") != NULL)
			return c;
	}
	for (size_t i = 0; i < r->n_cgroups; i++)
		if (r->cgroups[i].version == 2)
			return &r->cgroups[i];
	return NULL;
}

static char *read_in(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return read_file(path, 65536);
}

const char *dlrt_freezer_state(const struct dlrt_cgroup *f)
{
	if (f->version == 1) {
		_cleanup_free_ char *s = read_in(f->dir, "freezer.state");
		if (s == NULL)
			return NULL;
		if (strncmp(s, "FROZEN", 6) == 0)
			return "FROZEN";
		if (strncmp(s, "FREEZING", 8) == 0)
			return "FREEZING";
		return "THAWED";
	}
	/* cgroup.freeze says what was asked; cgroup.events says what the kernel has done. */
	_cleanup_free_ char *events = read_in(f->dir, "cgroup.events");
	if (events == NULL)
		return NULL;
	if (strncmp(events, "frozen 1\n", 9) == 0 || strstr(events, "\nfrozen 1\n") != NULL)
		return "FROZEN";
	_cleanup_free_ char *freeze = read_in(f->dir, "cgroup.freeze");
	if (freeze == NULL)
		return NULL;
	return freeze[0] == '1' ? "FREEZING" : "THAWED";
}

enum dlrt_status dlrt_status_of(const struct dlrt_record *r, const char *root)
{
	if (r->pid == 0)
		return DLRT_CREATING;
	if (!dlrt_is_alive(r->pid, r->pid_start))
		return DLRT_STOPPED;
	/* `start` removes the FIFO once it has opened the gate. */
	char fifo[4096];
	snprintf(fifo, sizeof(fifo), "%s/%s/exec.fifo", root, r->id);
	if (access(fifo, F_OK) == 0)
		return DLRT_CREATED;
	const struct dlrt_cgroup *f = dlrt_freezer(r);
	const char *s = f ? dlrt_freezer_state(f) : NULL;
	return s != NULL && strcmp(s, "THAWED") != 0 ? DLRT_PAUSED : DLRT_RUNNING;
}

const char *dlrt_status_name(enum dlrt_status s)
{
	static const char *const names[] = { "creating", "created", "running", "paused", "stopped" };
	return names[s];
}

long dlrt_cgroup_pids(const struct dlrt_record *r, long **pids)
{
	for (size_t i = 0; i < r->n_cgroups; i++) {
		_cleanup_free_ char *procs = read_in(r->cgroups[i].dir, "cgroup.procs");
		if (procs == NULL)
			continue;
		size_t cap = 16, n = 0;
		long *out = malloc(cap * sizeof(long));
		if (out == NULL)
			return -1;
		for (char *p = procs; *p;) {
			char *end;
			long pid = strtol(p, &end, 10);
			if (end == p) {
				p++;
				continue;
			}
			if (pid > 0) {
				if (n == cap) {
					long *grown = realloc(out, (cap *= 2) * sizeof(long));
					if (grown == NULL) {
						free(out);
						return -1;
					}
					out = grown;
				}
				out[n++] = pid;
			}
			p = end;
		}
		*pids = out;
		return (long)n;
	}
	return -1;
}

void dlrt_json_escape(char *out, size_t n, const char *s)
{
	size_t o = 0;
	for (; *s && o + 7 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\', out[o++] = 'n';
		} else if (c == '\r') {
			out[o++] = '\\', out[o++] = 'r';
		} else if (c == '\t') {
			out[o++] = '\\', out[o++] = 't';
		} else if (c == '\b') {
			out[o++] = '\\', out[o++] = 'b';
		} else if (c == '\f') {
			out[o++] = '\\', out[o++] = 'f';
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}
