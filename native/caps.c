#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

static const char *const cap_names[] = {
	"CAP_CHOWN",	       "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID",	       "CAP_KILL",	     "CAP_SETGID",	    "CAP_SETUID",
	"CAP_SETPCAP",	       "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",       "CAP_NET_RAW",	     "CAP_IPC_LOCK",	    "CAP_IPC_OWNER",
	"CAP_SYS_MODULE",      "CAP_SYS_RAWIO",	     "CAP_SYS_CHROOT",	    "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",       "CAP_SYS_ADMIN",	     "CAP_SYS_BOOT",	    "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",    "CAP_SYS_TIME",	     "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
	"CAP_LEASE",	       "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",	     "CAP_SYSLOG",	    "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",	    "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

const char *dl_cap_name(int cap, char *buf, size_t size)
{
	if (cap >= 0 && (size_t)cap < sizeof cap_names / sizeof cap_names[0])
		return cap_names[cap];
	snprintf(buf, size, "CAP_%d", cap);
	return buf;
}

int dl_caps_drop_bounding(uint64_t keep, struct dl_error *e)
{
	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability, so
	 * capabilities newer than this file are dropped too. */
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		char name[16];

		if (r < 0)
			break;
		if (r == 0 || (keep & (UINT64_C(1) << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return dl_fail_errno(e, "prctl", "", "prctl `PR_CAPBSET_DROP %s`",
					     dl_cap_name(cap, name, sizeof name));
	}
	return 0;
}

int dl_caps_set(uint64_t caps, struct dl_error *e)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	uint64_t permitted, missing;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return dl_fail_errno(e, "capset", "", "capget `self`");
	permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
	missing = caps & ~permitted;
	if (missing) {
		char name[16];
		int cap = __builtin_ctzll(missing);
		/* capset would say EPERM; name the capability the helper lacks. */
		return dl_fail(e, EPERM, "capset", "", "capset `%s`: not in the helper's permitted set",
			       dl_cap_name(cap, name, sizeof name));
	}
	for (int i = 0; i < 2; i++) {
		data[i].permitted = (uint32_t)(caps >> (32 * i));
		data[i].effective = data[i].permitted;
		/* Ambient capabilities must also be inheritable, so this clears them too. */
		data[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return dl_fail_errno(e, "capset", "", "capset `%016llx`", (unsigned long long)caps);
	return 0;
}
