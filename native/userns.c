#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status.h"
#include "userns.h"
#include "util.h"

/* A map line is three numbers of at most 10 digits; the kernel takes 340 lines. */
#define DL_MAP_MAX 340
#define DL_MAP_TEXT_MAX (DL_MAP_MAX * 34)

static struct dl_idmap *add_map(struct dl_idmap **maps, size_t *n, int argc)
{
	if (*maps == NULL) {
		*maps = calloc((size_t)argc, sizeof **maps);
		if (*maps == NULL)
			dl_usage("run", "out of memory");
	}
	return &(*maps)[(*n)++];
}

static unsigned long parse_id(const char *op, const char *opt, const char *s)
{
	unsigned long v;

	if (dl_parse_ulong(s, 10, UINT32_MAX - 1, &v) < 0)
		dl_usage(op, "%s: bad number `%s`", opt, s);
	return v;
}

static int parse_map_line(struct dl_userns *u, int argc, char **argv, int i, const char *op, bool uid)
{
	const char *a = argv[i];
	struct dl_idmap *m;

	if (i + 3 >= argc)
		dl_usage(op, "%s needs 3 arguments", a);
	m = uid ? add_map(&u->uids, &u->n_uids, argc) : add_map(&u->gids, &u->n_gids, argc);
	m->inside = parse_id(op, a, argv[i + 1]);
	m->outside = parse_id(op, a, argv[i + 2]);
	m->count = parse_id(op, a, argv[i + 3]);
	if (m->count == 0 || m->inside + m->count - 1 > UINT32_MAX - 1 || m->outside + m->count - 1 > UINT32_MAX - 1)
		dl_usage(op, "%s %s %s %s: bad range", a, argv[i + 1], argv[i + 2], argv[i + 3]);
	return 4;
}

int dl_userns_parse_mount(struct dl_userns *u, int argc, char **argv, int i, const char *op)
{
	if (strcmp(argv[i], "--mount-userns-uid") == 0)
		return parse_map_line(u, argc, argv, i, op, true);
	if (strcmp(argv[i], "--mount-userns-gid") == 0)
		return parse_map_line(u, argc, argv, i, op, false);
	if (strcmp(argv[i], "--mount-root-owns-upper") == 0) {
		u->root_owns_upper = true;
		return 1;
	}
	return 0;
}

int dl_userns_parse(struct dl_userns *u, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];

	if (strcmp(a, "--userns-uid") == 0 || strcmp(a, "--userns-gid") == 0)
		return parse_map_line(u, argc, argv, i, op, a[9] == 'u');
	if (strcmp(a, "--newuidmap") == 0 || strcmp(a, "--newgidmap") == 0) {
		if (i + 1 >= argc)
			dl_usage(op, "%s needs 1 argument", a);
		if (a[5] == 'u')
			u->newuidmap = argv[i + 1];
		else
			u->newgidmap = argv[i + 1];
		return 2;
	}
	if (strcmp(a, "--idmap-root") == 0) {
		u->idmap_root = true;
		return 1;
	}
	return 0;
}

static bool maps_root(const struct dl_idmap *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].inside == 0)
			return true;
	return false;
}

void dl_userns_check(const struct dl_userns *u, const char *op)
{
	if ((u->n_uids == 0) != (u->n_gids == 0))
		dl_usage(op, "--userns-uid and --userns-gid go together");
	if (u->n_uids > DL_MAP_MAX || u->n_gids > DL_MAP_MAX)
		dl_usage(op, "at most %d --userns-uid and --userns-gid lines each", DL_MAP_MAX);
	if (u->n_uids > 0 && !(maps_root(u->uids, u->n_uids) && maps_root(u->gids, u->n_gids)))
		dl_usage(op, "the user namespace maps must map container id 0");
	if (u->n_uids == 0 && (u->newuidmap || u->newgidmap || u->idmap_root))
		dl_usage(op, "--newuidmap, --newgidmap and --idmap-root need --userns-uid and --userns-gid");
}

static unsigned long host_root(const struct dl_idmap *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].inside == 0)
			return m[i].outside;
	return 0;
}

static size_t format_map(const struct dl_idmap *m, size_t n, char *buf, size_t size)
{
	size_t len = 0;

	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%lu %lu %lu\n", m[i].inside, m[i].outside, m[i].count);
	return len < size ? len : size;
}

static int write_proc(pid_t pid, const char *file, const char *text, size_t len, struct dl_error *e)
{
	char path[64];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "userns", path, "open `%s`", path);
	/* The kernel takes a map in one write(2) only. */
	if (write(fd, text, len) != (ssize_t)len)
		return dl_fail_errno(e, "userns", path, "write `%s`", path);
	return 0;
}

/* newuidmap or newgidmap, running. */
struct mapper {
	const char *prog;
	pid_t child;
	int out; /* its stdout and stderr, kept for the message */
};

/* Starts PROG PID INSIDE OUTSIDE COUNT…. */
static int start_mapper(struct mapper *mp, const char *prog, pid_t pid, const struct dl_idmap *m, size_t n, struct dl_error *e)
{
	char *argv[2 + 3 * DL_MAP_MAX + 1];
	char nums[1 + 3 * DL_MAP_MAX][12];
	char *envp[] = {NULL};
	size_t k = 0;
	int out_pipe[2];

	mp->prog = prog;
	mp->child = -1;
	mp->out = -1;
	argv[k++] = (char *)prog;
	snprintf(nums[0], sizeof nums[0], "%d", (int)pid);
	argv[k++] = nums[0];
	for (size_t i = 0; i < n; i++) {
		unsigned long v[3] = {m[i].inside, m[i].outside, m[i].count};
		for (int j = 0; j < 3; j++) {
			char *s = nums[1 + 3 * i + (size_t)j];
			snprintf(s, sizeof nums[0], "%lu", v[j]);
			argv[k++] = s;
		}
	}
	argv[k] = NULL;
	if (pipe2(out_pipe, O_CLOEXEC) < 0)
		return dl_fail_errno(e, "userns", prog, "pipe2 `%s`", prog);
	mp->child = fork();
	if (mp->child < 0) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		return dl_fail_errno(e, "userns", prog, "fork `%s`", prog);
	}
	if (mp->child == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		/* Its messages belong in the error line, not on the container's stdio. */
		if (null < 0 || dup2(null, 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(out_pipe[1], 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		execve(prog, argv, envp);
		dprintf(2, "exec: %s", strerror(errno));
		_exit(127);
	}
	close(out_pipe[1]);
	mp->out = out_pipe[0];
	return 0;
}

/* Waits for a mapper started by start_mapper; its failure, with its output, is an error. */
static int finish_mapper(struct mapper *mp, pid_t pid, struct dl_error *e)
{
	char out[400];
	size_t len = 0;
	ssize_t r;
	int status;

	if (mp->child < 0)
		return 0;
	while ((r = dl_read_retry(mp->out, out + len, sizeof out - 1 - len)) > 0)
		len += (size_t)r;
	close(mp->out);
	out[len] = '\0';
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
	while (waitpid(mp->child, &status, 0) < 0)
		if (errno != EINTR)
			return dl_fail_errno(e, "userns", mp->prog, "waitpid `%s`", mp->prog);
	mp->child = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return dl_fail(e, 0, "userns", mp->prog, "%s `%d`: exit %d%s%s", mp->prog, (int)pid,
			       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), len ? ": " : "", out);
	return 0;
}

int dl_userns_write_maps(const struct dl_userns *u, pid_t pid, struct dl_error *e)
{
	struct mapper uid_mapper = {.child = -1}, gid_mapper = {.child = -1};
	struct dl_error gid_error;
	char text[DL_MAP_TEXT_MAX];
	size_t len;
	int ret = 0;

	/* Both setuid helpers at once: each takes a millisecond or two to start. */
	if (u->newuidmap && start_mapper(&uid_mapper, u->newuidmap, pid, u->uids, u->n_uids, e) < 0)
		return -1;
	if (u->newgidmap && start_mapper(&gid_mapper, u->newgidmap, pid, u->gids, u->n_gids, &gid_error) < 0) {
		finish_mapper(&uid_mapper, pid, e);
		*e = gid_error;
		return -1;
	}
	if (u->newuidmap) {
		ret = finish_mapper(&uid_mapper, pid, e);
	} else {
		len = format_map(u->uids, u->n_uids, text, sizeof text);
		ret = write_proc(pid, "uid_map", text, len, e);
	}
	if (u->newgidmap) {
		if (finish_mapper(&gid_mapper, pid, &gid_error) < 0 && ret == 0) {
			*e = gid_error;
			ret = -1;
		}
		return ret;
	}
	if (ret < 0)
		return -1;
	/* Without CAP_SETGID over the parent namespace, the kernel takes a gid_map only
	 * once setgroups is denied (or the mapped root could drop a group that denies it access). */
	if (geteuid() != 0 && write_proc(pid, "setgroups", "deny", 4, e) < 0)
		return -1;
	len = format_map(u->gids, u->n_gids, text, sizeof text);
	return write_proc(pid, "gid_map", text, len, e);
}

int dl_userns_become_root(struct dl_error *e)
{
	if (setresgid(0, 0, 0) < 0)
		return dl_fail_errno(e, "setgid", "", "setresgid `0`");
	if (setresuid(0, 0, 0) < 0)
		return dl_fail_errno(e, "setuid", "", "setresuid `0`");
	/* The caller's own supplementary groups are not mapped; EPERM where setgroups is denied. */
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		return dl_fail_errno(e, "setgroups", "", "setgroups `none`");
	return 0;
}

struct userns_call {
	int (*fn)(void *arg);
	void *arg;
	int sync_r, sync_w;
};

/* Deep enough for rm's recursion. Mapped when needed, not in .bss: every op
 * would carry it, and the data rlimit counts it. */
#define CALL_STACK_SIZE (1 << 18)

static int userns_call_child(void *arg)
{
	struct userns_call *c = arg;
	struct dl_error e;
	char byte;

	close(c->sync_w);
	/* EOF: the parent failed to write the maps and is gone or reporting it. */
	if (dl_read_retry(c->sync_r, &byte, 1) != 1)
		_exit(DL_EXIT_FAILED);
	close(c->sync_r);
	if (dl_userns_become_root(&e) < 0) {
		dl_status_error(&e);
		_exit(DL_EXIT_FAILED);
	}
	_exit(c->fn(c->arg));
}

int dl_userns_call(const struct dl_userns *u, int (*fn)(void *arg), void *arg, int *wait_status, struct dl_error *e)
{
	struct userns_call c = {.fn = fn, .arg = arg};
	char *stack;
	int sync[2];
	pid_t pid;

	stack = mmap(NULL, CALL_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return dl_fail_errno(e, "clone", "", "mmap `stack`");
	if (pipe2(sync, O_CLOEXEC) < 0) {
		munmap(stack, CALL_STACK_SIZE);
		return dl_fail_errno(e, "userns", "", "pipe2 `sync`");
	}
	c.sync_r = sync[0];
	c.sync_w = sync[1];
	pid = clone(userns_call_child, stack + CALL_STACK_SIZE, CLONE_NEWUSER | SIGCHLD, &c);
	if (pid < 0) {
		close(sync[0]);
		close(sync[1]);
		munmap(stack, CALL_STACK_SIZE);
		return dl_fail_errno(e, "clone", "", "clone `CLONE_NEWUSER`");
	}
	close(c.sync_r);
	if (dl_userns_write_maps(u, pid, e) < 0) {
		close(c.sync_w);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	dl_write_all(c.sync_w, "1", 1);
	close(c.sync_w);
	while (waitpid(pid, wait_status, 0) < 0)
		if (errno != EINTR)
			return dl_fail_errno(e, "userns", "", "waitpid `%d`", (int)pid);
	return 0;
}

/* The id of namespace maps M that host id HOST is; -1 when M leaves it out. */
static long inside_of(const struct dl_idmap *m, size_t n, unsigned long host)
{
	for (size_t i = 0; i < n; i++)
		if (host >= m[i].outside && host - m[i].outside < m[i].count)
			return (long)(m[i].inside + (host - m[i].outside));
	return -1;
}

struct mounted_root {
	const struct dl_root_spec *r;
	int sock;
	long root_uid, root_gid; /* the container's root as ids of the mounting namespace; -1: the upper's top stays */
};

static int mounted_root_child(void *arg)
{
	struct mounted_root *m = arg;
	struct dl_error e;
	_cleanup_close_ int fd = -1;

	if (unshare(CLONE_NEWNS) < 0) {
		dl_fail_errno(&e, "mount", "/", "unshare `CLONE_NEWNS`");
		goto fail;
	}
	if (dl_make_rprivate(&e) < 0)
		goto fail;
	/* A root the maps leave the caller out of could make no mount point in a root directory of the caller's. */
	if (m->r->upper && m->root_uid >= 0 && chown(m->r->upper, (uid_t)m->root_uid, (gid_t)m->root_gid) < 0) {
		dl_fail_errno(&e, "mount", "/", "chown `%s`", m->r->upper);
		goto fail;
	}
	if (dl_mount_root(m->r, &e) < 0)
		goto fail;
	fd = (int)syscall(SYS_open_tree, AT_FDCWD, m->r->target, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0) {
		dl_fail_errno(&e, "mount", "/", "open_tree `%s`", m->r->target);
		goto fail;
	}
	if (dl_send_fd(m->sock, fd) < 0) {
		dl_fail_errno(&e, "userns", "", "sendmsg `root`");
		goto fail;
	}
	return DL_EXIT_OK;
fail:
	dl_status_error(&e);
	return DL_EXIT_FAILED;
}

int dl_userns_mounted_root(const struct dl_userns *mount_ns, const struct dl_userns *u, const struct dl_root_spec *r,
			   int *mnt, struct dl_error *e)
{
	struct mounted_root m = {
		.r = r,
		.root_uid = inside_of(mount_ns->uids, mount_ns->n_uids, host_root(u->uids, u->n_uids)),
		.root_gid = inside_of(mount_ns->gids, mount_ns->n_gids, host_root(u->gids, u->n_gids)),
	};
	_cleanup_close_ int ours = -1;
	int sv[2], status;

	if (m.root_uid < 0 || m.root_gid < 0)
		return dl_fail(e, EINVAL, "userns", "", "the container's root is no id of the mounting namespace");
	if (!mount_ns->root_owns_upper)
		m.root_uid = m.root_gid = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return dl_fail_errno(e, "userns", "", "socketpair `root`");
	ours = sv[0];
	m.sock = sv[1];
	if (dl_userns_call(mount_ns, mounted_root_child, &m, &status, e) < 0) {
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return dl_fail(e, EIO, "mount", "/", "mount the root in the mounting namespace: exit status %d", status);
	if (dl_recv_fd(ours, mnt) < 0 || *mnt < 0)
		return dl_fail(e, EIO, "mount", "/", "mount the root in the mounting namespace: no mount came back");
	return 0;
}

/* A detached copy of the mount at PATH, idmapped through USERNS; ATTRS are set with it. */
static int idmapped_clone(const char *path, int userns, unsigned long long attrs, struct dl_error *e)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP | attrs, .userns_fd = (unsigned long long)userns};
	_cleanup_close_ int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		return dl_fail_errno(e, "idmap", path, "open_tree `%s`", path);
	/* EINVAL here usually means the filesystem does not support idmapped mounts. */
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
		return dl_fail_errno(e, "idmap", path, "mount_setattr `%s` MOUNT_ATTR_IDMAP", path);
	return dl_steal_fd(&fd);
}

static int caps_raise_effective(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	data[0].effective = data[0].permitted;
	data[1].effective = data[1].permitted;
	return (int)syscall(SYS_capset, &hdr, data);
}

static int overlay_lowers(int fs, const int *fds, const struct dl_root_spec *r, struct dl_error *e)
{
	char list[256]; /* fsconfig(2) takes at most 256 bytes of a string value */
	size_t len = 0;

	for (size_t i = 0; i < r->n_lowers; i++) {
		char p[32];
		snprintf(p, sizeof p, "/proc/self/fd/%d", fds[i]);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", p, 0) == 0)
			continue;
		/* Before Linux 6.8 there is no `lowerdir+`: one `lowerdir` list, if it fits. */
		if (errno != EINVAL || i > 0)
			return dl_fail_errno(e, "mount", "/", "fsconfig `lowerdir+=%s` (`%s`)", p, r->lowers[i]);
		for (size_t j = 0; j < r->n_lowers; j++) {
			int n = snprintf(list + len, sizeof list - len, "%s/proc/self/fd/%d", j ? ":" : "", fds[j]);
			if (n < 0 || (size_t)n >= sizeof list - len)
				return dl_fail(e, E2BIG, "mount", "/", "fsconfig `lowerdir`: %zu layers need Linux 6.8", r->n_lowers);
			len += (size_t)n;
		}
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", list, 0) < 0)
			return dl_fail_errno(e, "mount", "/", "fsconfig `lowerdir=%s`", list);
		return 0;
	}
	return 0;
}

int dl_userns_idmapped_root(const struct dl_userns *u, pid_t pid, const struct dl_root_spec *r, int *mnt,
			    struct dl_error *e)
{
	char path[PATH_MAX], upper[PATH_MAX], work[PATH_MAX];
	_cleanup_close_ int userns = -1, fs = -1, bundle = -1;
	_cleanup_free_ int *fds = NULL;
	uid_t root_uid = (uid_t)host_root(u->uids, u->n_uids);
	gid_t root_gid = (gid_t)host_root(u->gids, u->n_gids);
	size_t i, n = 0;
	int ret = -1, created;

	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return dl_fail_errno(e, "idmap", path, "open `%s`", path);
	if (r->n_lowers == 1 && r->upper == NULL) {
		*mnt = idmapped_clone(r->lowers[0], userns, MOUNT_ATTR_NODEV, e);
		return *mnt < 0 ? -1 : 0;
	}
	fds = calloc(r->n_lowers, sizeof *fds);
	if (fds == NULL)
		return dl_fail(e, ENOMEM, "idmap", "", "calloc `%zu layers`", r->n_lowers);
	for (n = 0; n < r->n_lowers; n++) {
		fds[n] = idmapped_clone(r->lowers[n], userns, 0, e);
		if (fds[n] < 0)
			goto out;
	}
	fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0) {
		dl_fail_errno(e, "mount", "/", "fsopen `overlay`");
		goto out;
	}
	if (overlay_lowers(fs, fds, r, e) < 0)
		goto out;
	if (r->upper) {
		/* Upper and work must be on one mount: one idmapped clone of their common parent. */
		char up_copy[PATH_MAX], work_copy[PATH_MAX];
		snprintf(up_copy, sizeof up_copy, "%s", r->upper);
		snprintf(work_copy, sizeof work_copy, "%s", r->work);
		const char *up_dir = dirname(up_copy);
		bundle = idmapped_clone(up_dir, userns, 0, e);
		if (bundle < 0)
			goto out;
		snprintf(up_copy, sizeof up_copy, "%s", r->upper);
		snprintf(upper, sizeof upper, "/proc/self/fd/%d/%s", bundle, basename(up_copy));
		snprintf(work, sizeof work, "/proc/self/fd/%d/%s", bundle, basename(work_copy));
		if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0) {
			dl_fail_errno(e, "mount", "/", "fsconfig `upperdir=%s`", r->upper);
			goto out;
		}
		if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) {
			dl_fail_errno(e, "mount", "/", "fsconfig `workdir=%s`", r->work);
			goto out;
		}
	}
	/* overlayfs does its work in the upper layer with the mounter's credentials,
	 * taken here. Through the idmapped upper, host root is no id at all
	 * (EOVERFLOW), so the mounter acts as the container's root for the files
	 * (fsuid), with every capability it holds still effective (setfsuid drops the
	 * file ones): it must chown on copy-up and set trusted.overlay.* xattrs. */
	setfsgid(root_gid);
	setfsuid(root_uid);
	if (caps_raise_effective() < 0) {
		dl_fail_errno(e, "mount", "/", "capset `effective`");
		created = -1;
	} else {
		created = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
		if (created < 0)
			dl_fail_errno(e, "mount", "/", "fsconfig `overlay` create");
	}
	setfsuid(0);
	setfsgid(0);
	if (created < 0)
		goto out;
	/* nodev: a device node that came with an image is no way to the host's devices;
	 * the container's /dev nodes are bind mounts of the host's, not on this mount. */
	*mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	if (*mnt < 0) {
		dl_fail_errno(e, "mount", "/", "fsmount `overlay`");
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

int dl_send_fd(int sock, int fd)
{
	char byte = '1';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	memset(&control, 0, sizeof control);
	if (fd >= 0) {
		struct cmsghdr *h;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof control.buf;
		h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof fd);
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int dl_recv_fd(int sock, int *fd)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
	struct cmsghdr *h;
	ssize_t n;

	*fd = -1;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR)
			return -1;
	if (n == 0) {
		errno = 0;
		return -1;
	}
	h = CMSG_FIRSTHDR(&msg);
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(h), sizeof *fd);
	return 0;
}
