/* SPDX-License-Identifier: GPL-2.0 */
/* The qcow2-dm commands; each returns the process exit status. */
#ifndef QCOW2_DM_COMMANDS_H
#define QCOW2_DM_COMMANDS_H

int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_snapshot_external(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_bitmap(int argc, char **argv);
int cmd_recover(int argc, char **argv);

/* 1 when argv holds -h or --help (then print usage and exit 0). */
int wants_help(int argc, char **argv);

#endif
