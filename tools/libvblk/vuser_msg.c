// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-user messages over the unix socket: header + payload, file
 * descriptors as SCM_RIGHTS ancillary data, replies checked for kind and
 * size before anything in them is used.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vuser.h"

const char *vu_req_name(uint32_t req)
{
	switch (req) {
	case VU_GET_FEATURES: return "GET_FEATURES";
	case VU_SET_FEATURES: return "SET_FEATURES";
	case VU_SET_OWNER: return "SET_OWNER";
	case VU_RESET_OWNER: return "RESET_OWNER";
	case VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
	case VU_SET_LOG_BASE: return "SET_LOG_BASE";
	case VU_SET_LOG_FD: return "SET_LOG_FD";
	case VU_SET_VRING_NUM: return "SET_VRING_NUM";
	case VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
	case VU_SET_VRING_BASE: return "SET_VRING_BASE";
	case VU_GET_VRING_BASE: return "GET_VRING_BASE";
	case VU_SET_VRING_KICK: return "SET_VRING_KICK";
	case VU_SET_VRING_CALL: return "SET_VRING_CALL";
	case VU_SET_VRING_ERR: return "SET_VRING_ERR";
	case VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
	case VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
	case VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
	case VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
	case VU_GET_CONFIG: return "GET_CONFIG";
	case VU_SET_CONFIG: return "SET_CONFIG";
	case VU_RESET_DEVICE: return "RESET_DEVICE";
	default: return "?";
	}
}

static int send_msg(struct vblk_dev *dev, struct vu_msg *m, const int *fds,
		    unsigned int nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	struct iovec iov = { m, VU_HDR_SIZE + m->size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (nfds) {
		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(dev->fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return vblk_fail(dev, -errno, "vhost-user %s: %s",
				 vu_req_name(m->request), strerror(errno));
	if ((size_t)n != iov.iov_len)
		return vblk_fail(dev, -EIO, "vhost-user %s: short send",
				 vu_req_name(m->request));
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= n;
	}
	return 0;
}

static int recv_reply(struct vblk_dev *dev, uint32_t req, struct vu_msg *r)
{
	int rc;

	rc = recv_all(dev->fd, r, VU_HDR_SIZE);
	if (rc)
		return vblk_fail(dev, rc, "vhost-user %s reply: %s",
				 vu_req_name(req), strerror(-rc));
	if (r->request != req || !(r->flags & VU_FLAG_REPLY) ||
	    r->size > sizeof(r->p))
		return vblk_fail(dev, -EPROTO,
				 "vhost-user %s: bad reply (req %u size %u)",
				 vu_req_name(req), r->request, r->size);
	rc = recv_all(dev->fd, &r->p, r->size);
	if (rc)
		return vblk_fail(dev, rc, "vhost-user %s reply: %s",
				 vu_req_name(req), strerror(-rc));
	return 0;
}

int vu_request(struct vblk_dev *dev, uint32_t req, const void *payload,
	       uint32_t size, const int *fds, unsigned int nfds,
	       struct vu_msg *reply)
{
	struct vu_msg m;
	int rc;

	if (size > sizeof(m.p) || nfds > VU_MAX_FDS)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.request = req;
	m.flags = VU_VERSION;
	m.size = size;
	if (size)
		memcpy(&m.p, payload, size);
	if (!reply)
		return send_msg(dev, &m, fds, nfds);
	rc = send_msg(dev, &m, fds, nfds);
	if (!rc)
		rc = recv_reply(dev, req, reply);
	return rc;
}

int vu_set(struct vblk_dev *dev, uint32_t req, const void *payload,
	   uint32_t size, const int *fds, unsigned int nfds)
{
	struct vu_msg m, r;
	int rc;

	if (!(dev->proto_features & (1ULL << VU_PROTO_F_REPLY_ACK)))
		return vu_request(dev, req, payload, size, fds, nfds, NULL);
	memset(&m, 0, sizeof(m));
	m.request = req;
	m.flags = VU_VERSION | VU_FLAG_NEED_REPLY;
	m.size = size;
	if (size)
		memcpy(&m.p, payload, size);
	rc = send_msg(dev, &m, fds, nfds);
	if (!rc)
		rc = recv_reply(dev, req, &r);
	if (rc)
		return rc;
	if (r.size != sizeof(uint64_t))
		return vblk_fail(dev, -EPROTO, "vhost-user %s: bad ack size",
				 vu_req_name(req));
	if (r.p.u64)
		return vblk_fail(dev, -EIO, "vhost-user %s: refused (%llu)",
				 vu_req_name(req), (unsigned long long)r.p.u64);
	return 0;
}

int vu_get_u64(struct vblk_dev *dev, uint32_t req, uint64_t *val)
{
	struct vu_msg r;
	int rc;

	rc = vu_request(dev, req, NULL, 0, NULL, 0, &r);
	if (rc)
		return rc;
	if (r.size != sizeof(uint64_t))
		return vblk_fail(dev, -EPROTO, "vhost-user %s: bad reply size",
				 vu_req_name(req));
	*val = r.p.u64;
	return 0;
}
