/* What `features` prints: the JSON of features() in src/oci-runtime/spec-default.ts,
 * byte for byte. test/unit/oci-runtime-native.test.ts checks the two agree and,
 * when they do not, shows the macro to put here. */
#ifndef DLRT_FEATURES_H
#define DLRT_FEATURES_H

#define DLRT_FEATURES \
	"{\n" \
	"    \"ociVersionMin\": \"1.0.0\",\n" \
	"    \"ociVersionMax\": \"1.0.2\",\n" \
	"    \"hooks\": [\n" \
	"        \"prestart\",\n" \
	"        \"createRuntime\",\n" \
	"        \"createContainer\",\n" \
	"        \"startContainer\",\n" \
	"        \"poststart\",\n" \
	"        \"poststop\"\n" \
	"    ],\n" \
	"    \"mountOptions\": [\n" \
	"        \"async\",\n" \
	"        \"atime\",\n" \
	"        \"bind\",\n" \
	"        \"defaults\",\n" \
	"        \"dev\",\n" \
	"        \"diratime\",\n" \
	"        \"dirsync\",\n" \
	"        \"exec\",\n" \
	"        \"noatime\",\n" \
	"        \"nodev\",\n" \
	"        \"nodiratime\",\n" \
	"        \"noexec\",\n" \
	"        \"norelatime\",\n" \
	"        \"nostrictatime\",\n" \
	"        \"nosuid\",\n" \
	"        \"private\",\n" \
	"        \"rbind\",\n" \
	"        \"relatime\",\n" \
	"        \"remount\",\n" \
	"        \"ro\",\n" \
	"        \"rprivate\",\n" \
	"        \"rshared\",\n" \
	"        \"rslave\",\n" \
	"        \"runbindable\",\n" \
	"        \"rw\",\n" \
	"        \"shared\",\n" \
	"        \"slave\",\n" \
	"        \"strictatime\",\n" \
	"        \"suid\",\n" \
	"        \"sync\",\n" \
	"        \"unbindable\"\n" \
	"    ],\n" \
	"    \"linux\": {\n" \
	"        \"namespaces\": [\n" \
	"            \"cgroup\",\n" \
	"            \"ipc\",\n" \
	"            \"mount\",\n" \
	"            \"network\",\n" \
	"            \"pid\",\n" \
	"            \"user\",\n" \
	"            \"uts\"\n" \
	"        ],\n" \
	"        \"capabilities\": [\n" \
	"            \"CAP_CHOWN\",\n" \
	"            \"CAP_DAC_OVERRIDE\",\n" \
	"            \"CAP_DAC_READ_SEARCH\",\n" \
	"            \"CAP_FOWNER\",\n" \
	"            \"CAP_FSETID\",\n" \
	"            \"CAP_KILL\",\n" \
	"            \"CAP_SETGID\",\n" \
	"            \"CAP_SETUID\",\n" \
	"            \"CAP_SETPCAP\",\n" \
	"            \"CAP_LINUX_IMMUTABLE\",\n" \
	"            \"CAP_NET_BIND_SERVICE\",\n" \
	"            \"CAP_NET_BROADCAST\",\n" \
	"            \"CAP_NET_ADMIN\",\n" \
	"            \"CAP_NET_RAW\",\n" \
	"            \"CAP_IPC_LOCK\",\n" \
	"            \"CAP_IPC_OWNER\",\n" \
	"            \"CAP_SYS_MODULE\",\n" \
	"            \"CAP_SYS_RAWIO\",\n" \
	"            \"CAP_SYS_CHROOT\",\n" \
	"            \"CAP_SYS_PTRACE\",\n" \
	"            \"CAP_SYS_PACCT\",\n" \
	"            \"CAP_SYS_ADMIN\",\n" \
	"            \"CAP_SYS_BOOT\",\n" \
	"            \"CAP_SYS_NICE\",\n" \
	"            \"CAP_SYS_RESOURCE\",\n" \
	"            \"CAP_SYS_TIME\",\n" \
	"            \"CAP_SYS_TTY_CONFIG\",\n" \
	"            \"CAP_MKNOD\",\n" \
	"            \"CAP_LEASE\",\n" \
	"            \"CAP_AUDIT_WRITE\",\n" \
	"            \"CAP_AUDIT_CONTROL\",\n" \
	"            \"CAP_SETFCAP\",\n" \
	"            \"CAP_MAC_OVERRIDE\",\n" \
	"            \"CAP_MAC_ADMIN\",\n" \
	"            \"CAP_SYSLOG\",\n" \
	"            \"CAP_WAKE_ALARM\",\n" \
	"            \"CAP_BLOCK_SUSPEND\",\n" \
	"            \"CAP_AUDIT_READ\",\n" \
	"            \"CAP_PERFMON\",\n" \
	"            \"CAP_BPF\",\n" \
	"            \"CAP_CHECKPOINT_RESTORE\"\n" \
	"        ],\n" \
	"        \"cgroup\": {\n" \
	"            \"v1\": true,\n" \
	"            \"v2\": true,\n" \
	"            \"systemd\": false,\n" \
	"            \"systemdUser\": false\n" \
	"        },\n" \
	"        \"seccomp\": {\n" \
	"            \"enabled\": true,\n" \
	"            \"actions\": [\n" \
	"                \"SCMP_ACT_ALLOW\",\n" \
	"                \"SCMP_ACT_ERRNO\",\n" \
	"                \"SCMP_ACT_KILL\",\n" \
	"                \"SCMP_ACT_KILL_PROCESS\",\n" \
	"                \"SCMP_ACT_KILL_THREAD\",\n" \
	"                \"SCMP_ACT_LOG\",\n" \
	"                \"SCMP_ACT_TRACE\",\n" \
	"                \"SCMP_ACT_TRAP\"\n" \
	"            ],\n" \
	"            \"operators\": [\n" \
	"                \"SCMP_CMP_EQ\",\n" \
	"                \"SCMP_CMP_GE\",\n" \
	"                \"SCMP_CMP_GT\",\n" \
	"                \"SCMP_CMP_LE\",\n" \
	"                \"SCMP_CMP_LT\",\n" \
	"                \"SCMP_CMP_MASKED_EQ\",\n" \
	"                \"SCMP_CMP_NE\"\n" \
	"            ],\n" \
	"            \"archs\": [\n" \
	"                \"SCMP_ARCH_X86_64\",\n" \
	"                \"SCMP_ARCH_AARCH64\"\n" \
	"            ]\n" \
	"        },\n" \
	"        \"apparmor\": {\n" \
	"            \"enabled\": false\n" \
	"        },\n" \
	"        \"selinux\": {\n" \
	"            \"enabled\": false\n" \
	"        }\n" \
	"    }\n" \
	"}\n"

#endif
