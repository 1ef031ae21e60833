// SPDX-License-Identifier: GPL-2.0
/* Human-readable names of statuses, request types and transports. */
#include "vblk_int.h"

const char *vblk_status_name(uint8_t status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return "OK";
	case VIRTIO_BLK_S_IOERR:
		return "IOERR";
	case VIRTIO_BLK_S_UNSUPP:
		return "UNSUPP";
	case VBLK_S_NONE:
		return "NOSTATUS";
	default:
		return "BADSTATUS";
	}
}

const char *vblk_type_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return "IN";
	case VIRTIO_BLK_T_OUT:
		return "OUT";
	case VIRTIO_BLK_T_FLUSH:
		return "FLUSH";
	case VIRTIO_BLK_T_GET_ID:
		return "GET_ID";
	case VIRTIO_BLK_T_DISCARD:
		return "DISCARD";
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return "WRITE_ZEROES";
	default:
		return "UNKNOWN";
	}
}

const char *vblk_transport_name(enum vblk_transport t)
{
	switch (t) {
	case VBLK_TR_KERNEL:
		return "vhost-kernel";
	case VBLK_TR_USER:
		return "vhost-user";
	case VBLK_TR_SCSI:
		return "vhost-scsi";
	default:
		return "auto";
	}
}
