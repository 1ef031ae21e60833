/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-user wire protocol (docs/interop/vhost-user.rst): the front-end
 * side here, and the definitions tools/vhost-blkd (the back-end) shares.
 */
#ifndef VBLK_VUSER_H
#define VBLK_VUSER_H

#include "vblk_int.h"

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_RESET_DEVICE = 34,
};

#define VU_VERSION		0x1
#define VU_VERSION_MASK		0x3
#define VU_FLAG_REPLY		(1U << 2)
#define VU_FLAG_NEED_REPLY	(1U << 3)

#define VU_F_PROTOCOL_FEATURES	30
#define VU_PROTO_F_MQ		0
#define VU_PROTO_F_LOG_SHMFD	1
#define VU_PROTO_F_REPLY_ACK	3
#define VU_PROTO_F_CONFIG	9
#define VU_PROTO_F_RESET_DEVICE	13

#define VU_VRING_IDX_MASK	0xffULL
#define VU_VRING_NOFD		(1ULL << 8)
#define VU_MAX_FDS		8
#define VU_CONFIG_MAX		256

struct vu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vu_mem {
	uint32_t nregions;
	uint32_t padding;
	struct vu_region regions[VU_MAX_FDS];
};

/* SET_LOG_BASE: the log is mmap_size bytes at mmap_offset of the fd. */
struct vu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

struct vu_state {
	uint32_t index;
	uint32_t num;
};

struct vu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VU_CONFIG_MAX];
};

struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	union {
		uint64_t u64;
		struct vu_state state;
		struct vu_addr addr;
		struct vu_mem mem;
		struct vu_config config;
		struct vu_log log;
	} p;
} __attribute__((packed));

#define VU_HDR_SIZE	12

/* The name of a request, for log lines ("?" when unknown). */
const char *vu_req_name(uint32_t req);

/* Send a request; with reply != NULL wait for its reply into *reply. */
int vu_request(struct vblk_dev *dev, uint32_t req, const void *payload,
	       uint32_t size, const int *fds, unsigned int nfds,
	       struct vu_msg *reply);
/* Send a request that sets something; waits for the ack if negotiated. */
int vu_set(struct vblk_dev *dev, uint32_t req, const void *payload,
	   uint32_t size, const int *fds, unsigned int nfds);
int vu_get_u64(struct vblk_dev *dev, uint32_t req, uint64_t *val);

#endif /* VBLK_VUSER_H */
