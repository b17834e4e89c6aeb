/* dockless-helper net: link work over rtnetlink for networks and for links
 * added to a namespace that already exists (a pod's, held by `pause`, or a
 * running container's). A container started with its link comes from `run`
 * itself (--veth), which saves this op's spawn. With --in-userns/--in-netns it
 * works inside another network namespace: a rootless user's, which holds the
 * bridges of that user's networks. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "error.h"
#include "netlink.h"
#include "status.h"
#include "util.h"

static int enter(const char *userns, const char *netns, struct dl_error *e)
{
	_cleanup_close_ int user = -1, net = -1;

	if (userns != NULL && (user = open(userns, O_RDONLY | O_CLOEXEC)) < 0)
		return dl_fail_errno(e, "setns", userns, "open `%s`", userns);
	net = open(netns, O_RDONLY | O_CLOEXEC);
	if (net < 0)
		return dl_fail_errno(e, "setns", netns, "open `%s`", netns);
	/* The user namespace first: it owns the network namespace, and gives the capabilities over it. */
	if (user >= 0 && setns(user, CLONE_NEWUSER) < 0)
		return dl_fail_errno(e, "setns", userns, "setns `%s`", userns);
	if (setns(net, CLONE_NEWNET) < 0)
		return dl_fail_errno(e, "setns", netns, "setns `%s`", netns);
	return 0;
}

/* /proc/sys/net is the opener's network namespace's, so this is the one entered. */
static int forwarding(struct dl_error *e)
{
	static const char *const paths[] = {"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"};

	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		_cleanup_close_ int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && i > 0)
			continue;
		if (fd < 0 || dl_write_all(fd, "1\n", 2) < 0)
			return dl_fail_errno(e, "sysctl", paths[i], "write `%s`", paths[i]);
	}
	return 0;
}

int cmd_net(int argc, char **argv)
{
	struct dl_veth v = {0};
	struct dl_ipaddr addrs[DL_NET_MAX_ADDRS];
	size_t n_addrs = 0;
	const char *action, *name = NULL, *netns = NULL, *in_userns = NULL, *in_netns = NULL;
	unsigned long mtu = 0, status_fd = 3;
	struct dl_error e;
	int r = 0, taken;

	if (argc < 2)
		dl_usage("net", "usage: net bridge|delete|veth|forwarding [OPTIONS…]");
	action = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--status-fd") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, INT_MAX, &status_fd) < 0)
				dl_usage("net", "--status-fd needs a number");
		} else if (strcmp(a, "--name") == 0 && i + 1 < argc) {
			name = argv[++i];
		} else if (strcmp(a, "--addr") == 0 && i + 1 < argc) {
			if (n_addrs == DL_NET_MAX_ADDRS || dl_net_parse_addr(argv[++i], &addrs[n_addrs]) < 0 ||
			    addrs[n_addrs].prefix < 0)
				dl_usage("net", "--addr: bad address `%s`", argv[i]);
			n_addrs++;
		} else if (strcmp(a, "--mtu") == 0 && i + 1 < argc) {
			if (dl_parse_ulong(argv[++i], 10, 65535, &mtu) < 0)
				dl_usage("net", "--mtu: bad MTU `%s`", argv[i]);
		} else if (strcmp(a, "--netns") == 0 && i + 1 < argc) {
			netns = argv[++i];
		} else if (strcmp(a, "--in-userns") == 0 && i + 1 < argc) {
			in_userns = argv[++i];
		} else if (strcmp(a, "--in-netns") == 0 && i + 1 < argc) {
			in_netns = argv[++i];
		} else if ((taken = dl_veth_parse(&v, argc, argv, i, "net")) > 0) {
			i += taken - 1;
		} else {
			dl_usage("net", "unknown option `%s`", a);
		}
	}
	if (strcmp(action, "bridge") == 0 || strcmp(action, "delete") == 0) {
		if (name == NULL || name[0] == '\0' || strlen(name) > 15)
			dl_usage("net", "%s needs --name (at most 15 bytes)", action);
	} else if (strcmp(action, "veth") == 0) {
		if (v.host == NULL || netns == NULL)
			dl_usage("net", "veth needs --veth and --netns");
	} else if (strcmp(action, "forwarding") != 0) {
		dl_usage("net", "unknown action `%s`", action);
	}
	if (in_userns != NULL && in_netns == NULL)
		dl_usage("net", "--in-userns needs --in-netns");
	dl_status_init((int)status_fd);

	/* The target opened first: once inside another user namespace, the caller's
	 * own processes' /proc files may be out of reach. */
	_cleanup_close_ int fd = netns != NULL ? open(netns, O_RDONLY | O_CLOEXEC) : -1;
	if (netns != NULL && fd < 0)
		r = dl_fail_errno(&e, "setns", netns, "open `%s`", netns);
	else if (in_netns != NULL)
		r = enter(in_userns, in_netns, &e);
	if (r == 0) {
		if (action[0] == 'b')
			r = dl_net_bridge(name, (unsigned int)mtu, addrs, n_addrs, &e);
		else if (action[0] == 'd')
			r = dl_net_delete(name, &e);
		else if (action[0] == 'f')
			r = forwarding(&e);
		else
			r = dl_net_veth(&v, fd, &e);
	}
	if (r < 0) {
		dl_status_error(&e);
		return DL_EXIT_FAILED;
	}
	dl_status_simple("done");
	return DL_EXIT_OK;
}
