/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "error.h"

/*
 * A booted guest's console: a pty from the guest's own devpts (its
 * /dev/console and init's stdio), never a host file.  Its master goes to
 * the console keeper: ONE host process for all guests, started on demand,
 * that writes each console to its log (NAME.log, rotated to NAME.log.1 past
 * a size, so a guest can fill neither the disk nor the keeper's memory) and
 * ends when the last console closes.  Guests cannot see or signal it (it is
 * not in their pid namespaces).  If it is killed, running guests' consoles
 * go quiet (writes fail with EIO) until their next start; nothing else.
 */

/*
 * Hand @master (a pty master) to the keeper of @run_dir, starting it if
 * needed; it keeps the console until the process of @pidfd (the guest's
 * PID 1) ends.
 */
int vs_console_attach(const char *run_dir, const char *name, const char *log_path,
                      unsigned long long max_size, int master, int pidfd, VsError *err);
