// SPDX-License-Identifier: GPL-2.0
/*
 * scsi_resp: what the vhost-scsi transport makes of hostile responses,
 * without a device: a request is built into a slot as for the device,
 * the response area is then written as a hostile device would, and the
 * status the completion code derives is checked. Runs on the host (no
 * module); build with -fsanitize=address to catch any overread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi.h"

static int fails, tests;

/* One KTAP result, numbered, as the selftest harness counts them. */
static void expect(const char *name, uint8_t got, uint8_t want,
		   struct vblk_dev *dev)
{
	tests++;
	if (got == want) {
		printf("ok %d %s\n", tests, name);
		return;
	}
	printf("# %s: status %u, want %u (%s)\n", name, got, want, dev->err);
	printf("not ok %d %s\n", tests, name);
	fails++;
}

static struct virtio_scsi_cmd_resp *resp_of(struct scsi_state *s,
					    unsigned int slot)
{
	return (void *)(s->area[0] + slot * SCSI_SLOT_BYTES + SCSI_SLOT_RESP);
}

/* Build req in slot 0 of vq (as vblk_submit would), apply hostile(). */
static uint8_t complete(struct vblk_dev *dev, struct vblk_vq *vq,
			struct vblk_req *req, uint32_t used_len,
			void (*hostile)(struct virtio_scsi_cmd_resp *r))
{
	struct vblk_chain c;

	if (vblk_scsi_build(dev, vq, 0, req, &c)) {
		printf("# build failed: %s\n", dev->err);
		return 0xfe;
	}
	vq->slots[0].req = req;
	if (hostile)
		hostile(resp_of(dev->tr, 0));
	return vblk_scsi_status(dev, vq, 0, used_len);
}

static void good(struct virtio_scsi_cmd_resp *r)
{
	memset(r, 0, sizeof(*r));
}

static void huge_sense(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->status = SAM_CHECK_CONDITION;
	r->sense_len = htole32(0xffffffffu);
}

static void sense_97(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->status = SAM_CHECK_CONDITION;
	r->sense_len = htole32(sizeof(r->sense) + 1);
}

static void short_sense(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->status = SAM_CHECK_CONDITION;
	r->sense_len = htole32(1);
	r->sense[0] = 0x70;
	r->sense[2] = SENSE_ILLEGAL_REQUEST;	/* beyond sense_len: unused */
	r->sense[12] = 0x20;
}

static void invalid_opcode(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->status = SAM_CHECK_CONDITION;
	r->sense_len = htole32(18);
	r->sense[0] = 0x70;
	r->sense[2] = SENSE_ILLEGAL_REQUEST;
	r->sense[12] = 0x20;
}

static void bad_target(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->response = VIRTIO_SCSI_S_BAD_TARGET;
}

static void resid(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->resid = htole32(512);
}

static void busy(struct virtio_scsi_cmd_resp *r)
{
	good(r);
	r->status = 0x08;
}

static int setup(struct vblk_dev *dev, struct scsi_state *s,
		 struct vblk_vq *vq)
{
	memset(dev, 0, sizeof(*dev));
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&dev->err_lock, NULL);
	if (vblk_mem_init(&dev->mem, 4 << 20))
		return -1;
	dev->tr = s;
	dev->vq_base = SCSI_VQ_REQ;
	if (vblk_vq_init(dev, vq, SCSI_VQ_REQ, 16))
		return -1;
	s->area[0] = vblk_mem_alloc(dev, 16 * SCSI_SLOT_BYTES);
	s->zero = vblk_mem_alloc(dev, VBLK_PAGE);
	s->blk_shift = 9;
	s->lun[0] = 1;
	return s->area[0] && s->zero ? 0 : -1;
}

int main(void)
{
	static struct vblk_dev dev;
	static struct scsi_state s;
	struct vblk_vq vq;
	struct iovec iov;
	struct vblk_req rd = { .type = VIRTIO_BLK_T_IN, .iov = &iov,
			       .iovcnt = 1 };
	struct vblk_req dis = { .type = VIRTIO_BLK_T_DISCARD, .nsectors = 8 };
	struct vblk_chain c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (setup(&dev, &s, &vq)) {
		printf("Bail out! setup\n");
		return 1;
	}
	iov.iov_base = vblk_mem_alloc(&dev, 4096);
	iov.iov_len = 4096;
	printf("TAP version 13\n1..11\n");
	expect("GOOD is OK", complete(&dev, &vq, &rd, 0, good), 0, &dev);
	expect("no response written is NONE", complete(&dev, &vq, &rd, 0, NULL),
	       VBLK_S_NONE, &dev);
	expect("used length shorter than the header is IOERR",
	       complete(&dev, &vq, &rd, 5, good), VIRTIO_BLK_S_IOERR, &dev);
	expect("sense_len 0xffffffff is IOERR",
	       complete(&dev, &vq, &rd, 0, huge_sense), VIRTIO_BLK_S_IOERR, &dev);
	expect("sense_len one past the buffer is IOERR",
	       complete(&dev, &vq, &rd, 0, sense_97), VIRTIO_BLK_S_IOERR, &dev);
	expect("sense shorter than its fields is IOERR, not UNSUPP",
	       complete(&dev, &vq, &dis, 0, short_sense), VIRTIO_BLK_S_IOERR,
	       &dev);
	expect("invalid opcode on UNMAP is UNSUPP",
	       complete(&dev, &vq, &dis, 0, invalid_opcode),
	       VIRTIO_BLK_S_UNSUPP, &dev);
	expect("bad target is IOERR", complete(&dev, &vq, &rd, 0, bad_target),
	       VIRTIO_BLK_S_IOERR, &dev);
	expect("a residual on a read is IOERR",
	       complete(&dev, &vq, &rd, 0, resid), VIRTIO_BLK_S_IOERR, &dev);
	expect("BUSY is IOERR", complete(&dev, &vq, &rd, 0, busy),
	       VIRTIO_BLK_S_IOERR, &dev);
	rd.sector = 1;
	s.blk_shift = 12;
	expect("a sector not on a block boundary is refused at build",
	       vblk_scsi_build(&dev, &vq, 0, &rd, &c) == -EINVAL ? 0 : 1, 0,
	       &dev);
	printf("# totals: fail:%d\n", fails);
	vblk_vq_fini(&dev, &vq);
	vblk_mem_fini(&dev.mem);
	return fails ? 1 : 0;
}
