// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-scsi transport: program /dev/vhost-scsi with the standard vhost
 * ioctls, attach it to a LIO vhost target (VHOST_SCSI_SET_ENDPOINT) and
 * learn the LUN's geometry with SCSI commands. Requests are translated in
 * scsi_req.c. Queue layout: controlq 0, eventq 1 (set up, never used:
 * vhost-scsi expects them), request queues from 2 on, which the library
 * API numbers from 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vhost.h>
#include <linux/virtio_config.h>

#include "scsi.h"

#define BIT(n)		(1ULL << (n))
#define KIOCTL(dev, req, arg)	vblk_kern_ioctl(dev, req, #req, arg)
#define PAGE_UP(x)	(((x) + VBLK_PAGE - 1) & ~(VBLK_PAGE - 1))
#define CMD_TIMEOUT_MS	30000
/* a new nexus may queue several UNIT ATTENTIONs; each command clears one */
#define UA_TRIES	4

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Put what (the failed step) before the message the step left. */
static int step_failed(struct vblk_dev *dev, int rc, const char *what)
{
	char msg[sizeof(dev->err)];

	memcpy(msg, dev->err, sizeof(msg));
	return vblk_fail(dev, rc, "%s: %s", what, msg);
}

/* "[scsi:]WWPN[:TPGT]": a trailing all-digit field is the TPGT. */
static int parse_backend(struct vblk_dev *dev, struct scsi_state *s,
			 const char *backend)
{
	const char *w = backend, *colon;
	unsigned long tpgt = 1;
	size_t len;

	if (!w)
		return vblk_fail(dev, -EINVAL,
				 "vhost-scsi needs a target: [scsi:]WWPN[:TPGT]");
	if (!strncmp(w, "scsi:", 5))
		w += 5;
	len = strlen(w);
	colon = strrchr(w, ':');
	if (colon && colon[1] && colon[1 + strspn(colon + 1, "0123456789")] == 0) {
		tpgt = strtoul(colon + 1, NULL, 10);
		len = colon - w;
	}
	/* the TPGT travels in one byte of the virtio-scsi LUN */
	if (!len || len >= sizeof(s->tgt.vhost_wwpn) || tpgt > 255)
		return vblk_fail(dev, -EINVAL, "bad vhost-scsi target '%s'",
				 backend);
	memcpy(s->tgt.vhost_wwpn, w, len);
	s->tgt.vhost_tpgt = tpgt;
	s->lun[0] = 1;
	s->lun[1] = tpgt;
	s->lun[2] = 0x40;	/* flat space addressing, LUN 0 */
	return 0;
}

static size_t extra_mem(const struct vblk_opts *o)
{
	size_t nq = o->num_queues ? o->num_queues : 1;
	size_t qs = o->queue_size ? o->queue_size : VBLK_DEF_QUEUE_SIZE;

	/* bad values fail later, in check_opts; just do not overflow here */
	if (nq > VBLK_MAX_QUEUES)
		nq = VBLK_MAX_QUEUES;
	if (qs > VBLK_MAX_QUEUE_SIZE)
		qs = VBLK_MAX_QUEUE_SIZE;
	return 2 * vblk_vq_mem_bytes(SCSI_AUX_QUEUE_SIZE) +
	       nq * PAGE_UP(qs * SCSI_SLOT_BYTES) + 2 * VBLK_PAGE;
}

static int scsi_connect(struct vblk_dev *dev, const char *backend,
			const struct vblk_opts *o)
{
	const char *path = o->vhost_dev ? o->vhost_dev : "/dev/vhost-scsi";
	struct scsi_state *s;
	int abi = 0, rc;
	uint64_t f;

	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0)
		return vblk_fail(dev, -errno, "%s: %s", path, strerror(errno));
	s = calloc(1, sizeof(*s));
	if (!s)
		return vblk_fail(dev, -ENOMEM, "out of memory");
	dev->tr = s;
	rc = parse_backend(dev, s, backend);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SCSI_GET_ABI_VERSION, &abi);
	if (!rc && abi != VHOST_SCSI_ABI_VERSION)
		rc = vblk_fail(dev, -ENOTSUP, "vhost-scsi ABI %d, we speak %d",
			       abi, VHOST_SCSI_ABI_VERSION);
	if (!rc)
		rc = KIOCTL(dev, VHOST_SET_OWNER, NULL);
	if (!rc)
		rc = KIOCTL(dev, VHOST_GET_FEATURES, &f);
	if (rc)
		return rc;
	s->tgt.abi_version = abi;
	dev->info.offered = f;
	dev->info.max_queues = VBLK_MAX_QUEUES;
	dev->vq_base = SCSI_VQ_REQ;
	dev->extra_mem = extra_mem(o);
	return 0;
}

/* Ring features only: virtio-scsi's own bits (T10_PI...) change layouts. */
static uint64_t wanted_features(const struct vblk_opts *o)
{
	uint64_t f = BIT(VIRTIO_F_VERSION_1);

	if (!o->no_indirect)
		f |= BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (!o->no_event_idx)
		f |= BIT(VIRTIO_RING_F_EVENT_IDX);
	return f;
}

static int setup_aux(struct vblk_dev *dev, struct scsi_state *s)
{
	int rc;

	rc = vblk_vq_init(dev, &s->ctl, SCSI_VQ_CTL, SCSI_AUX_QUEUE_SIZE);
	if (!rc)
		rc = vblk_vq_init(dev, &s->evt, SCSI_VQ_EVT,
				  SCSI_AUX_QUEUE_SIZE);
	if (rc)
		return vblk_fail(dev, rc, "vhost-scsi aux queues: %s",
				 strerror(-rc));
	rc = vblk_kern_set_vring(dev, &s->ctl);
	if (!rc)
		rc = vblk_kern_set_vring(dev, &s->evt);
	return rc;
}

static int alloc_areas(struct vblk_dev *dev, struct scsi_state *s)
{
	unsigned int i;

	for (i = 0; i < dev->nvqs; i++) {
		s->area[i] = vblk_mem_alloc(dev, PAGE_UP(dev->vqs[i].num *
							SCSI_SLOT_BYTES));
		if (!s->area[i])
			return vblk_fail(dev, -ENOMEM, "guest memory for vq %u",
					 dev->vqs[i].idx);
	}
	s->zero = vblk_mem_alloc(dev, VBLK_PAGE);
	if (!s->zero)
		return vblk_fail(dev, -ENOMEM, "guest memory: zero block");
	memset(s->zero, 0, VBLK_PAGE);
	return 0;
}

/* One CDB of our own on request queue 0; its sense lands in s->icmd. */
static int exec_cdb(struct vblk_dev *dev, struct scsi_state *s,
		    const uint8_t *cdb, size_t cdb_len, void *buf,
		    uint32_t len)
{
	struct iovec iov = { buf, len };
	struct vblk_req r = {
		.type = SCSI_T_CDB, .iov = &iov, .iovcnt = len ? 1 : 0,
		.priv = &s->icmd,
	};
	int rc;

	memset(&s->icmd, 0, sizeof(s->icmd));
	memcpy(s->icmd.cdb, cdb, cdb_len);
	s->icmd.data_in = true;
	rc = vblk_do(dev, 0, &r, CMD_TIMEOUT_MS);
	if (rc)
		return rc;
	return r.status == VIRTIO_BLK_S_OK ? 0 : -EIO;
}

/* LIO answers the first commands of a new nexus with UNIT ATTENTION. */
static int exec_retry(struct vblk_dev *dev, struct scsi_state *s,
		      const uint8_t *cdb, size_t cdb_len, void *buf,
		      uint32_t len)
{
	int i, rc = -EIO;

	for (i = 0; i < UA_TRIES; i++) {
		rc = exec_cdb(dev, s, cdb, cdb_len, buf, len);
		if (rc != -EIO || s->icmd.status != SAM_CHECK_CONDITION ||
		    s->icmd.key != SENSE_UNIT_ATTENTION)
			return rc;
	}
	return rc;
}

static int read_capacity(struct vblk_dev *dev, struct scsi_state *s,
			 uint8_t *buf)
{
	static const uint8_t rc16[16] = { 0x9e, 0x10, [13] = 32 };
	struct vblk_info *i = &dev->info;
	uint64_t last;
	uint32_t bs;
	int rc;

	memset(buf, 0, 32);
	rc = exec_retry(dev, s, rc16, sizeof(rc16), buf, 32);
	if (rc)
		return step_failed(dev, rc, "READ CAPACITY(16)");
	last = get_be64(buf);
	bs = get_be32(buf + 8);
	if (bs < 512 || bs > VBLK_PAGE || bs & (bs - 1) ||
	    last >= UINT64_MAX >> 12)
		return vblk_fail(dev, -EIO,
				 "READ CAPACITY(16): block size %u, last LBA %llu",
				 bs, (unsigned long long)last);
	s->blk_shift = __builtin_ctz(bs);
	i->blk_size = bs;
	i->phys_blk_size = (buf[13] & 0xf) < 4 ? bs << (buf[13] & 0xf) : bs;
	i->capacity = (last + 1) << (s->blk_shift - 9);
	return 0;
}

/* INQUIRY of a VPD page into buf (64 bytes); false if the target has none. */
static bool inquiry_vpd(struct vblk_dev *dev, struct scsi_state *s,
			uint8_t page, uint8_t *buf)
{
	const uint8_t cdb[6] = { 0x12, 1, page, 0, 64, 0 };

	memset(buf, 0, 64);
	return !exec_retry(dev, s, cdb, sizeof(cdb), buf, 64) &&
	       buf[1] == page;
}

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : v;
}

/* Discard and write-zeroes limits: Block Limits and LB Provisioning. */
static void read_limits(struct vblk_dev *dev, struct scsi_state *s,
			uint8_t *buf)
{
	struct vblk_info *i = &dev->info;
	unsigned int sh = s->blk_shift - 9;
	uint64_t unmap_lba = 0, unmap_desc = 0, gran = 0, ws = 0;
	bool lbpu = false;

	if (inquiry_vpd(dev, s, 0xb0, buf) && buf[3] >= 0x3c) {
		unmap_lba = get_be32(buf + 20);
		unmap_desc = get_be32(buf + 24);
		gran = get_be32(buf + 28);
		ws = get_be64(buf + 36);
	}
	if (inquiry_vpd(dev, s, 0xb2, buf)) {
		lbpu = buf[5] & 0x80;
		s->ws_unmap = buf[5] & 0x40;
	}
	if (lbpu && unmap_lba && unmap_desc) {
		i->max_discard_sectors = clamp32(unmap_lba << sh);
		i->max_discard_seg = 1;
		i->discard_align = clamp32(gran << s->blk_shift);
	}
	/* SBC's default WRITE SAME limit when the target names none */
	i->max_write_zeroes_sectors = clamp32((ws ? ws : 0xffff) << sh);
	i->max_write_zeroes_seg = 1;
	i->write_zeroes_may_unmap = s->ws_unmap;
	/* failed probes leave their message; the device works without them */
	dev->err[0] = 0;
}

static int probe(struct vblk_dev *dev, struct scsi_state *s)
{
	static const uint8_t tur[6];
	uint8_t *buf = vblk_mem_alloc(dev, VBLK_PAGE);
	int rc;

	if (!buf)
		return vblk_fail(dev, -ENOMEM, "guest memory: probe buffer");
	rc = exec_retry(dev, s, tur, sizeof(tur), NULL, 0);
	if (rc)
		rc = step_failed(dev, rc, "TEST UNIT READY");
	if (!rc)
		rc = read_capacity(dev, s, buf);
	if (!rc)
		read_limits(dev, s, buf);
	vblk_mem_free(dev, buf);
	dev->info.seg_max = VBLK_MAX_SEGS;
	dev->info.flush = true;
	return rc;
}

static int set_endpoint(struct vblk_dev *dev, struct scsi_state *s)
{
	if (!ioctl(dev->fd, VHOST_SCSI_SET_ENDPOINT, &s->tgt))
		return 0;
	if (errno == ENODEV)
		return vblk_fail(dev, -ENODEV,
				 "vhost-scsi: no free target %s with a nexus (LIO configfs)",
				 s->tgt.vhost_wwpn);
	return vblk_fail(dev, -errno, "VHOST_SCSI_SET_ENDPOINT %s: %s",
			 s->tgt.vhost_wwpn, strerror(errno));
}

static int scsi_program(struct vblk_dev *dev, const char *backend,
			const struct vblk_opts *o)
{
	struct scsi_state *s = dev->tr;
	unsigned int i;
	int rc;

	(void)backend;
	rc = vblk_kern_set_features(dev,
				    dev->info.offered & wanted_features(o));
	if (!rc)
		rc = vblk_kern_set_mem_table(dev);
	if (!rc)
		rc = setup_aux(dev, s);
	for (i = 0; !rc && i < dev->nvqs; i++)
		rc = vblk_kern_set_vring(dev, &dev->vqs[i]);
	if (!rc)
		rc = alloc_areas(dev, s);
	/* vrings first: vhost-scsi sizes its command pools at SET_ENDPOINT */
	if (!rc)
		rc = set_endpoint(dev, s);
	if (!rc)
		rc = probe(dev, s);
	return rc;
}

static void scsi_disconnect(struct vblk_dev *dev)
{
	struct scsi_state *s = dev->tr;

	/* release clears the endpoint: no more access to guest memory */
	close(dev->fd);
	dev->fd = -1;
	if (!s)
		return;
	if (s->ctl.num)
		vblk_vq_fini(dev, &s->ctl);
	if (s->evt.num)
		vblk_vq_fini(dev, &s->evt);
	free(s);
	dev->tr = NULL;
}

const struct vblk_ops vblk_scsi_ops = {
	.name = "vhost-scsi",
	.connect = scsi_connect,
	.program = scsi_program,
	.disconnect = scsi_disconnect,
	.build = vblk_scsi_build,
	.status = vblk_scsi_status,
};
