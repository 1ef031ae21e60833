// SPDX-License-Identifier: GPL-2.0
/*
 * The unix socket: listen, accept, and vhost-user messages in and out
 * (header, payload, file descriptors as SCM_RIGHTS). Every size and fd
 * count is checked here before msg.c looks at a payload.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost_blkd.h"

int vud_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		vud_log("socket path too long");
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	/* a socket left by an earlier run is replaced, nothing else is */
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			vud_log("exists and is not a socket");
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0) {
		close(fd);
		goto fail;
	}
	return fd;
fail:
	fd = -errno;
	vud_log("cannot listen: %s", strerror(-fd));
	return fd;
}

/*
 * The connection's fd is moved above the fds the daemon opens later: when
 * the daemon is killed, its fds are closed in ascending order, so
 * /dev/vhost-blk is released (every request in flight completed into the
 * used ring) before the front-end sees the socket close and reads the
 * ring indexes it restarts from.
 */
#define VUD_SOCK_FD_MIN	200

int vud_accept(int lfd)
{
	int fd, high;

	do {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == ECONNABORTED);
	if (fd < 0)
		return -errno;
	high = fcntl(fd, F_DUPFD_CLOEXEC, VUD_SOCK_FD_MIN);
	if (high < 0)
		return fd;	/* still correct, only the kill order differs */
	close(fd);
	return high;
}

void vud_drop_fds(struct vud_conn *c)
{
	while (c->nfds)
		close(c->fds[--c->nfds]);
}

/* Take the first fd of the message; the caller owns it. -1 if none. */
int vud_take_fd(struct vud_conn *c)
{
	int fd;

	if (!c->nfds)
		return -1;
	fd = c->fds[0];
	memmove(c->fds, c->fds + 1, --c->nfds * sizeof(int));
	return fd;
}

/* Keep the fds of one control message; refuse more than VU_MAX_FDS. */
static int collect_fds(struct vud_conn *c, struct msghdr *mh)
{
	struct cmsghdr *cm;
	unsigned int i, n;
	int *p, rc = 0;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)CMSG_DATA(cm);
		for (i = 0; i < n; i++) {
			if (c->nfds < VU_MAX_FDS)
				c->fds[c->nfds++] = p[i];
			else {
				close(p[i]);
				rc = -E2BIG;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		rc = -E2BIG;
	return rc;
}

/* Exactly len bytes (and any fds sent with them); 0 at a clean EOF. */
static ssize_t recv_full(struct vud_conn *c, void *buf, size_t len)
{
	char ctl[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	uint8_t *p = buf;
	size_t got = 0;
	ssize_t n;
	int rc;

	while (got < len) {
		struct iovec iov = { p + got, len - got };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl, .msg_controllen = sizeof(ctl),
		};

		n = recvmsg(c->sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		rc = collect_fds(c, &mh);
		if (rc)
			return rc;
		if (n == 0)
			return got ? -ECONNRESET : 0;
		got += n;
	}
	return got;
}

/* One message: 1 done, 0 the front-end closed, <0 error (logged). */
int vud_recv(struct vud_conn *c, struct vud_msg *m)
{
	struct vu_msg w;
	ssize_t n;

	vud_drop_fds(c);
	memset(m, 0, sizeof(*m));
	n = recv_full(c, &w, VU_HDR_SIZE);
	if (n == 0)
		return 0;
	if (n < 0)
		goto fail;
	m->request = w.request;
	m->flags = w.flags;
	m->size = w.size;
	if ((m->flags & VU_VERSION_MASK) != VU_VERSION ||
	    (m->flags & VU_FLAG_REPLY)) {
		vud_log("%s: bad flags 0x%x", vu_req_name(m->request),
			m->flags);
		return -EPROTO;
	}
	if (m->size > sizeof(m->p)) {
		vud_log("%s: payload of %u bytes, at most %zu allowed",
			vu_req_name(m->request), m->size, sizeof(m->p));
		return -EMSGSIZE;
	}
	if (!m->size)
		return 1;
	n = recv_full(c, &w.p, m->size);
	if (n == 0)
		n = -ECONNRESET;
	if (n > 0) {
		memcpy(&m->p, &w.p, m->size);
		return 1;
	}
fail:
	vud_log("receive: %s", n == -E2BIG ? "too many file descriptors" :
		strerror((int)-n));
	return (int)n;
}

int vud_send(struct vud_conn *c, const struct vud_msg *m)
{
	size_t len = VU_HDR_SIZE + m->size;
	struct vu_msg w;
	ssize_t n;

	w.request = m->request;
	w.flags = m->flags;
	w.size = m->size;
	memcpy(&w.p, &m->p, m->size);
	do {
		n = send(c->sock, &w, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	vud_log("%s reply: %s", vu_req_name(m->request),
		n < 0 ? strerror(errno) : "short send");
	return n < 0 ? -errno : -EIO;
}

/* kick/call/err must be eventfds: the kernel would refuse anything else. */
bool vud_is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[eventfd]");
}
