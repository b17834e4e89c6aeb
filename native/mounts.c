#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs.h"
#include "mounts.h"
#include "util.h"

/* A bind remount's MS_RDONLY covers only the top mount: sub-mounts of an rbind
 * stay writable unless made read-only recursively (mount_setattr, Linux 5.12+;
 * on older kernels only the top is read-only). */
static int readonly_recursive(int fd, const char *dst, struct dl_error *e)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};

	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0 && errno != ENOSYS)
		return dl_fail_errno(e, "mount", dst, "mount_setattr `%s` recursive read-only", dst);
	return 0;
}

/* mount(2) takes at most one page of data. */
#define DL_MOUNT_DATA_MAX 4096

#define DL_SECURITY_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
#define DL_ATIME_FLAGS (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

struct mount_opts {
	unsigned long flags;       /* for mount(2) */
	unsigned long propagation; /* applied by a second mount(2) on the new mount */
	char data[DL_MOUNT_DATA_MAX];
};

static const struct {
	const char *word;
	unsigned long set, clear, propagation;
} mount_words[] = {
	{"ro", MS_RDONLY, 0, 0},
	{"rw", 0, MS_RDONLY, 0},
	{"nosuid", MS_NOSUID, 0, 0},
	{"suid", 0, MS_NOSUID, 0},
	{"nodev", MS_NODEV, 0, 0},
	{"dev", 0, MS_NODEV, 0},
	{"noexec", MS_NOEXEC, 0, 0},
	{"exec", 0, MS_NOEXEC, 0},
	{"sync", MS_SYNCHRONOUS, 0, 0},
	{"async", 0, MS_SYNCHRONOUS, 0},
	{"dirsync", MS_DIRSYNC, 0, 0},
	{"noatime", MS_NOATIME, 0, 0},
	{"atime", 0, MS_NOATIME, 0},
	{"nodiratime", MS_NODIRATIME, 0, 0},
	{"diratime", 0, MS_NODIRATIME, 0},
	{"relatime", MS_RELATIME, 0, 0},
	{"norelatime", 0, MS_RELATIME, 0},
	{"strictatime", MS_STRICTATIME, 0, 0},
	{"nostrictatime", 0, MS_STRICTATIME, 0},
	{"bind", MS_BIND, 0, 0},
	{"rbind", MS_BIND | MS_REC, 0, 0},
	{"private", 0, 0, MS_PRIVATE},
	{"rprivate", 0, 0, MS_PRIVATE | MS_REC},
	{"slave", 0, 0, MS_SLAVE},
	{"rslave", 0, 0, MS_SLAVE | MS_REC},
	{"shared", 0, 0, MS_SHARED},
	{"rshared", 0, 0, MS_SHARED | MS_REC},
	{"unbindable", 0, 0, MS_UNBINDABLE},
	{"runbindable", 0, 0, MS_UNBINDABLE | MS_REC},
};

static int parse_mount_opts(const char *opts, struct mount_opts *o)
{
	const char *p = opts;
	size_t len = 0;

	o->flags = 0;
	o->propagation = 0;
	o->data[0] = '\0';
	if (strcmp(opts, "-") == 0)
		return 0;
	while (*p) {
		const char *end = strchrnul(p, ',');
		size_t n = (size_t)(end - p), i;

		for (i = 0; i < sizeof mount_words / sizeof mount_words[0]; i++) {
			if (strlen(mount_words[i].word) == n && memcmp(mount_words[i].word, p, n) == 0) {
				o->flags = (o->flags & ~mount_words[i].clear) | mount_words[i].set;
				o->propagation |= mount_words[i].propagation;
				break;
			}
		}
		if (i == sizeof mount_words / sizeof mount_words[0] && n > 0) {
			if (len + (len ? 1 : 0) + n + 1 > sizeof o->data) {
				errno = E2BIG;
				return -1;
			}
			if (len)
				o->data[len++] = ',';
			memcpy(o->data + len, p, n);
			len += n;
			o->data[len] = '\0';
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

static unsigned long mount_flags_of(const struct statvfs *st)
{
	unsigned long flags = 0;

	if (st->f_flag & ST_RDONLY)
		flags |= MS_RDONLY;
	if (st->f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (st->f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (st->f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	return flags;
}

int dl_make_rprivate(struct dl_error *e)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return dl_fail_errno(e, "mount", "/", "mount `/` rprivate");
	return 0;
}

/* Where overlayfs marks a work directory that a `volatile` mount used (Linux
 * 5.10+), relative to it; and the work directory's attribute that records the
 * boot of that mount (an attribute: no file whose block a removal must free). */
#define VOLATILE_MARK "work/incompat/volatile"
#define VOLATILE_BOOT_XATTR "trusted.dockless.boot_id"

/* The marker directory and what the kernel put in it (the file `dirty`). */
static int remove_volatile_mark(int workfd)
{
	_cleanup_close_ int fd = openat(workfd, VOLATILE_MARK, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	d = fdopendir(fd);
	if (d == NULL)
		return -1;
	fd = -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			closedir(d);
			return -1;
		}
	closedir(d);
	return unlinkat(workfd, VOLATILE_MARK, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
}

/*
 * A `volatile` overlay skips every sync of the upper filesystem, above all the
 * whole-filesystem sync (ovl_sync_fs) at its unmount, once per container. Its
 * writes are then safe from anything but a host crash, which is what the
 * kernel's marker stands for: it stays in the work directory, and no overlay
 * mounts there again until it is removed. We remove it when the boot id
 * recorded at the volatile mount is this boot's (the page cache still holds
 * every write), and refuse otherwise rather than show a container a
 * filesystem that a crash may have left without some of its writes.
 */
int dl_overlay_volatile_prepare(const char *work, bool want, struct dl_error *e)
{
	_cleanup_close_ int workfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int bootfd = -1;
	char boot[64], recorded[64];
	ssize_t n_boot = -1, n_recorded;
	struct stat st;
	bool marked;

	if (workfd < 0)
		return 0; /* the mount says what is wrong with it */
	marked = fstatat(workfd, VOLATILE_MARK, &st, AT_SYMLINK_NOFOLLOW) == 0;
	/* Another error than ENOENT: not ours to look into (a rootless work dir),
	 * so no volatile mount, whose marker we could not clear. On every launch's
	 * path, a work dir with no marker that wants no volatile mount costs just
	 * that lookup. */
	if (!marked && (errno != ENOENT || !want))
		return 0;
	bootfd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (bootfd >= 0)
		n_boot = dl_read_retry(bootfd, boot, sizeof boot);
	if (marked) {
		n_recorded = fgetxattr(workfd, VOLATILE_BOOT_XATTR, recorded, sizeof recorded);
		if (n_boot <= 0 || n_recorded != n_boot || memcmp(boot, recorded, (size_t)n_boot) != 0)
			return dl_fail(e, EUCLEAN, "mount", work,
				       "overlay work dir `%s`: mounted `volatile` in an earlier boot, its upper may have lost writes",
				       work);
		if (remove_volatile_mark(workfd) < 0)
			return dl_fail_errno(e, "mount", work, "remove `%s/" VOLATILE_MARK "`", work);
		/* The boot recorded is this one already. */
		return want ? 1 : 0;
	}
	/* Without the record, no volatile mount: its marker could not be cleared. */
	if (n_boot <= 0 || fsetxattr(workfd, VOLATILE_BOOT_XATTR, boot, (size_t)n_boot, 0) < 0)
		return 0;
	return 1;
}

/* Appends S to the overlay option string with `\`, `:` and `,` escaped. */
static int overlay_append(char *buf, size_t size, size_t *len, const char *prefix, const char *s)
{
	size_t n = *len;

	for (const char *p = prefix; *p; p++) {
		if (n + 1 >= size)
			return -1;
		buf[n++] = *p;
	}
	for (const char *p = s; *p; p++) {
		if (*p == '\\' || *p == ':' || *p == ',') {
			if (n + 1 >= size)
				return -1;
			buf[n++] = '\\';
		}
		if (n + 1 >= size)
			return -1;
		buf[n++] = *p;
	}
	buf[n] = '\0';
	*len = n;
	return 0;
}

/* Overlay through the new mount API, one `lowerdir+` per layer (Linux 6.8+), for
 * layer lists too long for the one page that mount(2) takes. */
static int mount_overlay_fsconfig(const struct dl_root_spec *r, struct dl_error *e)
{
	_cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	_cleanup_close_ int mnt = -1;

	if (fs < 0)
		return dl_fail_errno(e, "mount", "/", "fsopen `overlay`");
	for (size_t i = 0; i < r->n_lowers; i++)
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", r->lowers[i], 0) < 0)
			return dl_fail_errno(e, "mount", "/", "fsconfig `lowerdir+=%s`", r->lowers[i]);
	if (r->upper) {
		if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", r->upper, 0) < 0)
			return dl_fail_errno(e, "mount", "/", "fsconfig `upperdir=%s`", r->upper);
		if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", r->work, 0) < 0)
			return dl_fail_errno(e, "mount", "/", "fsconfig `workdir=%s`", r->work);
	}
	if (r->userxattr && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
		return dl_fail_errno(e, "mount", "/", "fsconfig `userxattr`");
	/* Unknown before Linux 5.10: then without it. */
	if (r->upper && r->volatile_upper)
		(void)fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0);
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return dl_fail_errno(e, "mount", "/", "fsconfig `overlay` create");
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return dl_fail_errno(e, "mount", "/", "fsmount `overlay`");
	if (move_mount(mnt, "", AT_FDCWD, r->target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return dl_fail_errno(e, "mount", "/", "move_mount `overlay` on `%s`", r->target);
	return 0;
}

int dl_mount_root(const struct dl_root_spec *r, struct dl_error *e)
{
	char data[DL_MOUNT_DATA_MAX];
	size_t len = 0;
	int fits = 1;

	if (r->n_lowers == 1 && r->upper == NULL) {
		if (mount(r->lowers[0], r->target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return dl_fail_errno(e, "mount", "/", "mount `%s` on `%s`", r->lowers[0], r->target);
		return 0;
	}
	for (size_t i = 0; i < r->n_lowers && fits; i++)
		fits = overlay_append(data, sizeof data, &len, i == 0 ? "lowerdir=" : ":", r->lowers[i]) == 0;
	if (fits && r->upper)
		fits = overlay_append(data, sizeof data, &len, ",upperdir=", r->upper) == 0 &&
		       overlay_append(data, sizeof data, &len, ",workdir=", r->work) == 0;
	if (fits && r->userxattr)
		fits = overlay_append(data, sizeof data, &len, ",userxattr", "") == 0;
	if (!fits)
		return mount_overlay_fsconfig(r, e);
	if (r->upper && r->volatile_upper) {
		size_t plain = len;

		if (overlay_append(data, sizeof data, &len, ",volatile", "") == 0 &&
		    mount("overlay", r->target, "overlay", 0, data) == 0)
			return 0;
		/* Before Linux 5.10 there is no `volatile`: the same mount without it. */
		data[plain] = '\0';
	}
	if (mount("overlay", r->target, "overlay", 0, data) < 0)
		return dl_fail_errno(e, "mount", "/", "mount `overlay` on `%s`", r->target);
	return 0;
}

static void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* A bind by type or by option (`none SRC DST rbind`, as OCI specs write it). */
bool dl_mount_is_bind(const struct dl_mount_spec *m)
{
	struct mount_opts o;

	if (strcmp(m->type, "bind") == 0)
		return true;
	return parse_mount_opts(m->opts, &o) == 0 && (o.flags & MS_BIND);
}

/* Rewrites dl_open_in_root_nofollow's ELOOP failure as the refusal of WHAT on DST. */
static int refuse_symlink(struct dl_error *e, const char *what, const char *dst)
{
	char why[DL_ERR_MSG_MAX];

	snprintf(why, sizeof why, "%s", e->msg);
	return dl_fail(e, ELOOP, DL_STEP_MOUNT_TARGET, dst, "%s: %s in the rootfs", what, why);
}

static int open_target(int rootfd, const struct dl_mount_spec *m, enum dl_create create, struct dl_error *e)
{
	char what[DL_ERR_MSG_MAX];
	int fd;

	if (!m->nofollow)
		return dl_open_in_root(rootfd, m->dst, create, "mount", e);
	fd = dl_open_in_root_nofollow(rootfd, m->dst, create, "mount", e);
	if (fd < 0 && e->err == ELOOP) {
		snprintf(what, sizeof what, "mount `%s` on `%s`", dl_mount_is_bind(m) ? m->src : m->type, m->dst);
		return refuse_symlink(e, what, m->dst);
	}
	return fd;
}

int dl_mount_in_root(int rootfd, const struct dl_mount_spec *m, struct dl_error *e)
{
	struct mount_opts o;
	const char *src = m->src_path ? m->src_path : m->src;
	enum dl_create create = DL_CREATE_DIR;
	_cleanup_close_ int fd = -1;
	char target[64];
	int bind;

	if (parse_mount_opts(m->opts, &o) < 0)
		return dl_fail_errno(e, "mount", m->dst, "mount options `%s`", m->opts);
	bind = dl_mount_is_bind(m);
	if (bind) {
		struct stat st;
		if (stat(src, &st) < 0)
			return dl_fail_errno(e, "mount", m->dst, "stat `%s`", m->src);
		if (!S_ISDIR(st.st_mode))
			create = DL_CREATE_FILE;
	}
	fd = open_target(rootfd, m, create, e);
	if (fd < 0)
		return -1;
	/* The resolved fd, not the path, is the mount point: the path could lead elsewhere. */
	fd_path(target, sizeof target, fd);

	if (bind) {
		unsigned long want = o.flags & (DL_SECURITY_FLAGS | DL_ATIME_FLAGS);

		if (mount(src, target, NULL, MS_BIND | (o.flags & MS_REC), NULL) < 0)
			return dl_fail_errno(e, "mount", m->dst, "mount `%s` on `%s`", m->src, m->dst);
		if (want || o.propagation) {
			/* The old fd is below the new mount; look the path up again to reach it. */
			close(fd);
			fd = open_target(rootfd, m, DL_CREATE_NONE, e);
			if (fd < 0)
				return -1;
			fd_path(target, sizeof target, fd);
		}
		if (want) {
			struct statvfs st;
			if (fstatvfs(fd, &st) < 0)
				return dl_fail_errno(e, "mount", m->dst, "fstatvfs `%s`", m->dst);
			/* Keep the flags the source mount had: a bind remount resets what it does not name. */
			if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | want | mount_flags_of(&st), NULL) < 0)
				return dl_fail_errno(e, "mount", m->dst, "mount `%s` remount", m->dst);
			if ((want & MS_RDONLY) && (o.flags & MS_REC) && readonly_recursive(fd, m->dst, e) < 0)
				return -1;
		}
	} else {
		if (mount(m->src, target, m->type, o.flags, o.data[0] ? o.data : NULL) < 0)
			return dl_fail_errno(e, "mount", m->dst, "mount `%s` on `%s` type `%s`", m->src, m->dst, m->type);
		if (o.propagation) {
			close(fd);
			fd = open_target(rootfd, m, DL_CREATE_NONE, e);
			if (fd < 0)
				return -1;
			fd_path(target, sizeof target, fd);
		}
	}
	if (o.propagation && mount(NULL, target, NULL, o.propagation, NULL) < 0)
		return dl_fail_errno(e, "mount", m->dst, "mount `%s` propagation", m->dst);
	return 0;
}

/* PATH's parent through PARENT (creating missing directories), as dl_open_parent_in_root. */
static int open_parent(struct dl_parent_cache *parent, int rootfd, const char *path, char *name, size_t size,
		       const char *step, struct dl_error *e)
{
	int dir;

	parent->create = DL_CREATE_DIR;
	dir = dl_open_parent_cached(parent, rootfd, path, name, size, step, e);
	if (dir >= 0 && name[0] == '\0')
		return dl_fail(e, EINVAL, step, path, "the root itself has no parent: `%s`", path);
	return dir;
}

int dl_mknod_in_root(struct dl_parent_cache *parent, int rootfd, const struct dl_mknod_spec *n, struct dl_error *e)
{
	char name[NAME_MAX + 1];
	int dir = open_parent(parent, rootfd, n->path, name, sizeof name, "mknod", e);

	if (dir < 0)
		return -1;
	if (mknodat(dir, name, n->type | (n->mode & 07777), makedev(n->major, n->minor)) < 0)
		return dl_fail_errno(e, "mknod", n->path, "mknodat `%s`", n->path);
	if (fchownat(dir, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return dl_fail_errno(e, "mknod", n->path, "fchownat `%s`", n->path);
	return 0;
}

int dl_symlink_in_root(struct dl_parent_cache *parent, int rootfd, const struct dl_symlink_spec *s,
		       struct dl_error *e)
{
	char name[NAME_MAX + 1];
	int dir = open_parent(parent, rootfd, s->path, name, sizeof name, "symlink", e);

	if (dir < 0)
		return -1;
	if (symlinkat(s->target, dir, name) < 0)
		return dl_fail_errno(e, "symlink", s->path, "symlinkat `%s`", s->path);
	return 0;
}

int dl_pivot_root(int rootfd, struct dl_error *e)
{
	if (fchdir(rootfd) < 0)
		return dl_fail_errno(e, "pivot_root", "/", "fchdir `/`");
	/* pivot_root(".", ".") stacks the old root on the new one; detaching "." then
	 * drops it without needing a directory for it inside the rootfs. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return dl_fail_errno(e, "pivot_root", "/", "pivot_root `.`");
	if (umount2(".", MNT_DETACH) < 0)
		return dl_fail_errno(e, "pivot_root", "/", "umount2 `.`");
	if (chdir("/") < 0)
		return dl_fail_errno(e, "pivot_root", "/", "chdir `/`");
	return 0;
}

/* After pivot_root: PATH from the container's root ROOTFD, no symlink allowed in it.
 * Returns 1 with *FD open, 0 when PATH is missing, -1 on failure. */
static int open_existing_nofollow(int root, const char *path, const char *what, int *fd, struct dl_error *e)
{
	char msg[DL_ERR_MSG_MAX];

	*fd = dl_open_in_root_nofollow(root, path, DL_CREATE_NONE, "mount", e);
	if (*fd >= 0)
		return 1;
	if (e->err == ENOENT || e->err == ENOTDIR)
		return 0;
	if (e->err == ELOOP) {
		snprintf(msg, sizeof msg, "%s `%s`", what, path);
		return refuse_symlink(e, msg, path);
	}
	return -1;
}

int dl_mask_path(int rootfd, const char *path, struct dl_error *e)
{
	_cleanup_close_ int fd = -1;
	char target[64];
	struct stat st;
	int found = open_existing_nofollow(rootfd, path, "mask", &fd, e);

	if (found <= 0)
		return found;
	if (fstat(fd, &st) < 0)
		return dl_fail_errno(e, "mount", path, "fstat `%s`", path);
	/* The resolved fd, not the path, is the mount point (the container's /proc is mounted by now). */
	fd_path(target, sizeof target, fd);
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", target, "tmpfs", MS_RDONLY, NULL) < 0)
			return dl_fail_errno(e, "mount", path, "mount `tmpfs` on `%s`", path);
	} else if (mount("/dev/null", target, NULL, MS_BIND, NULL) < 0) {
		return dl_fail_errno(e, "mount", path, "mount `/dev/null` on `%s`", path);
	}
	return 0;
}

static int remount_readonly(const char *path, int fd, const char *target, struct dl_error *e)
{
	struct statvfs st;

	if ((fd >= 0 ? fstatvfs(fd, &st) : statvfs(target, &st)) < 0)
		return dl_fail_errno(e, "mount", path, "statvfs `%s`", path);
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of(&st), NULL) < 0)
		return dl_fail_errno(e, "mount", path, "mount `%s` remount ro", path);
	return 0;
}

/* Whether FD is the root of a mount (STATX_ATTR_MOUNT_ROOT, Linux 5.8; before, never). */
static bool is_mount_root(int fd)
{
	struct statx st;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &st) < 0)
		return false;
	return (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int dl_readonly_path(int rootfd, const char *path, struct dl_error *e)
{
	_cleanup_close_ int fd = -1;
	char target[64];
	int found = open_existing_nofollow(rootfd, path, "readonly", &fd, e);

	if (found <= 0)
		return found;
	fd_path(target, sizeof target, fd);
	/* A mount's own root (the tmpfs holding the v1 hierarchies) is made read-only
	 * where it is: a recursive bind on itself would copy every mount below it,
	 * each one more to make and, at the container's exit, to tear down. */
	if (is_mount_root(fd))
		return remount_readonly(path, fd, target, e);
	if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return dl_fail_errno(e, "mount", path, "mount `%s` on itself", path);
	/* The old fd is below the new mount; look the path up again to reach it. */
	close(dl_steal_fd(&fd));
	found = open_existing_nofollow(rootfd, path, "readonly", &fd, e);
	if (found <= 0)
		return found < 0 ? -1 : dl_fail(e, ENOENT, "mount", path, "openat2 `%s`", path);
	fd_path(target, sizeof target, fd);
	return remount_readonly(path, fd, target, e);
}

int dl_readonly_root(struct dl_error *e)
{
	return remount_readonly("/", -1, "/", e);
}
