/* SPDX-License-Identifier: GPL-2.0 */
/* vhost-scsi transport internals: shared by scsi.c and scsi_req.c only. */
#ifndef VBLK_SCSI_H
#define VBLK_SCSI_H

#include <linux/vhost_types.h>
#include <linux/virtio_scsi.h>

#include "vblk_int.h"

/* virtio-scsi queue layout: controlq 0, eventq 1, request queues 2.. */
#define SCSI_VQ_CTL		0
#define SCSI_VQ_EVT		1
#define SCSI_VQ_REQ		2
/* ctl and evt queues exist only because vhost-scsi expects them */
#define SCSI_AUX_QUEUE_SIZE	16

/*
 * Per ring slot, in guest memory: the request header, the response and a
 * small buffer (UNMAP parameter list, INQUIRY data of GET_ID).
 */
#define SCSI_SLOT_REQ		0
#define SCSI_SLOT_RESP		64
#define SCSI_SLOT_PARAM		192
#define SCSI_PARAM_BYTES	64
#define SCSI_SLOT_BYTES		256

/* response byte before the device answers: no VIRTIO_SCSI_S_* value */
#define SCSI_RESP_NONE		0xff

/* Private request type: one CDB of scsi.c's own (probing at open). */
#define SCSI_T_CDB		0xffff5c51u

/* SAM status and sense keys we act on */
#define SAM_GOOD		0x00
#define SAM_CHECK_CONDITION	0x02
#define SENSE_ILLEGAL_REQUEST	0x05
#define SENSE_UNIT_ATTENTION	0x06

struct scsi_cdb {
	uint8_t cdb[16];
	bool data_in;
	/* filled on completion */
	uint8_t status, key, asc, ascq;
};

struct scsi_state {
	struct vhost_scsi_target tgt;
	uint8_t lun[8];
	uint32_t blk_shift;		/* log2 of the logical block size */
	uint64_t tag;			/* last tag handed out */
	uint8_t *area[VBLK_MAX_QUEUES];	/* per request queue: slots */
	struct vblk_vq ctl, evt;
	uint8_t *zero;			/* one logical block of zeros */
	bool ws_unmap;			/* WRITE SAME may unmap (LBPWS) */
	struct scsi_cdb icmd;		/* the open-time command in flight */
};

/* scsi_req.c */
int vblk_scsi_build(struct vblk_dev *dev, struct vblk_vq *vq,
		    unsigned int slot, const struct vblk_req *req,
		    struct vblk_chain *c);
uint8_t vblk_scsi_status(struct vblk_dev *dev, struct vblk_vq *vq,
			 unsigned int slot, uint32_t used_len);

#endif /* VBLK_SCSI_H */
