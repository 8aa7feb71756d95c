/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "error.h"

/*
 * The CVE-2019-5736 class: a guest whose init, command or shell resolves to
 * /proc/self/exe (a symlink, "#!/proc/self/exe", an ELF interpreter) gets the
 * kernel to run *our* binary in its context, keeps a descriptor of it and
 * reopens it for writing once it is no longer busy.  Every process that
 * enters a guest must therefore run from a binary nobody can write through
 * /proc/self/exe: a read-only clone of its mount, detached (no path reaches
 * it; runc 1.2 uses an overlay the same way), or where that cannot be made,
 * a sealed memfd copy (runc before 1.2, LXC).
 */

/* Whether /proc/self/exe is on such a mount, or a memfd sealed against writes. */
bool vs_selfexe_sealed(void);
/*
 * Unless already sealed: execute /proc/self/exe again with @argv and @envp
 * from a read-only detached clone of its mount, else from a sealed memfd
 * copy.  Returns 0 if we already run sealed; otherwise only on failure
 * (-errno).
 */
int vs_selfexe_reexec_sealed(char **argv, char **envp, VsError *err);
