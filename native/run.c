/* dockless-helper run: the shim, the container's pid 1 and its workload.
 *
 * The shim (this process) clones pid 1 into the new namespaces, writes `pid`, lets
 * pid 1 go on, waits for it and writes `exited`. pid 1 sets the container up in
 * PROTOCOL.md's order and then either becomes the workload or, with --init, forks
 * it and acts as its init. The workload process takes on its user and cwd, writes
 * `started` and execs. pid 1 and the workload tell the shim over a private
 * pipe (the report pipe) when a step failed, so that the shim exits 1 without an
 * `exited` line, and with --init, what the workload's wait status was. */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <libgen.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cgroup.h"
#include "commands.h"
#include "error.h"
#include "events.h"
#include "hooks.h"
#include "init.h"
#include "logio.h"
#include "tty.h"
#include "mounts.h"
#include "netlink.h"
#include "reexec.h"
#include "restart.h"
#include "ns.h"
#include "oci.h"
#include "process.h"
#include "security.h"
#include "status.h"
#include "userns.h"
#include "util.h"

struct join_ns {
	int flag;
	const char *path;
	int fd;
};

struct run_config {
	const char *id;
	int status_fd;
	const char *target;
	const char **lowers;
	size_t n_lowers;
	const char *upper, *work;
	int ns_flags;
	struct join_ns *joins;
	size_t n_joins;
	int join_flags;
	const char *hostname;
	struct dl_mount_spec *mounts;
	size_t n_mounts;
	struct dl_mknod_spec *mknods;
	size_t n_mknods;
	struct dl_symlink_spec *symlinks;
	size_t n_symlinks;
	const char **masks;
	size_t n_masks;
	const char **readonly;
	size_t n_readonly;
	bool readonly_rootfs;
	struct dl_process proc;
	bool init;
	const char *start_fifo;
	bool die_with_parent;
	pid_t parent_pid;
	bool report_netns;
	const char *exit_file;
	const char *oom_file; /* --oom-file: the one cgroup file that counts OOM kills */
	struct dl_cgroups cgroups;
	struct dl_security sec;
	struct dl_userns userns;
	/* --mount-userns-uid/gid: the namespace the root is mounted in, when not the container's. */
	struct dl_userns mount_userns;
	bool userxattr;
	bool volatile_wanted; /* --volatile-upper */
	bool volatile_upper; /* set by the shim: see dl_overlay_volatile_prepare */
	struct dl_veth veth;
	struct dl_restart restart;
	struct dl_events events;
	struct dl_io io;
	bool detach;
	const char *console_socket;
	int console_sock;
	const char **sysctls; /* KEY, VALUE pairs */
	size_t n_sysctls;
	const char **files; /* --write-file: PATH, MODE, CONTENT triples */
	size_t n_files;
	const char **late_files; /* --write-file-late: the same, written once pid 1 exists */
	size_t n_late_files;
	const char **dirs; /* --make-dir: PATH, MODE, UID, GID quadruples; --make-dir-as: PATH, NULL, LIKE, OWN */
	size_t n_dirs;
	const char *state_dir, *state_token, *state_owner; /* --make-state */
	const char *record_path, *record_head, *record_tail; /* --record */
	int netns_fd; /* --netns-fd: a new network namespace made ahead (the fork server's pool) */
	struct dl_hooks hooks;
};

/* What pid 1 and the workload tell the shim on the report pipe. */
struct report {
	int32_t kind;
	int32_t status;
};
enum { REPORT_FAILED = 1, REPORT_EXITED = 2, REPORT_CREATED = 3 };

struct pid1_ctx {
	const struct run_config *c;
	int sync_r, sync_w;     /* shim → pid 1: the `pid` line is written */
	int report_r, report_w; /* pid 1, workload → shim */
	int userns_shim, userns_pid1; /* shim → pid 1: the maps are written (and the root's mount fd) */
	int root_mnt;           /* with --idmap-root: the root, mounted by the shim */
	int target_fd;          /* with --idmap-root: --target, opened by the shim */
	int fifo_fd;
	int go_r, go_w;         /* with --init, init → workload: the init is under the filter */
	mode_t umask;
	int restarts;           /* workloads the init forked again (--restart) */
	int tty_slave;           /* with --tty: the workload's terminal */
	int netns_r, netns_w;    /* shim → pid 1 (EOF): its namespaces are reported, it may stop being dumpable */
};

/* pid 1 runs on this stack; without CLONE_VM it is a private copy, and the
 * pages are only touched (and so only cost anything) in the child. */
static char pid1_stack[1 << 20] __attribute__((aligned(64)));

static unsigned long parse_num(const char *opt, const char *s, int base, unsigned long max)
{
	unsigned long v;

	if (dl_parse_ulong(s, base, max, &v) < 0)
		dl_usage("run", "%s: bad number `%s`", opt, s);
	return v;
}

static void parse_args(int argc, char **argv, struct run_config *c)
{
	size_t cap = (size_t)argc;
	int i;

	c->status_fd = 3;
	dl_process_init(&c->proc, argc);
	dl_security_defaults(&c->sec);
	dl_io_init(&c->io);
	c->lowers = dl_xcalloc(cap, sizeof *c->lowers);
	c->joins = dl_xcalloc(cap, sizeof *c->joins);
	c->mounts = dl_xcalloc(cap, sizeof *c->mounts);
	c->mknods = dl_xcalloc(cap, sizeof *c->mknods);
	c->symlinks = dl_xcalloc(cap, sizeof *c->symlinks);
	c->masks = dl_xcalloc(cap, sizeof *c->masks);
	c->readonly = dl_xcalloc(cap, sizeof *c->readonly);
	c->cgroups.dirs = dl_xcalloc(cap, sizeof *c->cgroups.dirs);
	c->cgroups.fds = dl_xcalloc(cap, sizeof *c->cgroups.fds);
	c->cgroups.steps = dl_xcalloc(cap, sizeof *c->cgroups.steps);
	c->sysctls = dl_xcalloc(cap, sizeof *c->sysctls);
	c->files = dl_xcalloc(cap, sizeof *c->files);
	c->late_files = dl_xcalloc(cap, sizeof *c->late_files);
	c->dirs = dl_xcalloc(cap, sizeof *c->dirs);
	c->console_sock = -1;
	c->netns_fd = -1;
	dl_hooks_init(&c->hooks, argc);

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int taken;
#define NEED(n)                                                                                    \
	do {                                                                                       \
		if (i + (n) >= argc)                                                               \
			dl_usage("run", "%s needs %d argument%s", a, (n), (n) > 1 ? "s" : "");     \
	} while (0)
#define IS(name) (strcmp(a, name) == 0)
		if (IS("--")) {
			c->proc.cmd = &argv[i + 1];
			break;
		} else if (IS("--id")) {
			NEED(1);
			c->id = argv[++i];
		} else if (IS("--status-fd")) {
			NEED(1);
			c->status_fd = (int)parse_num(a, argv[++i], 10, INT_MAX);
		} else if (IS("--target")) {
			NEED(1);
			c->target = argv[++i];
		} else if (IS("--lower")) {
			NEED(1);
			c->lowers[c->n_lowers++] = argv[++i];
		} else if (IS("--upper")) {
			NEED(1);
			c->upper = argv[++i];
		} else if (IS("--work")) {
			NEED(1);
			c->work = argv[++i];
		} else if (IS("--volatile-upper")) {
			c->volatile_wanted = true;
		} else if (IS("--ns")) {
			const char *bad;
			int flags;
			NEED(1);
			if (dl_ns_parse_list(argv[++i], &flags, &bad) < 0)
				dl_usage("run", "--ns: unknown namespace `%s`", bad);
			c->ns_flags |= flags;
		} else if (IS("--join-ns")) {
			struct join_ns *j = &c->joins[c->n_joins++];
			NEED(2);
			j->flag = dl_ns_flag(argv[i + 1]);
			if (j->flag == 0)
				dl_usage("run", "--join-ns: unknown namespace `%s`", argv[i + 1]);
			if (c->join_flags & j->flag)
				dl_usage("run", "--join-ns: `%s` given twice", argv[i + 1]);
			c->join_flags |= j->flag;
			j->path = argv[i + 2];
			j->fd = -1;
			i += 2;
		} else if (IS("--hostname")) {
			NEED(1);
			c->hostname = argv[++i];
		} else if (IS("--mount") || IS("--mount-nofollow")) {
			struct dl_mount_spec *m = &c->mounts[c->n_mounts++];
			NEED(4);
			m->nofollow = IS("--mount-nofollow");
			m->type = argv[i + 1];
			m->src = argv[i + 2];
			m->dst = argv[i + 3];
			m->opts = argv[i + 4];
			i += 4;
		} else if (IS("--mknod")) {
			struct dl_mknod_spec *n = &c->mknods[c->n_mknods++];
			NEED(7);
			n->path = argv[i + 1];
			if (strcmp(argv[i + 2], "c") == 0)
				n->type = S_IFCHR;
			else if (strcmp(argv[i + 2], "b") == 0)
				n->type = S_IFBLK;
			else if (strcmp(argv[i + 2], "p") == 0)
				n->type = S_IFIFO;
			else
				dl_usage("run", "--mknod: bad type `%s` (c, b or p)", argv[i + 2]);
			n->major = (unsigned int)parse_num(a, argv[i + 3], 10, UINT32_MAX);
			n->minor = (unsigned int)parse_num(a, argv[i + 4], 10, UINT32_MAX);
			n->mode = (mode_t)parse_num(a, argv[i + 5], 8, 07777);
			n->uid = (uid_t)parse_num(a, argv[i + 6], 10, UINT32_MAX - 1);
			n->gid = (gid_t)parse_num(a, argv[i + 7], 10, UINT32_MAX - 1);
			i += 7;
		} else if (IS("--symlink")) {
			struct dl_symlink_spec *s = &c->symlinks[c->n_symlinks++];
			NEED(2);
			s->target = argv[i + 1];
			s->path = argv[i + 2];
			i += 2;
		} else if (IS("--mask")) {
			NEED(1);
			c->masks[c->n_masks++] = argv[++i];
		} else if (IS("--readonly")) {
			NEED(1);
			c->readonly[c->n_readonly++] = argv[++i];
		} else if (IS("--readonly-rootfs")) {
			c->readonly_rootfs = true;
		} else if (IS("--init")) {
			c->init = true;
		} else if (IS("--start-fifo")) {
			NEED(1);
			c->start_fifo = argv[++i];
		} else if (IS("--die-with-parent")) {
			NEED(1);
			c->die_with_parent = true;
			c->parent_pid = (pid_t)parse_num(a, argv[++i], 10, INT_MAX);
		} else if (IS("--report-netns")) {
			c->report_netns = true;
		} else if (IS("--cgroup")) {
			NEED(1);
			c->cgroups.dirs[c->cgroups.n++] = argv[++i];
		} else if (IS("--oom-file")) {
			NEED(1);
			c->oom_file = argv[++i];
		} else if (IS("--cgroup-mkdir")) {
			NEED(1);
			c->cgroups.steps[c->cgroups.n_steps++] = (struct dl_cgroup_step){DL_CGROUP_MKDIR, argv[i + 1], NULL};
			i++;
		} else if (IS("--write-file") || IS("--write-file-late")) {
			bool late = IS("--write-file-late");
			const char **to = late ? c->late_files : c->files;
			size_t *n = late ? &c->n_late_files : &c->n_files;
			NEED(3);
			parse_num(a, argv[i + 2], 8, 07777);
			to[3 * *n] = argv[i + 1];
			to[3 * *n + 1] = argv[i + 2];
			to[3 * *n + 2] = argv[i + 3];
			(*n)++;
			i += 3;
		} else if (IS("--make-dir")) {
			NEED(4);
			parse_num(a, argv[i + 2], 8, 07777);
			for (int k = 0; k < 4; k++)
				c->dirs[4 * c->n_dirs + (size_t)k] = argv[i + 1 + k];
			if (strcmp(argv[i + 3], "-") != 0 || strcmp(argv[i + 4], "-") != 0) {
				parse_num(a, argv[i + 3], 10, UINT32_MAX - 1);
				parse_num(a, argv[i + 4], 10, UINT32_MAX - 1);
			}
			c->n_dirs++;
			i += 4;
		} else if (IS("--make-dir-as")) {
			NEED(3);
			if (strcmp(argv[i + 3], "0") != 0 && strcmp(argv[i + 3], "1") != 0)
				dl_usage("run", "--make-dir-as: bad owner flag `%s` (0 or 1)", argv[i + 3]);
			c->dirs[4 * c->n_dirs] = argv[i + 1];
			c->dirs[4 * c->n_dirs + 1] = NULL;
			c->dirs[4 * c->n_dirs + 2] = argv[i + 2];
			c->dirs[4 * c->n_dirs + 3] = argv[i + 3];
			c->n_dirs++;
			i += 3;
		} else if (IS("--make-state")) {
			NEED(3);
			c->state_dir = argv[i + 1];
			c->state_token = argv[i + 2];
			c->state_owner = argv[i + 3];
			if (c->state_dir[0] != '/' || strchr(c->state_token, '/') != NULL)
				dl_usage("run", "--make-state: an absolute directory and a token without `/`");
			i += 3;
		} else if (IS("--record")) {
			NEED(3);
			c->record_path = argv[i + 1];
			c->record_head = argv[i + 2];
			c->record_tail = argv[i + 3];
			i += 3;
		} else if (IS("--netns-fd")) {
			NEED(1);
			c->netns_fd = (int)parse_num(a, argv[++i], 10, INT_MAX);
			if (c->netns_fd < 3)
				dl_usage("run", "--netns-fd: 3 or above");
		} else if (IS("--cgroup-rmdir-at-exit")) {
			c->cgroups.rmdir_at_exit = true;
		} else if (IS("--cgroup-write") || IS("--cgroup-write-optional")) {
			NEED(2);
			c->cgroups.steps[c->cgroups.n_steps++] = (struct dl_cgroup_step){
				IS("--cgroup-write") ? DL_CGROUP_WRITE : DL_CGROUP_WRITE_OPTIONAL, argv[i + 1], argv[i + 2]};
			i += 2;
		} else if (IS("--exit-file")) {
			NEED(1);
			c->exit_file = argv[++i];
		} else if (IS("--userxattr")) {
			c->userxattr = true;
		} else if (IS("--detach")) {
			c->detach = true;
		} else if (IS("--console-socket")) {
			NEED(1);
			c->console_socket = argv[++i];
		} else if (IS("--sysctl")) {
			NEED(2);
			c->sysctls[c->n_sysctls++] = argv[i + 1];
			c->sysctls[c->n_sysctls++] = argv[i + 2];
			i += 2;
		} else if ((taken = dl_process_parse(&c->proc, argc, argv, i, "run")) > 0) {
			i += taken - 1;
		} else if ((taken = dl_security_parse(&c->sec, argc, argv, i)) > 0) {
			i += taken - 1;
		} else if ((taken = dl_userns_parse(&c->userns, argc, argv, i, "run")) > 0 ||
			   (taken = dl_userns_parse_mount(&c->mount_userns, argc, argv, i, "run")) > 0) {
			i += taken - 1;
		} else if ((taken = dl_veth_parse(&c->veth, argc, argv, i, "run")) > 0 ||
			   (taken = dl_restart_parse(&c->restart, argc, argv, i, "run")) > 0 ||
			   (taken = dl_events_parse(&c->events, argc, argv, i, "run")) > 0 ||
			   (taken = dl_io_parse(&c->io, argc, argv, i, "run")) > 0 ||
			   (taken = dl_hooks_parse(&c->hooks, argc, argv, i, "run")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("run", "unknown option `%s`", a);
		}
#undef NEED
#undef IS
	}

	if (c->proc.cmd == NULL || c->proc.cmd[0] == NULL)
		dl_usage("run", "missing command after `--`");
	if (c->ns_flags & c->join_flags)
		dl_usage("run", "a namespace is both in --ns and --join-ns");
	/* A new user namespace comes with its maps (--userns-uid), never from --ns. */
	if (c->ns_flags & CLONE_NEWUSER)
		dl_usage("run", "--ns: a user namespace is made with --userns-uid and --userns-gid");
	if ((c->upper == NULL) != (c->work == NULL))
		dl_usage("run", "--upper and --work go together");
	if (c->target && c->n_lowers == 0)
		dl_usage("run", "--target needs at least one --lower");
	if (!c->target && (c->n_lowers || c->upper || c->n_mounts || c->n_mknods || c->n_symlinks ||
			   c->n_masks || c->n_readonly || c->readonly_rootfs))
		dl_usage("run", "--lower, --upper, --mount, --mount-nofollow, --mknod, --symlink, --mask, --readonly and "
				"--readonly-rootfs need --target");
	/* Never assemble a root, or remount anything, in the caller's mount namespace. */
	if (c->target && !(c->ns_flags & CLONE_NEWNS))
		dl_usage("run", "--target needs a new mount namespace (--ns mount)");
	if (c->hostname && !((c->ns_flags | c->join_flags) & CLONE_NEWUTS))
		dl_usage("run", "--hostname needs a uts namespace");
	dl_userns_check(&c->userns, "run");
	if ((c->join_flags & CLONE_NEWUSER) && dl_userns_enabled(&c->userns))
		dl_usage("run", "--join-ns user and --userns-uid exclude each other");
	if (c->veth.host == NULL && (c->veth.n_addrs > 0 || c->veth.n_gateways > 0))
		dl_usage("run", "--veth-addr and --veth-gateway need --veth");
	if (c->veth.host && !(c->ns_flags & CLONE_NEWNET))
		dl_usage("run", "--veth needs a new network namespace (--ns net)");
	if (c->restart.policy != DL_RESTART_NO && !c->init)
		dl_usage("run", "--restart needs --init");
	/* Nothing of the shim's outlives it with --detach: no io to serve, no exit status to write. */
	if (c->detach && (c->restart.policy != DL_RESTART_NO || c->exit_file || c->die_with_parent ||
			  dl_io_enabled(&c->io) || c->events.file))
		dl_usage("run", "--detach excludes --restart, --exit-file, --die-with-parent, --events-file and the io options");
	if (c->events.launch && !c->events.file)
		dl_usage("run", "--events-launch needs --events-file");
	if (c->detach && (c->record_path || c->state_dir))
		dl_usage("run", "--detach excludes --record and --make-state");
	if (c->console_socket && dl_io_enabled(&c->io))
		dl_usage("run", "--console-socket excludes the io options");
	if (c->n_sysctls > 0 && !c->target)
		dl_usage("run", "--sysctl needs --target");
	/* The hooks' point is between the root's mounts and its pivot_root. */
	if ((c->hooks.fd >= 0 || c->hooks.n > 0) && !c->target)
		dl_usage("run", "--hooks-fd and --hook need --target");
	if (c->hooks.n > 0 && c->hooks.fd < 0)
		dl_usage("run", "--hook needs --hooks-fd (the state on the hooks' stdin)");
	c->proc.keep_parent = c->detach && !c->init;
	c->events.id = c->id;
	c->sec.init_keeps_caps = c->restart.policy != DL_RESTART_NO;
	if (c->userns.idmap_root && !c->target)
		dl_usage("run", "--idmap-root needs --target");
	if (c->mount_userns.root_owns_upper && !dl_userns_enabled(&c->mount_userns))
		dl_usage("run", "--mount-root-owns-upper needs --mount-userns-uid");
	if (dl_userns_enabled(&c->mount_userns)) {
		dl_userns_check(&c->mount_userns, "run");
		if (!dl_userns_enabled(&c->userns) || c->userns.idmap_root || !c->target || !c->upper)
			dl_usage("run", "--mount-userns-uid needs --userns-uid, --target and --upper, not --idmap-root");
		c->mount_userns.newuidmap = c->userns.newuidmap;
		c->mount_userns.newgidmap = c->userns.newgidmap;
	}
	if (c->userns.idmap_root && c->upper) {
		char up[PATH_MAX], work[PATH_MAX];
		snprintf(up, sizeof up, "%s", c->upper);
		snprintf(work, sizeof work, "%s", c->work);
		if (strcmp(dirname(up), dirname(work)) != 0)
			dl_usage("run", "--idmap-root needs --upper and --work in one directory");
	}
}

static _Noreturn void shim_fail(const struct dl_error *e)
{
	dl_status_error(e);
	_exit(DL_EXIT_FAILED);
}

/* A failed step in pid 1 or the workload: the error line, then word to the shim. */
static _Noreturn void child_fail(const struct pid1_ctx *x, const struct dl_error *e)
{
	struct report r = {.kind = REPORT_FAILED, .status = 0};

	/* With --detach the status fd is gone once the container is created: the caller's log is stderr. */
	if (x->c->detach && dl_status_fd() < 0)
		dprintf(STDERR_FILENO, "dockless: %s: %s\n", e->msg, strerror(e->err));
	dl_status_error(e);
	/* A workload forked again fails as a workload that exits 1: the policy decides. */
	if (x->restarts == 0)
		dl_write_all(x->report_w, &r, sizeof r);
	_exit(DL_EXIT_FAILED);
}

static _Noreturn void workload(const struct pid1_ctx *x)
{
	const struct run_config *c = x->c;
	struct dl_error e;

	if (x->go_w >= 0)
		close(x->go_w);
	if (x->tty_slave >= 0 && dl_tty_enter(x->tty_slave, &e) < 0)
		child_fail(x, &e);
	if (dl_process_enter(&c->proc, &c->sec, x->report_w, x->go_r, (int)x->umask, &e) < 0)
		child_fail(x, &e);
	/* After the steps that can fail, so that a bad user, cwd or filter fails the start itself. */
	dl_status_simple("started");
	dl_process_exec(&c->proc);
}

static pid_t respawn_workload(void *arg)
{
	struct pid1_ctx *x = arg;
	pid_t pid;

	x->restarts++;
	/* The init is under the filter already, and the workload inherits it. */
	x->go_r = x->go_w = -1;
	((struct run_config *)x->c)->sec.sealed = true;
	pid = fork();
	if (pid == 0)
		workload(x);
	return pid;
}

static _Noreturn void run_init(struct pid1_ctx *x)
{
	int go[2];
	struct report r = {.kind = REPORT_EXITED};
	struct dl_error e;
	sigset_t all;
	pid_t pid;
	int status;

	/* Blocked before the fork, so no signal meant for the workload is lost. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (pipe2(go, O_CLOEXEC) < 0) {
		dl_fail_errno(&e, "pipe", "", "pipe2 `init`");
		child_fail(x, &e);
	}
	x->go_r = go[0];
	x->go_w = go[1];
	pid = fork();
	if (pid < 0) {
		dl_fail_errno(&e, "fork", "", "fork `init`");
		child_fail(x, &e);
	}
	if (pid == 0)
		workload(x);
	/* The init keeps the container's stdio and the report pipe, no other fd;
	 * the status fd only until its last possible error line. */
	dl_close_fds_except((int[]){dl_status_fd(), x->report_w, x->go_w, x->c->restart.pipe_w}, 4);
	/* Under the container's filter before anything in the container runs: a
	 * process with CAP_SYS_PTRACE could otherwise make the init run what the
	 * filter denies. */
	if (dl_security_init(&x->c->sec, &e) < 0) {
		kill(pid, SIGKILL);
		child_fail(x, &e);
	}
	if (dl_status_fd() >= 0)
		close(dl_status_fd());
	dl_status_init(-1);
	/* Both, for a profile that denies one of them. */
	dl_write_all(x->go_w, "1", 1);
	close(x->go_w);
	if (x->c->restart.policy != DL_RESTART_NO)
		status = dl_restart_loop((struct dl_restart *)&x->c->restart, pid, respawn_workload, x);
	else
		status = dl_init_loop(pid, NULL);
	r.status = status;
	dl_write_all(x->report_w, &r, sizeof r);
	_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

/* The --mknod nodes and --symlink links under ROOTFD. They mostly share /dev, and no
 * mount comes between them: their parent is looked up once while it stays the same. */
static int make_nodes(const struct run_config *c, int rootfd, struct dl_error *e)
{
	struct dl_parent_cache parent = {.fd = -1};
	int rc = 0;
	size_t i;

	for (i = 0; i < c->n_mknods && rc == 0; i++)
		rc = dl_mknod_in_root(&parent, rootfd, &c->mknods[i], e);
	for (i = 0; i < c->n_symlinks && rc == 0; i++)
		rc = dl_symlink_in_root(&parent, rootfd, &c->symlinks[i], e);
	if (parent.fd >= 0)
		close(parent.fd);
	return rc;
}

static int setup(struct pid1_ctx *x, struct dl_error *e)
{
	const struct run_config *c = x->c;
	_cleanup_close_ int rootfd = -1;
	size_t i;

	if ((c->ns_flags & CLONE_NEWNS) && dl_make_rprivate(e) < 0)
		return -1;
	if (c->target) {
		struct dl_root_spec root = {
			.target = c->target,
			.lowers = c->lowers,
			.n_lowers = c->n_lowers,
			.upper = c->upper,
			.work = c->work,
			.userxattr = c->userxattr,
			.volatile_upper = c->volatile_upper,
		};
		if (x->root_mnt >= 0) {
			/* The target as the shim opened it: the container's root may not reach it by path. */
			if (move_mount(x->root_mnt, "", x->target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
				return dl_fail_errno(e, "mount", "/", "move_mount `root` on `%s`", c->target);
			/* Attached now, the mount's fd is the root's top. */
			rootfd = dl_steal_fd(&x->root_mnt);
		} else {
			if (dl_mount_root(&root, e) < 0)
				return -1;
			rootfd = open(c->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (rootfd < 0)
				return dl_fail_errno(e, "mount", "/", "open `%s`", c->target);
		}
		for (i = 0; i < c->n_mounts; i++)
			if (dl_mount_in_root(rootfd, &c->mounts[i], e) < 0)
				return -1;
		if (make_nodes(c, rootfd, e) < 0)
			return -1;
		/* The runtime-spec's createRuntime and createContainer point: the
		 * hooks resolve their paths in (a copy of) the host's mount namespace. */
		if (dl_hooks_run((struct dl_hooks *)&c->hooks, e) < 0)
			return -1;
		if (dl_pivot_root(rootfd, e) < 0)
			return -1;
		/* Before --readonly makes /proc/sys read-only. */
		for (i = 0; i + 1 < c->n_sysctls; i += 2)
			if (dl_sysctl_write(c->sysctls[i], c->sysctls[i + 1], e) < 0)
				return -1;
		/* Mounts below the root do not move the root itself: one fd serves every path. */
		if (c->n_masks || c->n_readonly) {
			close(rootfd);
			rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (rootfd < 0)
				return dl_fail_errno(e, "mount", "/", "open `/`");
		}
		for (i = 0; i < c->n_masks; i++)
			if (dl_mask_path(rootfd, c->masks[i], e) < 0)
				return -1;
		for (i = 0; i < c->n_readonly; i++)
			if (dl_readonly_path(rootfd, c->readonly[i], e) < 0)
				return -1;
	}
	/* A pooled namespace (--netns-fd) has its loopback up already. */
	if ((c->ns_flags & CLONE_NEWNET) && c->netns_fd < 0 && dl_ns_loopback_up(e) < 0)
		return -1;
	if (c->hostname && dl_ns_sethostname(c->hostname, e) < 0)
		return -1;
	if (c->readonly_rootfs && dl_readonly_root(e) < 0)
		return -1;
	return 0;
}

/* In a user namespace the container's root may not reach host directories of
 * mode 0700 (a state directory, a bind source under one). pid 1 opens what it
 * needs on the host (bind sources, and with --idmap-root the target) while it
 * is still the shim's ids, before it becomes that root, and goes through these
 * fds afterwards. Opened in its own mount namespace: a bind or a move_mount
 * takes no mount of another. */
static int open_host_paths(struct run_config *c, struct pid1_ctx *x, struct dl_error *e)
{
	static char (*fd_paths)[32];

	fd_paths = dl_xcalloc(c->n_mounts, sizeof *fd_paths);
	for (size_t i = 0; i < c->n_mounts; i++) {
		struct dl_mount_spec *m = &c->mounts[i];
		int fd;

		if (!dl_mount_is_bind(m))
			continue;
		/* O_CLOEXEC: gone at the workload's execve; the init closes every fd but its own. */
		fd = open(m->src, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return dl_fail_errno(e, "mount", m->dst, "open `%s`", m->src);
		snprintf(fd_paths[i], sizeof fd_paths[i], "/proc/self/fd/%d", fd);
		m->src_path = fd_paths[i];
	}
	if (c->userns.idmap_root || dl_userns_enabled(&c->mount_userns)) {
		x->target_fd = open(c->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (x->target_fd < 0)
			return dl_fail_errno(e, "mount", "/", "open `%s`", c->target);
	}
	return 0;
}

/* With --die-with-parent, the shim gets SIGKILL when its parent dies (and pid 1
 * when the shim does). Fails the run when the parent is already gone. */
static void die_with_parent(const struct run_config *c)
{
	struct dl_error e;

	if (!c->die_with_parent)
		return;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != c->parent_pid) {
		dl_fail(&e, 0, "die-with-parent", "", "getppid `%d`: the parent is gone", (int)c->parent_pid);
		shim_fail(&e);
	}
}

static int pid1_main(void *arg)
{
	struct pid1_ctx *x = arg;
	struct dl_error e;

	close(x->sync_w);
	close(x->report_r);
	if (x->c->restart.pipe_r >= 0)
		close(x->c->restart.pipe_r);
	/* Dies with the shim; if the shim is already gone, the gate below sees EOF. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	dl_status_set_gate(x->sync_r);
	if (x->c->netns_fd >= 0) {
		if (setns(x->c->netns_fd, CLONE_NEWNET) < 0)
			child_fail(x, (dl_fail_errno(&e, "setns", "", "setns `netns-fd`"), &e));
		close(x->c->netns_fd);
	}
	if (dl_userns_enabled(&x->c->userns)) {
		/* Nothing before the maps are written: until then pid 1 is an id its
		 * namespace does not map. EOF: the shim failed (and says so) or is gone. */
		close(x->userns_shim);
		if (dl_recv_fd(x->userns_pid1, &x->root_mnt) < 0)
			_exit(DL_EXIT_FAILED);
		close(x->userns_pid1);
		/* pid 1 has its own copy of the config (no CLONE_VM). */
		if (open_host_paths((struct run_config *)x->c, x, &e) < 0 || dl_userns_become_root(&e) < 0)
			child_fail(x, &e);
		/* A change of credentials clears it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	}
	/* Nothing in the container may open /proc/1/exe (the host's helper binary:
	 * runc's CVE-2019-5736) or /proc/1/fd, mem, environ. The workload inherits
	 * this until its execve. Not before the maps are written: the shim (or
	 * newuidmap) writes them through /proc/PID, which a non-dumpable process
	 * keeps from anyone but root. */
	if (x->netns_r >= 0) {
		char byte;
		close(x->netns_w);
		(void)dl_read_retry(x->netns_r, &byte, 1);
		close(x->netns_r);
	}
	prctl(PR_SET_DUMPABLE, 0);
	/* Into its cgroups before anything else: no step of the container runs outside them. */
	if (dl_cgroups_join(&x->c->cgroups, x->c->ns_flags & CLONE_NEWCGROUP, &e) < 0)
		child_fail(x, &e);
	/* As the container's root, so that the keyring is its own. */
	if (dl_security_keyring(&x->c->sec, &e) < 0)
		child_fail(x, &e);
	/* Modes of created nodes are exact; the workload gets the caller's umask back. */
	x->umask = umask(0);

	if (setup(x, &e) < 0)
		child_fail(x, &e);
	/* After the mounts: the pty is of the container's own devpts. */
	if (x->c->io.tty && dl_io_send_tty((struct dl_io *)&x->c->io, &x->tty_slave, &e) < 0)
		child_fail(x, &e);
	if (x->c->console_sock >= 0 && dl_console_send(x->c->console_sock, x->c->io.rows, x->c->io.cols, &x->tty_slave, &e) < 0)
		child_fail(x, &e);
	dl_status_simple("created");
	if (x->c->detach) {
		struct report r = {.kind = REPORT_CREATED, .status = 0};

		/* The shim exits now: pid 1 is reparented to the caller's subreaper
		 * (conmon, containerd-shim), which waits for it, as runc's is. */
		prctl(PR_SET_PDEATHSIG, 0);
		dl_write_all(x->report_w, &r, sizeof r);
		/* Closed, so that the caller reading it sees its end once the shim has exited. */
		close(dl_status_fd());
		dl_status_init(-1);
	}
	if (x->fifo_fd >= 0) {
		char byte;
		ssize_t n = dl_read_retry(x->fifo_fd, &byte, 1);
		if (n != 1)
			child_fail(x, (dl_fail(&e, n < 0 ? errno : 0, "open start fifo", x->c->start_fifo,
					       "read `%s`", x->c->start_fifo),
				       &e));
		close(x->fifo_fd);
		x->fifo_fd = -1;
	}
	if (x->c->init)
		run_init(x);
	workload(x);
}

/* A descriptor of pid 1's mount namespace, or -1: see where `run` opens it. */
static int hold_mount_ns(pid_t pid)
{
	char path[40];

	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * An exclusive lock on the overlay's work directory, held by the shim and then
 * by the child that drops pid 1's mount namespace (release_mount_ns) until the
 * old overlay is unmounted: a restart of the same container (this process's
 * or another's, which may start once the exit is reported) waits for it here,
 * rather than mount the same upper and work directories beside a live overlay.
 * Pid 1 inherits it only until it closes every descriptor before its command.
 */
static int lock_work_dir(const char *work)
{
	int fd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1; /* the mount itself says what is wrong with it */
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/* The teardown's own steps: nothing but FD (the mount namespace) and LOCK
 * left open, last in line for the CPU, then the namespace dropped. */
static void drop_mount_ns(int fd, int lock)
{
	dl_close_fds_except(lock >= 0 ? (int[]){fd, lock} : (int[]){fd}, lock >= 0 ? 2 : 1);
	close(0);
	close(1);
	close(2);
	/* Last in line for the CPU: otherwise the unmounts take it from the shim's
	 * last steps and the caller's remove() (and the next launch) on a busy
	 * machine, which is where it would be felt. */
	setpriority(PRIO_PROCESS, 0, 19);
	close(fd);
}

/*
 * Drops the mount namespace `hold_mount_ns` kept, once the caller heard of the
 * exit, so that neither the caller's remove() nor its next launch waits for the
 * unmounts: the teardown keeps the work directory's lock until they are done,
 * and none of the shim's other descriptors, so no pipe of the caller's stays
 * open behind it; its pid goes on the status descriptor (`teardown`), and the
 * caller goes on at that line. Forked by the fork server (a subreaper that
 * reaps what its ops leave, and nobody waits for the op's exit after that
 * line), the shim is the teardown itself, with no fork. Spawned by the caller,
 * the teardown is a child at nice 19, returned for the shim to wait for before
 * it exits, having closed its status descriptor: the caller waits for the
 * shim's exit, and an orphan would go to the pid namespace's init, which may
 * never reap it. When the fork fails, the shim drops both in line.
 */
static pid_t release_mount_ns(int fd, int lock)
{
	unsigned long long start = 0;
	pid_t child = -1;

	if (fd >= 0 && dl_orphans_reaped) {
		if (dl_proc_start_time(getpid(), &start) == 0)
			dl_status_proc("teardown", getpid(), start);
		dl_status_init(-1);
		drop_mount_ns(fd, lock);
		return -1;
	}
	if (fd >= 0)
		child = fork();
	if (child == 0) {
		drop_mount_ns(fd, lock);
		_exit(0);
	}
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	/* Its parent until this shim exits, so its pid cannot be reused before the start time is read. */
	if (child > 0 && dl_proc_start_time(child, &start) == 0)
		dl_status_proc("teardown", child, start);
	return child;
}

static int write_exit_file(const char *path, const char *line, size_t len, struct dl_error *e)
{
	char tmp[PATH_MAX];
	_cleanup_close_ int fd = -1;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
		return dl_fail(e, ENAMETOOLONG, "write exit file", path, "open `%s.tmp`", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return dl_fail_errno(e, "write exit file", path, "open `%s`", tmp);
	if (dl_write_all(fd, line, len) < 0)
		return dl_fail_errno(e, "write exit file", path, "write `%s`", tmp);
	if (rename(tmp, path) < 0)
		return dl_fail_errno(e, "write exit file", path, "rename `%s`", tmp);
	return 0;
}

static int wire_link(const struct run_config *c, pid_t pid, struct dl_error *e)
{
	char path[64];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dl_fail_errno(e, "setns", path, "open `%s`", path);
	return dl_net_veth(&c->veth, fd, e);
}

/* --detach: exits 0 once pid 1 is created (leaving it to run on), 1 if it failed or died first. */
static int wait_created(pid_t pid, int report_r)
{
	struct pollfd p = {.fd = report_r, .events = POLLIN};
	struct report r;

	for (;;) {
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		ssize_t n = dl_read_retry(report_r, &r, sizeof r);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n == (ssize_t)sizeof r && r.kind == REPORT_CREATED)
			return DL_EXIT_OK;
		break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return DL_EXIT_FAILED;
}

/* --write-file's PATH, MODE, CONTENT triples: each made new, MODE exactly. */
static int write_file_list(const char **files, size_t n, struct dl_error *e)
{
	for (size_t k = 0; k < n; k++) {
		const char *path = files[3 * k], *content = files[3 * k + 2];
		mode_t mode = (mode_t)strtoul(files[3 * k + 1], NULL, 8);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

		if (fd < 0)
			return dl_fail_errno(e, "write file", path, "open `%s`", path);
		if (fchmod(fd, mode) < 0 || dl_write_all(fd, content, strlen(content)) < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return dl_fail_errno(e, "write file", path, "write `%s`", path);
		}
		close(fd);
	}
	return 0;
}

/* --write-file: the container's small files (hostname, hosts, …), each made new:
 * never through a symlink nor over a file already there, so a path planted
 * beforehand is refused, not written through. MODE exactly (no umask). */
static int write_files(const struct run_config *c, struct dl_error *e)
{
	/* --make-dir first (a file may go in one): new directories, MODE exactly and,
	 * unless `-`, owned by UID:GID, set through a descriptor of the directory made. */
	for (size_t k = 0; k < c->n_dirs; k++) {
		const char *path = c->dirs[4 * k];
		bool as = c->dirs[4 * k + 1] == NULL;
		mode_t mode = 0;
		bool own = false;
		uid_t uid = 0;
		gid_t gid = 0;
		int fd;

		if (as) {
			/* --make-dir-as: the mode (and with OWN the owner) of LIKE's root, which the
			 * container then sees at `/` (overlayfs takes the merged root's from the upper). */
			struct stat like;
			if (stat(c->dirs[4 * k + 2], &like) < 0)
				return dl_fail_errno(e, "make dir", path, "stat `%s`", c->dirs[4 * k + 2]);
			mode = like.st_mode & 07777;
			own = c->dirs[4 * k + 3][0] == '1';
			uid = like.st_uid;
			gid = like.st_gid;
		} else {
			mode = (mode_t)strtoul(c->dirs[4 * k + 1], NULL, 8);
			own = strcmp(c->dirs[4 * k + 2], "-") != 0;
			if (own) {
				uid = (uid_t)strtoul(c->dirs[4 * k + 2], NULL, 10);
				gid = (gid_t)strtoul(c->dirs[4 * k + 3], NULL, 10);
			}
		}
		if (mkdir(path, 0700) < 0)
			return dl_fail_errno(e, "make dir", path, "mkdir `%s`", path);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return dl_fail_errno(e, "make dir", path, "open `%s`", path);
		/* The chown first: it clears set-id bits that the mode may hold. */
		if ((own && fchown(fd, uid, gid) < 0) || fchmod(fd, mode) < 0) {
			int err = errno;
			close(fd);
			errno = err;
			return dl_fail_errno(e, "make dir", path, "chown/chmod `%s`", path);
		}
		close(fd);
	}
	return write_file_list(c->files, c->n_files, e);
}

/* --make-state DIR TOKEN OWNER: the container's state directory, appearing whole
 * with `owner.json` (OWNER: the launching process, which others judge the launch
 * by) already in it: made as `.new-TOKEN` beside it, then renamed. TOKEN names the
 * launching process too, so that what a crash leaves is taken once it is gone. */
static int make_state(const struct run_config *c, struct dl_error *e)
{
	char parent[PATH_MAX], tmp[PATH_MAX], file[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int err;

	snprintf(parent, sizeof parent, "%s", c->state_dir);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/.new-%s", dirname(parent), c->state_token) >= sizeof tmp ||
	    (size_t)snprintf(file, sizeof file, "%s/owner.json", tmp) >= sizeof file)
		return dl_fail(e, ENAMETOOLONG, "make state", c->state_dir, "mkdir `%s`", c->state_dir);
	if (mkdir(tmp, 0711) < 0)
		return dl_fail_errno(e, "make state", c->state_dir, "mkdir `%s`", tmp);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0 || dl_write_all(fd, c->state_owner, strlen(c->state_owner)) < 0 || rename(tmp, c->state_dir) < 0) {
		err = errno;
		unlink(file);
		rmdir(tmp);
		errno = err;
		return dl_fail_errno(e, "make state", c->state_dir, "write `%s`", file);
	}
	return 0;
}

/*
 * The launch's records: the state directory (--make-state) and the files that
 * only the library reads (--write-file-late). Nothing of the container needs
 * them, so they are written once pid 1 is cloned, while it sets itself up,
 * and the `pid` line comes after them (the record, last, after them too).
 */
static int write_records(const struct run_config *c, struct dl_error *e)
{
	if (c->state_dir && make_state(c, e) < 0)
		return -1;
	return write_file_list(c->late_files, c->n_late_files, e);
}

/* Whether the records go first, before the joins: a joined namespace may change
 * whose the shim's writes are, and the FIFOs the shim opens before the clone are
 * made in the state directory. */
static bool records_first(const struct run_config *c)
{
	return c->n_joins > 0 || c->start_fifo || c->io.stdin_fifo || c->io.control_fifo;
}

/* --record PATH HEAD TAIL: the container's record, HEAD `"pid":PID,"pidStart":START`
 * TAIL, written once pid 1 exists and before the `pid` line; others take a state
 * directory without it for a launch in progress. Not synced: the state directory
 * does not outlive a reboot. */
static int write_record(const struct run_config *c, pid_t pid, unsigned long long start, struct dl_error *e)
{
	size_t head = strlen(c->record_head), tail = strlen(c->record_tail), len;
	_cleanup_free_ char *data = malloc(head + tail + 64);

	if (data == NULL)
		return dl_fail(e, ENOMEM, "write record", c->record_path, "malloc `record`");
	memcpy(data, c->record_head, head);
	len = head + (size_t)snprintf(data + head, 64, "\"pid\":%d,\"pidStart\":%llu", (int)pid, start);
	memcpy(data + len, c->record_tail, tail);
	len += tail;
	if (dl_write_file_replace(c->record_path, data, len) < 0)
		return dl_fail_errno(e, "write record", c->record_path, "write `%s`", c->record_path);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static struct run_config c;
	struct pid1_ctx x = {.c = &c,
			     .fifo_fd = -1,
			     .userns_shim = -1,
			     .userns_pid1 = -1,
			     .root_mnt = -1,
			     .target_fd = -1,
			     .go_r = -1,
			     .go_w = -1,
			     .tty_slave = -1,
			     .netns_r = -1,
			     .netns_w = -1};
	struct dl_error e;
	int sync_pipe[2], report_pipe[2];
	struct report r;
	struct dl_shim_watch watch = {.restart = &c.restart, .events = &c.events};
	struct dl_exited_extra exited = {0};
	int status, failed = 0, clone_ns, mntns_hold = -1, work_lock = -1;
	pid_t teardown;
	pid_t pid;
	size_t i;

	parse_args(argc, argv, &c);
	dl_status_init(c.status_fd);
	/* Every process of the container descends from this one without an exec:
	 * from a sealed copy, /proc/PID/exe of each leads to nothing on the host. */
	if (dl_reexec_sealed(dl_main_argv, &e) < 0)
		shim_fail(&e);
	signal(SIGPIPE, SIG_IGN);
	clone_ns = c.ns_flags;
	/* A pooled namespace stands in for CLONE_NEWNET only where nothing reads
	 * pid 1's network namespace before it has joined it (--report-netns, --veth)
	 * and none of a user namespace's own is needed; else it is dropped unused. */
	if (c.netns_fd >= 0) {
		if ((c.ns_flags & CLONE_NEWNET) && !dl_userns_enabled(&c.userns) && !c.report_netns && c.veth.host == NULL &&
		    fcntl(c.netns_fd, F_SETFD, FD_CLOEXEC) == 0) {
			clone_ns &= ~CLONE_NEWNET;
		} else {
			close(c.netns_fd);
			c.netns_fd = -1;
		}
	}

	die_with_parent(&c);
	if (records_first(&c) && write_records(&c, &e) < 0)
		shim_fail(&e);
	/* Before anything this shim records (`die`). */
	if (c.events.launch)
		dl_events_append(c.events.file, c.events.launch, strlen(c.events.launch));
	/* Host paths are opened here, before any namespace changes how they resolve. */
	if (dl_cgroups_make(&c.cgroups, &e) < 0 || write_files(&c, &e) < 0)
		shim_fail(&e);
	if (c.console_socket && dl_console_connect(c.console_socket, &c.console_sock, &e) < 0)
		shim_fail(&e);
	for (i = 0; i < c.n_joins; i++) {
		struct join_ns *j = &c.joins[i];
		j->fd = open(j->path, O_RDONLY | O_CLOEXEC);
		if (j->fd < 0) {
			dl_fail_errno(&e, "setns", j->path, "open `%s`", j->path);
			shim_fail(&e);
		}
	}
	/* The shim joins them all and pid 1 is cloned into them: a pid namespace
	 * only takes effect for children, and a pid 1 cloned into a user namespace of
	 * its own keeps the joined ones (it could not setns into namespaces another
	 * user namespace owns). The user namespace first: it owns the others. */
	for (int pass = 0; pass < 2; pass++)
		for (i = 0; i < c.n_joins; i++) {
			struct join_ns *j = &c.joins[i];
			if ((j->flag == CLONE_NEWUSER) == (pass == 0) && dl_ns_join(j->fd, j->flag, j->path, &e) < 0)
				shim_fail(&e);
		}
	if (dl_security_load(&c.sec, &e) < 0)
		shim_fail(&e);
	if (c.start_fifo) {
		if (mkfifo(c.start_fifo, 0600) < 0 && errno != EEXIST) {
			dl_fail_errno(&e, "open start fifo", c.start_fifo, "mkfifo `%s`", c.start_fifo);
			shim_fail(&e);
		}
		x.fifo_fd = open(c.start_fifo, O_RDWR | O_CLOEXEC);
		if (x.fifo_fd < 0) {
			dl_fail_errno(&e, "open start fifo", c.start_fifo, "open `%s`", c.start_fifo);
			shim_fail(&e);
		}
	}
	if (dl_cgroups_open(&c.cgroups, &e) < 0)
		shim_fail(&e);
	/* Only pid 1 reads it, and nothing of the container's may inherit it. */
	if (c.hooks.fd >= 0 && fcntl(c.hooks.fd, F_SETFD, FD_CLOEXEC) < 0) {
		dl_fail_errno(&e, "hook", "", "fcntl `hooks-fd`");
		shim_fail(&e);
	}
	if (dl_io_enabled(&c.io) && dl_io_start_run(&c.io, &e) < 0)
		shim_fail(&e);
	if (pipe2(sync_pipe, O_CLOEXEC) < 0 || pipe2(report_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		dl_fail_errno(&e, "pipe", "", "pipe2 `sync`");
		shim_fail(&e);
	}
	if (dl_restart_open(&c.restart, &e) < 0)
		shim_fail(&e);
	x.sync_r = sync_pipe[0];
	x.sync_w = sync_pipe[1];
	x.report_r = report_pipe[0];
	x.report_w = report_pipe[1];
	if (dl_userns_enabled(&c.userns)) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
			dl_fail_errno(&e, "userns", "", "socketpair `userns`");
			shim_fail(&e);
		}
		x.userns_shim = sv[0];
		x.userns_pid1 = sv[1];
	}

	/* In a joined user namespace pid 1 does not wait for maps: it waits for the
	 * report instead, which cannot open its namespaces once it is not dumpable. */
	if (c.report_netns && !dl_userns_enabled(&c.userns) && (c.join_flags & CLONE_NEWUSER)) {
		int gate[2];
		if (pipe2(gate, O_CLOEXEC) < 0) {
			dl_fail_errno(&e, "pipe", "", "pipe2 `netns`");
			shim_fail(&e);
		}
		x.netns_r = gate[0];
		x.netns_w = gate[1];
	}
	/* Before pid 1 mounts the overlay: see lock_work_dir. */
	if (c.upper != NULL && !c.detach)
		work_lock = lock_work_dir(c.work);
	/* Volatile when asked and where pid 1 mounts the overlay as host root: in a user
	 * namespace its work directory is not this shim's to clear (see
	 * dl_overlay_volatile_prepare). A marker left by an earlier volatile mount is
	 * checked either way. */
	if (c.upper != NULL) {
		int v = dl_overlay_volatile_prepare(c.work, c.volatile_wanted && !dl_userns_enabled(&c.userns) && !(c.join_flags & CLONE_NEWUSER), &e);
		if (v < 0)
			shim_fail(&e);
		c.volatile_upper = v > 0;
	}
	/* With cgroups, pid 1 unshares its cgroup namespace once it is in them. */
	pid = clone(pid1_main, pid1_stack + sizeof pid1_stack,
		    (c.cgroups.n > 0 ? clone_ns & ~CLONE_NEWCGROUP : clone_ns) |
			    (dl_userns_enabled(&c.userns) ? CLONE_NEWUSER : 0) | SIGCHLD,
		    &x);
	if (pid < 0) {
		dl_fail_errno(&e, "clone", "", "clone `pid 1`");
		shim_fail(&e);
	}
	close(x.sync_r);
	close(x.report_w);
	if (c.netns_fd >= 0)
		close(c.netns_fd);
	/* Held until this shim exits, after the exit is reported: otherwise pid 1's
	 * exit drops the last reference to the mount namespace, and its exit waits
	 * for every mount to go — and an overlay that is not volatile syncs the
	 * whole upper filesystem at its unmount (ovl_sync_fs), 1–7 ms on ext4 —
	 * before its parent hears of it.
	 * Opened now, while pid 1 waits and is still dumpable. A failure only
	 * leaves the teardown on the exit's path. */
	if (!c.detach)
		mntns_hold = hold_mount_ns(pid);
	/* Now, while pid 1 waits and is still dumpable: later only root may open its namespaces. */
	if (c.report_netns && dl_ns_report(pid, dl_userns_enabled(&c.userns), &e) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		shim_fail(&e);
	}
	if (x.netns_r >= 0) {
		close(x.netns_r);
		close(x.netns_w);
	}
	if (c.io.tty_sock >= 0)
		close(c.io.tty_sock);
	if (c.console_sock >= 0)
		close(c.console_sock);
	if (c.hooks.fd >= 0)
		close(c.hooks.fd);
	if (dl_userns_enabled(&c.userns)) {
		struct dl_root_spec root = {
			.target = c.target,
			.lowers = c.lowers,
			.n_lowers = c.n_lowers,
			.upper = c.upper,
			.work = c.work,
			.userxattr = c.userxattr,
		};
		int mnt = -1;

		close(x.userns_pid1);
		if (dl_userns_write_maps(&c.userns, pid, &e) < 0 ||
		    (c.userns.idmap_root && dl_userns_idmapped_root(&c.userns, pid, &root, &mnt, &e) < 0) ||
		    (dl_userns_enabled(&c.mount_userns) &&
		     dl_userns_mounted_root(&c.mount_userns, &c.userns, &root, &mnt, &e) < 0) ||
		    (dl_send_fd(x.userns_shim, mnt) < 0 && dl_fail_errno(&e, "userns", "", "sendmsg `userns`") < 0)) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			shim_fail(&e);
		}
		if (mnt >= 0)
			close(mnt);
		close(x.userns_shim);
		/* The idmapped root is mounted with the container root's fsuid, and the
		 * kernel clears the parent-death signal on any change of fsuid
		 * (commit_creds): armed again, or the container outlives its owner. */
		die_with_parent(&c);
	}
	/* Wired here, between the clone and the `pid` line: pid 1's setup runs meanwhile,
	 * and nothing of the container runs before the gate opens. */
	if (c.veth.host != NULL && wire_link(&c, pid, &e) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		shim_fail(&e);
	}
	if (dl_io_enabled(&c.io) && dl_io_watch_run(&c.io, pid, &e) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		shim_fail(&e);
	}
	dl_cgroups_close(&c.cgroups);
	if (x.fifo_fd >= 0)
		close(x.fifo_fd);
	for (i = 0; i < c.n_joins; i++)
		close(c.joins[i].fd);

	/* A cgroup or data directory made before its state directory is a launch's
	 * for a while yet to others (prune.ts and audit.ts give it a grace period). */
	if (!records_first(&c) && write_records(&c, &e) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		shim_fail(&e);
	}
	if (c.record_path) {
		unsigned long long start = 0;
		if (dl_proc_start_time(pid, &start) < 0)
			dl_fail_errno(&e, "write record", c.record_path, "read `/proc/%d/stat`", (int)pid);
		if (start == 0 || write_record(&c, pid, start, &e) < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			shim_fail(&e);
		}
		dl_status_pid_start(pid, start);
	} else {
		dl_status_pid(pid);
	}
	dl_write_all(x.sync_w, "1", 1);
	close(x.sync_w);
	if (c.detach)
		return wait_created(pid, x.report_r);
	watch.oom_file = c.oom_file;
	dl_shim_watch_start(&watch);

	dl_io_serve(&c.io);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			dl_fail_errno(&e, "waitpid", "", "waitpid `%d`", (int)pid);
			shim_fail(&e);
		}
	}
	while (dl_read_retry(x.report_r, &r, sizeof r) == (ssize_t)sizeof r) {
		if (r.kind == REPORT_FAILED)
			failed = 1;
		else if (r.kind == REPORT_EXITED)
			status = r.status;
	}
	dl_io_finish(&c.io);
	if (failed)
		return DL_EXIT_FAILED;
	dl_shim_watch_finish(&watch, status);
	exited.oom = watch.oom_seen > 0;

	/* The caller hears first; the exit file is for other processes. The state
	 * directory does not outlive a reboot, so it is renamed into place, not synced. */
	dl_status_exited_ex(status, &exited);
	if (c.exit_file) {
		char line[160];
		size_t len = dl_format_exited_ex(line, sizeof line, status, &exited);
		if (write_exit_file(c.exit_file, line, len, &e) < 0)
			shim_fail(&e);
	}
	/* The last exit (restarts happen inside pid 1): nothing of the container is
	 * left in its cgroups. Removed after the caller heard of the exit, while it
	 * goes on, and not by it on its own thread. */
	if (c.cgroups.rmdir_at_exit && c.cgroups.n > 0 && dl_cgroups_remove(&c.cgroups))
		dl_status_simple("cgroups-removed");
	teardown = release_mount_ns(mntns_hold, work_lock);
	if (teardown > 0) {
		/* Nothing more to say: the caller's reader ends now, not at this exit. */
		if (dl_status_fd() >= 0)
			close(dl_status_fd());
		dl_status_init(-1);
		while (waitpid(teardown, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return DL_EXIT_OK;
}
