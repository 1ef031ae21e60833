// SPDX-License-Identifier: GPL-2.0
/* Feature bits the driver asks for, and the virtio-blk config space. */
#include <string.h>

#include <linux/virtio_config.h>

#include "vblk_int.h"

#define BIT(n)	(1ULL << (n))

uint64_t vblk_wanted_features(const struct vblk_opts *opts)
{
	uint64_t f = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_BLK_F_SIZE_MAX) |
		     BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_BLK_SIZE) |
		     BIT(VIRTIO_BLK_F_TOPOLOGY) | BIT(VIRTIO_BLK_F_FLUSH) |
		     BIT(VIRTIO_BLK_F_MQ) | BIT(VIRTIO_BLK_F_DISCARD) |
		     BIT(VIRTIO_BLK_F_WRITE_ZEROES) | BIT(VIRTIO_BLK_F_RO);

	if (!opts->no_indirect)
		f |= BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (!opts->no_event_idx)
		f |= BIT(VIRTIO_RING_F_EVENT_IDX);
	if (opts->no_size_max)
		f &= ~BIT(VIRTIO_BLK_F_SIZE_MAX);
	return f;
}

/* Fill info from a little-endian virtio-blk config space. */
void vblk_config_to_info(struct vblk_info *info,
			 const struct virtio_blk_config *cfg)
{
	uint64_t f = info->features;

	info->capacity = le64toh(cfg->capacity);
	info->size_max = f & BIT(VIRTIO_BLK_F_SIZE_MAX) ?
			 le32toh(cfg->size_max) : 0;
	info->seg_max = f & BIT(VIRTIO_BLK_F_SEG_MAX) ?
			le32toh(cfg->seg_max) : 1;
	info->blk_size = f & BIT(VIRTIO_BLK_F_BLK_SIZE) ?
			 le32toh(cfg->blk_size) : 512;
	info->phys_blk_size = info->blk_size;
	if (f & BIT(VIRTIO_BLK_F_TOPOLOGY) && cfg->physical_block_exp < 16)
		info->phys_blk_size = info->blk_size << cfg->physical_block_exp;
	info->max_queues = f & BIT(VIRTIO_BLK_F_MQ) ?
			   le16toh(cfg->num_queues) : 1;
	if (f & BIT(VIRTIO_BLK_F_DISCARD)) {
		info->max_discard_sectors = le32toh(cfg->max_discard_sectors);
		info->max_discard_seg = le32toh(cfg->max_discard_seg);
		info->discard_align =
			le32toh(cfg->discard_sector_alignment) * 512;
	}
	if (f & BIT(VIRTIO_BLK_F_WRITE_ZEROES)) {
		info->max_write_zeroes_sectors =
			le32toh(cfg->max_write_zeroes_sectors);
		info->max_write_zeroes_seg = le32toh(cfg->max_write_zeroes_seg);
		info->write_zeroes_may_unmap = cfg->write_zeroes_may_unmap;
	}
	info->readonly = !!(f & BIT(VIRTIO_BLK_F_RO));
	info->flush = !!(f & BIT(VIRTIO_BLK_F_FLUSH));
}
