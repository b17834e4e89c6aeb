/* `state` and `list`: the runtime-spec state JSON, printed as the Node front
 * end prints it (JSON.stringify, two-space indent for `state`, compact for `list`). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "version.h"

int dlrt_load(const struct dlrt_globals *g, const char *id, struct dlrt_record *r, struct dl_error *e)
{
	if (!dlrt_valid_id(id))
		return DLRT_DEFER;
	int rc = dlrt_read_record(g->root, id, r);
	if (rc == -ENOENT)
		return dl_fail(e, ENOENT, "state", id, "container `%s` does not exist", id);
	return rc;
}

/* Re-indents the compact JSON text S as JSON.stringify(value, null, 2) would at DEPTH. */
static void print_indented(const char *s, int depth)
{
	bool in_string = false;
	for (; *s; s++) {
		char c = *s;
		if (in_string) {
			putchar(c);
			if (c == '\\' && s[1])
				putchar(*++s);
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			putchar(c);
			break;
		case '{':
		case '[':
			putchar(c);
			if (s[1] == (c == '{' ? '}' : ']')) {
				putchar(*++s);
				break;
			}
			printf("\n%*s", 2 * ++depth, "");
			break;
		case '}':
		case ']':
			printf("\n%*s%c", 2 * --depth, "", c);
			break;
		case ',':
			printf(",\n%*s", 2 * depth, "");
			break;
		case ':':
			fputs(": ", stdout);
			break;
		default:
			putchar(c);
		}
	}
}

static void print_owner(const struct dlrt_record *r)
{
	if (r->owner == 0)
		fputs("\"root\"", stdout);
	else
		printf("\"%u\"", r->owner);
}

static void print_state(const struct dlrt_record *r, enum dlrt_status s, bool pretty)
{
	const char *nl = pretty ? "\n  " : "", *sep = pretty ? ": " : ":";
	long pid = s == DLRT_STOPPED ? 0 : r->pid;
	printf("{%s\"ociVersion\"%s\"" DLRT_OCI_VERSION "\",", nl, sep);
	printf("%s\"id\"%s%s,", nl, sep, r->id_json);
	printf("%s\"status\"%s\"%s\",", nl, sep, dlrt_status_name(s));
	printf("%s\"pid\"%s%ld,", nl, sep, pid);
	printf("%s\"bundle\"%s%s,", nl, sep, r->bundle_json);
	printf("%s\"rootfs\"%s%s,", nl, sep, r->rootfs_json);
	printf("%s\"created\"%s%s,", nl, sep, r->created_json);
	printf("%s\"owner\"%s", nl, sep);
	print_owner(r);
	printf(",%s\"annotations\"%s", nl, sep);
	if (pretty)
		print_indented(r->annotations_json, 1);
	else
		fputs(r->annotations_json, stdout);
	fputs(pretty ? "\n}" : "}", stdout);
}

int dlrt_cmd_state(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	if (argc != 1 || argv[0][0] == '-')
		return DLRT_DEFER;
	struct dlrt_record r;
	int rc = dlrt_load(g, argv[0], &r, e);
	if (rc < 0)
		return rc;
	print_state(&r, dlrt_status_of(&r, g->root), true);
	putchar('\n');
	dlrt_free_record(&r);
	return 0;
}

static int compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

int dlrt_cmd_list(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	(void)e;
	enum { TABLE, JSON, QUIET } format = TABLE;
	bool quiet = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			quiet = true;
			continue;
		}
		if ((strcmp(a, "-f") == 0 || strcmp(a, "--format") == 0) && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(a, "--format=", 9) == 0)
			v = a + 9;
		if (v == NULL || (strcmp(v, "table") != 0 && strcmp(v, "json") != 0))
			return DLRT_DEFER;
		format = strcmp(v, "json") == 0 ? JSON : TABLE;
	}
	if (quiet)
		format = QUIET;

	size_t n = 0, cap = 0;
	char **ids = NULL;
	DIR *d = opendir(g->root);
	if (d == NULL && errno != ENOENT)
		return DLRT_DEFER;
	for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;) {
		if (!dlrt_valid_id(de->d_name))
			continue;
		if (n == cap) {
			char **grown = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(char *));
			if (grown == NULL)
				return DLRT_DEFER;
			ids = grown;
		}
		ids[n++] = strdup(de->d_name);
	}
	if (d != NULL)
		closedir(d);
	qsort(ids, n, sizeof(char *), compare);

	struct dlrt_record *records = calloc(n ? n : 1, sizeof(*records));
	enum dlrt_status *status = calloc(n ? n : 1, sizeof(*status));
	bool *have = calloc(n ? n : 1, sizeof(bool));
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int r = dlrt_read_record(g->root, ids[i], &records[i]);
		if (r == -ENOENT)
			continue;
		if (r < 0 || (format == TABLE && (!ascii(records[i].bundle) || !ascii(records[i].id))))
			rc = DLRT_DEFER;
		else
			have[i] = true, status[i] = dlrt_status_of(&records[i], g->root);
	}
	if (rc == 0 && format == QUIET) {
		for (size_t i = 0; i < n; i++)
			if (have[i])
				printf("%s\n", records[i].id);
	} else if (rc == 0 && format == JSON) {
		putchar('[');
		bool first = true;
		for (size_t i = 0; i < n; i++) {
			if (!have[i])
				continue;
			if (!first)
				putchar(',');
			first = false;
			print_state(&records[i], status[i], false);
		}
		puts("]");
	} else if (rc == 0) {
		const char *head[6] = { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" };
		char pid[n ? n : 1][24], owner[n ? n : 1][24];
		size_t w[6];
		for (int c = 0; c < 6; c++)
			w[c] = strlen(head[c]);
		for (size_t i = 0; i < n; i++) {
			if (!have[i])
				continue;
			struct dlrt_record *r = &records[i];
			snprintf(pid[i], sizeof(pid[i]), "%ld", status[i] == DLRT_STOPPED ? 0 : r->pid);
			if (r->owner == 0)
				snprintf(owner[i], sizeof(owner[i]), "root");
			else
				snprintf(owner[i], sizeof(owner[i]), "%u", r->owner);
			const char *row[6] = { r->id, pid[i], dlrt_status_name(status[i]), r->bundle, r->created, owner[i] };
			for (int c = 0; c < 6; c++)
				if (strlen(row[c]) > w[c])
					w[c] = strlen(row[c]);
		}
		for (size_t i = 0; i <= n; i++) {
			if (i > 0 && !have[i - 1])
				continue;
			const char *row[6];
			if (i == 0) {
				memcpy(row, head, sizeof(row));
			} else {
				struct dlrt_record *r = &records[i - 1];
				const char *cells[6] = { r->id, pid[i - 1], dlrt_status_name(status[i - 1]), r->bundle, r->created, owner[i - 1] };
				memcpy(row, cells, sizeof(row));
			}
			/* Padded columns three spaces apart, the line's trailing blanks trimmed. */
			char line[16384];
			size_t o = 0;
			for (int c = 0; c < 6 && o < sizeof(line) - 1; c++)
				o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%-*s", c ? "   " : "", (int)w[c], row[c]);
			if (o > sizeof(line) - 1)
				o = sizeof(line) - 1;
			while (o > 0 && (line[o - 1] == ' ' || line[o - 1] == '\t'))
				o--;
			line[o] = '\0';
			puts(line);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (have[i])
			dlrt_free_record(&records[i]);
		free(ids[i]);
	}
	free(ids);
	free(records);
	free(status);
	free(have);
	return rc;
}

/* `ps --format json`, what the containerd shim runs for a task's pids; the table (`ps` of the host) is Node's. */
int dlrt_cmd_ps(const struct dlrt_globals *g, int argc, char **argv, struct dl_error *e)
{
	const char *id = NULL, *format = "table";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "-f") == 0 || strcmp(a, "--format") == 0) && i + 1 < argc)
			format = argv[++i];
		else if (strncmp(a, "--format=", 9) == 0)
			format = a + 9;
		else if (a[0] == '-' || id != NULL)
			return DLRT_DEFER;
		else
			id = a;
	}
	if (id == NULL || strcmp(format, "json") != 0)
		return DLRT_DEFER;
	struct dlrt_record r;
	int rc = dlrt_load(g, id, &r, e);
	if (rc < 0)
		return rc;
	long *pids = NULL, n = 0;
	if (dlrt_status_of(&r, g->root) != DLRT_STOPPED) {
		n = dlrt_cgroup_pids(&r, &pids);
		if (n < 0) {
			n = 1;
			pids = malloc(sizeof(long));
			if (pids == NULL)
				return DLRT_DEFER;
			pids[0] = r.pid;
		}
	}
	putchar('[');
	for (long i = 0; i < n; i++)
		printf("%s%ld", i ? "," : "", pids[i]);
	puts("]");
	free(pids);
	dlrt_free_record(&r);
	return 0;
}
