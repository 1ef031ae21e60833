/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The state file of a live operation (snapshot --external, merge, backup):
 * which step it reached, so that `qcow2-dm recover` can finish or undo it
 * after a crash. Two copies with the same content: run_dir()/NAME.state
 * and .IMAGE.qcow2-dm-state next to the image the device had when the
 * operation began (it survives a reboot). Both are written (atomically,
 * durably) after each step's action and before the next one starts; both
 * are removed when the operation ends. Format: qcow2-dm(8), STATE FILE.
 */
#ifndef QCOW2_DM_STATE_H
#define QCOW2_DM_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

enum state_op { OP_EXTERNAL, OP_MERGE, OP_BACKUP, OP_COUNT };

/* the steps, in the order they are reached; per op, see state.c */
enum {
	ST_BEGIN = 0,
	ST_OVERLAY_CREATED,
	ST_SWITCHED,
	/* merge */
	ST_M_COMMITTED = 3,
	ST_M_TMP_COMMITTED,
	/* backup: after its copy, the merge back of the overlay */
	ST_B_COPIED = 3,
	ST_B_MERGE_OVERLAY_CREATED,
	ST_B_MERGE_SWITCHED,
	ST_B_MERGE_COMMITTED,
	ST_B_MERGE_TMP_COMMITTED,
};

#define STATE_VERSION	1
#define STATE_NAME_MAX	128

struct op_state {
	enum state_op op;
	int step;
	char name[STATE_NAME_MAX];	/* the device */
	char image[PATH_MAX];		/* its top image when the op began */
	char backing[PATH_MAX];		/* merge: the file merged into */
	char backing_fmt[8];		/* merge: qcow2 or raw */
	char overlay[PATH_MAX];		/* external: NEW; merge, backup: TMP */
	char merge_tmp[PATH_MAX];	/* backup: the overlay of its merge */
	char out[PATH_MAX];		/* backup: OUT, while being copied */
	uint64_t cache_mb;		/* the device's cache_mb option */
	uint64_t pid;			/* the process that ran the operation */
	bool ended;			/* state_end() removed the files */
};

const char *state_op_name(enum state_op op);
const char *state_step_name(const struct op_state *st);

/* .IMAGE.qcow2-dm-state in @image's folder. */
int state_image_path(const char *image, char *buf, size_t len);

/* 1 when @image has a state file next to it, 0 when not. */
int state_exists_for(const char *image);

/*
 * Record step ST_BEGIN of @st (op, name, image and the files it will
 * create filled in). Refused, with the exit status EXIT_RECOVER, when a
 * state of an earlier operation is still there.
 */
int state_begin(struct op_state *st);

/*
 * Record @step. The test hook QCOW2_DM_DIE_AT=STEP kills this process
 * (SIGKILL) right after the step named STEP is recorded.
 */
int state_step(struct op_state *st, int step);

/* The operation is over: remove both files. */
void state_end(struct op_state *st);

/*
 * Read and check a state file (hostile input: bounded, every key known,
 * every path absolute). 0 read, 1 no such file, -1 with a message.
 */
int state_read(const char *path, struct op_state *st);

/* run_dir()/NAME.state */
int state_run_path(const char *name, char *buf, size_t len);

/* The test hook, for steps written elsewhere. */
void state_die_at(const char *step);

#endif
