/* SPDX-License-Identifier: GPL-2.0 */
/* Finish or undo an interrupted live operation (qcow2-dm recover). */
#ifndef QCOW2_DM_RECOVER_H
#define QCOW2_DM_RECOVER_H

#include <stdbool.h>

#include "state.h"

/*
 * Bring the chain of @st (and device st->name when @attached) to the
 * state its step calls for, then remove the state files. @dry: only say
 * what would be done. 0, or -1 with a message (the state is kept).
 */
int recover_apply(struct op_state *st, bool attached, bool dry);

#endif
