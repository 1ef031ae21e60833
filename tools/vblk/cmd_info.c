// SPDX-License-Identifier: GPL-2.0
/* vblk info: what the device reports and what was negotiated. */
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vblk_cmd.h"

static const struct {
	unsigned int bit;
	const char *name;
} feature_names[] = {
	{ VIRTIO_BLK_F_SIZE_MAX, "SIZE_MAX" },
	{ VIRTIO_BLK_F_SEG_MAX, "SEG_MAX" },
	{ VIRTIO_BLK_F_RO, "RO" },
	{ VIRTIO_BLK_F_BLK_SIZE, "BLK_SIZE" },
	{ VIRTIO_BLK_F_FLUSH, "FLUSH" },
	{ VIRTIO_BLK_F_TOPOLOGY, "TOPOLOGY" },
	{ VIRTIO_BLK_F_MQ, "MQ" },
	{ VIRTIO_BLK_F_DISCARD, "DISCARD" },
	{ VIRTIO_BLK_F_WRITE_ZEROES, "WRITE_ZEROES" },
	{ VIRTIO_RING_F_INDIRECT_DESC, "INDIRECT_DESC" },
	{ VIRTIO_RING_F_EVENT_IDX, "EVENT_IDX" },
	{ VIRTIO_F_VERSION_1, "VERSION_1" },
	{ VIRTIO_F_ACCESS_PLATFORM, "ACCESS_PLATFORM" },
};

static void print_features(const char *label, uint64_t f)
{
	size_t i;

	printf("%-18s 0x%016llx", label, (unsigned long long)f);
	for (i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (f & (1ULL << feature_names[i].bit))
			printf(" %s", feature_names[i].name);
	printf("\n");
}

int cmd_info(struct cli *c)
{
	const struct vblk_info *i;
	struct vblk_dev *dev;
	int rc;

	if (c->nargs) {
		usage_cmd(c->cmd, stderr);
		return EX_USAGE;
	}
	if ((rc = cli_open(c, &dev)))
		return rc;
	i = vblk_info(dev);
	printf("%-18s %s\n", "transport:", vblk_transport_name(i->transport));
	printf("%-18s %llu sectors (%llu bytes)\n", "capacity:",
	       (unsigned long long)i->capacity,
	       (unsigned long long)i->capacity * 512);
	printf("%-18s %u / %u\n", "block size:", i->blk_size, i->phys_blk_size);
	printf("%-18s %u\n", "seg_max:", i->seg_max);
	printf("%-18s %u\n", "size_max:", i->size_max);
	printf("%-18s %u\n", "seg_alignment:", i->seg_alignment);
	printf("%-18s %u of %u, %u descriptors each\n", "queues:",
	       i->num_queues, i->max_queues, i->queue_size);
	printf("%-18s %u sectors, %u segments, align %u\n", "discard:",
	       i->max_discard_sectors, i->max_discard_seg, i->discard_align);
	printf("%-18s %u sectors, %u segments, unmap %s\n", "write zeroes:",
	       i->max_write_zeroes_sectors, i->max_write_zeroes_seg,
	       i->write_zeroes_may_unmap ? "yes" : "no");
	printf("%-18s %s\n", "read-only:", i->readonly ? "yes" : "no");
	printf("%-18s %s\n", "flush:", i->flush ? "yes" : "no");
	print_features("offered:", i->offered);
	print_features("negotiated:", i->features);
	vblk_close(dev);
	return EX_OK;
}
