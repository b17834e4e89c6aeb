/* rtnetlink requests, one acknowledged message at a time. A container's link
 * costs one round trip in the host namespace and, in its own, one for the up
 * flag and one per address and route: the peer is created inside the
 * namespace already named, with its MAC and MTU, so nothing is renamed or
 * moved afterwards. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netlink.h"
#include "util.h"

#define MSG_MAX 1024

struct msg {
	union {
		struct nlmsghdr h;
		char buf[MSG_MAX];
	};
};

static void msg_init(struct msg *m, uint16_t type, uint16_t flags, const void *body, size_t len)
{
	memset(m, 0, sizeof *m);
	m->h.nlmsg_len = NLMSG_LENGTH(len);
	m->h.nlmsg_type = type;
	m->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	memcpy(NLMSG_DATA(&m->h), body, len);
}

/* Requests are built from our own bounded arguments; running out of room is a bug, not input. */
static struct rtattr *attr_put(struct msg *m, uint16_t type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(m->buf + NLMSG_ALIGN(m->h.nlmsg_len));

	if (NLMSG_ALIGN(m->h.nlmsg_len) + RTA_SPACE(len) > MSG_MAX)
		abort();
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len > 0)
		memcpy(RTA_DATA(a), data, len);
	m->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(m->h.nlmsg_len) + RTA_ALIGN(a->rta_len));
	return a;
}

static struct rtattr *nest_begin(struct msg *m, uint16_t type)
{
	return attr_put(m, type, NULL, 0);
}

static void nest_end(struct msg *m, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)(m->buf + m->h.nlmsg_len - (char *)nest);
}

static void attr_str(struct msg *m, uint16_t type, const char *s)
{
	attr_put(m, type, s, strlen(s) + 1);
}

static void attr_u32(struct msg *m, uint16_t type, uint32_t v)
{
	attr_put(m, type, &v, sizeof v);
}

static int nl_open(struct dl_error *e)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return dl_fail_errno(e, "netlink", "", "socket `NETLINK_ROUTE`");
	return fd;
}

/* Sends M and waits for its acknowledgement; returns the kernel's errno as a
 * positive number (0: done), or -1 with E filled when the socket itself fails. */
static int nl_talk(int fd, struct msg *m, struct dl_error *e)
{
	static uint32_t seq;
	char reply[4096];
	ssize_t n;

	m->h.nlmsg_seq = ++seq;
	if (send(fd, m->buf, m->h.nlmsg_len, 0) < 0)
		return dl_fail_errno(e, "netlink", "", "send `NETLINK_ROUTE`");
	for (;;) {
		struct nlmsghdr *h;
		n = recv(fd, reply, sizeof reply, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return dl_fail_errno(e, "netlink", "", "recv `NETLINK_ROUTE`");
		}
		for (h = (struct nlmsghdr *)reply; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != m->h.nlmsg_seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
}

int dl_net_parse_addr(const char *s, struct dl_ipaddr *out)
{
	char buf[64];
	char *slash;
	unsigned long prefix;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	out->prefix = -1;
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -1;
	if (slash != NULL) {
		if (dl_parse_ulong(slash + 1, 10, out->family == AF_INET ? 32 : 128, &prefix) < 0)
			return -1;
		out->prefix = (int)prefix;
	}
	return 0;
}

int dl_net_parse_mac(const char *s, unsigned char mac[6])
{
	unsigned int b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)b[i];
	return 0;
}

static const char *ifname_arg(const char *op, const char *opt, const char *s)
{
	if (s[0] == '\0' || strlen(s) >= IFNAMSIZ || strchr(s, '/') || strchr(s, ' '))
		dl_usage(op, "%s: bad interface name `%s`", opt, s);
	return s;
}

int dl_veth_parse(struct dl_veth *v, int argc, char **argv, int i, const char *op)
{
	const char *a = argv[i];
	struct dl_ipaddr ip;

	if (strcmp(a, "--veth") == 0) {
		unsigned long mtu;
		if (i + 5 >= argc)
			dl_usage(op, "--veth needs 5 arguments");
		v->host = ifname_arg(op, a, argv[i + 1]);
		v->bridge = ifname_arg(op, a, argv[i + 2]);
		v->peer = ifname_arg(op, a, argv[i + 3]);
		v->has_mac = strcmp(argv[i + 4], "-") != 0;
		if (v->has_mac && dl_net_parse_mac(argv[i + 4], v->mac) < 0)
			dl_usage(op, "--veth: bad MAC address `%s`", argv[i + 4]);
		if (dl_parse_ulong(argv[i + 5], 10, 65535, &mtu) < 0)
			dl_usage(op, "--veth: bad MTU `%s`", argv[i + 5]);
		v->mtu = (unsigned int)mtu;
		return 6;
	}
	if (strcmp(a, "--veth-addr") == 0 || strcmp(a, "--veth-gateway") == 0) {
		bool gw = a[7] == 'g';
		if (i + 1 >= argc)
			dl_usage(op, "%s needs 1 argument", a);
		if (dl_net_parse_addr(argv[i + 1], &ip) < 0 || (gw ? ip.prefix >= 0 : ip.prefix < 0))
			dl_usage(op, "%s: bad address `%s`", a, argv[i + 1]);
		if (gw) {
			for (size_t k = 0; k < v->n_gateways; k++)
				if (v->gateways[k].family == ip.family)
					dl_usage(op, "%s: one gateway per address family", a);
			v->gateways[v->n_gateways++] = ip;
		} else {
			if (v->n_addrs == DL_NET_MAX_ADDRS)
				dl_usage(op, "%s: at most %d addresses", a, DL_NET_MAX_ADDRS);
			v->addrs[v->n_addrs++] = ip;
		}
		return 2;
	}
	return 0;
}

static int link_index(int fd, const char *name, int *index, struct dl_error *e)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		return dl_fail_errno(e, "netlink", name, "ioctl `SIOCGIFINDEX %s`", name);
	*index = ifr.ifr_ifindex;
	return 0;
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int add_addr(int fd, int index, const char *ifname, const struct dl_ipaddr *a, bool exist_ok, struct dl_error *e)
{
	struct ifaddrmsg ifa = {
		.ifa_family = (unsigned char)a->family,
		.ifa_prefixlen = (unsigned char)(a->prefix >= 0 ? a->prefix : (int)addr_len(a->family) * 8),
		/* No duplicate address detection: the address is ours by allocation, and DAD
		 * would keep an IPv6 address unusable for a second or more after the start. */
		.ifa_flags = a->family == AF_INET6 ? IFA_F_NODAD : 0,
		.ifa_index = (unsigned int)index,
	};
	char text[INET6_ADDRSTRLEN];
	struct msg m;
	int r;

	msg_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	attr_put(&m, IFA_LOCAL, a->addr, addr_len(a->family));
	attr_put(&m, IFA_ADDRESS, a->addr, addr_len(a->family));
	r = nl_talk(fd, &m, e);
	if (r < 0)
		return -1;
	if (r == EEXIST && exist_ok)
		return 0;
	if (r != 0) {
		inet_ntop(a->family, a->addr, text, sizeof text);
		return dl_fail(e, r, "netlink", ifname, "RTM_NEWADDR `%s/%d dev %s`", text, ifa.ifa_prefixlen, ifname);
	}
	return 0;
}

static int add_default_route(int fd, int index, const char *ifname, const struct dl_ipaddr *gw, struct dl_error *e)
{
	struct rtmsg rt = {
		.rtm_family = (unsigned char)gw->family,
		.rtm_table = RT_TABLE_MAIN,
		.rtm_protocol = RTPROT_BOOT,
		.rtm_scope = RT_SCOPE_UNIVERSE,
		.rtm_type = RTN_UNICAST,
	};
	char text[INET6_ADDRSTRLEN];
	struct msg m;
	int r;

	msg_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
	attr_put(&m, RTA_GATEWAY, gw->addr, addr_len(gw->family));
	attr_u32(&m, RTA_OIF, (uint32_t)index);
	r = nl_talk(fd, &m, e);
	if (r < 0)
		return -1;
	if (r != 0) {
		inet_ntop(gw->family, gw->addr, text, sizeof text);
		return dl_fail(e, r, "netlink", ifname, "RTM_NEWROUTE `default via %s dev %s`", text, ifname);
	}
	return 0;
}

/* RTM_NEWLINK setting only the up flag (and the MTU, when given). */
static int link_up(int fd, int index, const char *name, unsigned int mtu, struct dl_error *e)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
	struct msg m;
	int r;

	msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	if (mtu > 0)
		attr_u32(&m, IFLA_MTU, mtu);
	r = nl_talk(fd, &m, e);
	if (r < 0)
		return -1;
	if (r != 0)
		return dl_fail(e, r, "netlink", name, "RTM_NEWLINK `%s up`", name);
	return 0;
}

int dl_net_bridge(const char *name, unsigned int mtu, const struct dl_ipaddr *addrs, size_t n, struct dl_error *e)
{
	_cleanup_close_ int fd = -1, ifd = -1;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct rtattr *info;
	struct msg m;
	int r, index;

	fd = nl_open(e);
	if (fd < 0)
		return -1;
	ifd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ifd < 0)
		return dl_fail_errno(e, "netlink", name, "socket `AF_INET`");
	msg_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	attr_str(&m, IFLA_IFNAME, name);
	if (mtu > 0)
		attr_u32(&m, IFLA_MTU, mtu);
	info = nest_begin(&m, IFLA_LINKINFO);
	attr_str(&m, IFLA_INFO_KIND, "bridge");
	nest_end(&m, info);
	r = nl_talk(fd, &m, e);
	if (r < 0)
		return -1;
	if (r != 0 && r != EEXIST)
		return dl_fail(e, r, "netlink", name, "RTM_NEWLINK `%s type bridge`", name);
	if (link_index(ifd, name, &index, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (add_addr(fd, index, name, &addrs[i], true, e) < 0)
			return -1;
	return link_up(fd, index, name, 0, e);
}

int dl_net_delete(const char *name, struct dl_error *e)
{
	_cleanup_close_ int fd = -1;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct msg m;
	int r;

	fd = nl_open(e);
	if (fd < 0)
		return -1;
	msg_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
	attr_str(&m, IFLA_IFNAME, name);
	r = nl_talk(fd, &m, e);
	if (r < 0)
		return -1;
	if (r != 0 && r != ENODEV)
		return dl_fail(e, r, "netlink", name, "RTM_DELLINK `%s`", name);
	return 0;
}

/* The target namespace's side: a netlink socket and the peer's index, made
 * while this (single-threaded) process is in that namespace for a moment. */
static int enter_target(int netns_fd, const char *peer, int *nl, int *index, struct dl_error *e)
{
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int ifd = -1;
	int r = 0;

	if (self < 0)
		return dl_fail_errno(e, "setns", "/proc/self/ns/net", "open `/proc/self/ns/net`");
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return dl_fail_errno(e, "setns", "", "setns `net`");
	*nl = nl_open(e);
	ifd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (*nl < 0)
		r = -1;
	else if (ifd < 0)
		r = dl_fail_errno(e, "netlink", peer, "socket `AF_INET`");
	else
		r = link_index(ifd, peer, index, e);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Staying in the container's namespace would make every later step wrong. */
		dl_fail_errno(e, "setns", "/proc/self/ns/net", "setns `net` back");
		return -1;
	}
	return r;
}

int dl_net_veth(const struct dl_veth *v, int netns_fd, struct dl_error *e)
{
	_cleanup_close_ int fd = -1, ifd = -1, nsfd = -1;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
	/* Not up at creation: a veth end cannot open before its pair is linked (ENOTCONN). */
	struct ifinfomsg peer = {.ifi_family = AF_UNSPEC};
	struct rtattr *info, *data, *p;
	struct msg m;
	int r, master, index = 0;
	struct dl_error ignored;

	fd = nl_open(e);
	if (fd < 0)
		return -1;
	ifd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ifd < 0)
		return dl_fail_errno(e, "netlink", v->host, "socket `AF_INET`");
	if (link_index(ifd, v->bridge, &master, e) < 0)
		return -1;

	msg_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	attr_str(&m, IFLA_IFNAME, v->host);
	attr_u32(&m, IFLA_MASTER, (uint32_t)master);
	if (v->mtu > 0)
		attr_u32(&m, IFLA_MTU, v->mtu);
	info = nest_begin(&m, IFLA_LINKINFO);
	attr_str(&m, IFLA_INFO_KIND, "veth");
	data = nest_begin(&m, IFLA_INFO_DATA);
	p = nest_begin(&m, VETH_INFO_PEER);
	/* The peer's ifinfomsg sits at the start of the nest, its attributes after it. */
	memcpy(RTA_DATA(p), &peer, sizeof peer);
	m.h.nlmsg_len += NLMSG_ALIGN(sizeof peer);
	attr_str(&m, IFLA_IFNAME, v->peer);
	attr_u32(&m, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	if (v->has_mac)
		attr_put(&m, IFLA_ADDRESS, v->mac, 6);
	if (v->mtu > 0)
		attr_u32(&m, IFLA_MTU, v->mtu);
	nest_end(&m, p);
	nest_end(&m, data);
	nest_end(&m, info);
	r = nl_talk(fd, &m, e);
	if (r < 0)
		return -1;
	if (r != 0)
		return dl_fail(e, r, "netlink", v->host, "RTM_NEWLINK `%s type veth peer %s master %s`", v->host, v->peer,
			       v->bridge);

	if (enter_target(netns_fd, v->peer, &nsfd, &index, e) < 0)
		goto undo;
	if (link_up(nsfd, index, v->peer, 0, e) < 0)
		goto undo;
	for (size_t i = 0; i < v->n_addrs; i++)
		if (add_addr(nsfd, index, v->peer, &v->addrs[i], false, e) < 0)
			goto undo;
	for (size_t i = 0; i < v->n_gateways; i++)
		if (add_default_route(nsfd, index, v->peer, &v->gateways[i], e) < 0)
			goto undo;
	return 0;
undo:
	dl_net_delete(v->host, &ignored);
	return -1;
}
