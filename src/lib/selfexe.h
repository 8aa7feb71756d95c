/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "error.h"

/*
 * The CVE-2019-5736 class: a guest whose init, command or shell resolves to
 * /proc/self/exe (a symlink, "#!/proc/self/exe", an ELF interpreter) gets the
 * kernel to run *our* binary in its context, keeps a descriptor of it and
 * reopens it for writing once it is no longer busy.  Every process that
 * enters a guest must therefore run from a sealed memfd copy of the binary:
 * /proc/self/exe then names that copy, and no write, truncate or grow of it
 * is allowed (runc and LXC do the same).
 */

/* Whether /proc/self/exe is a memfd sealed against writes. */
bool vs_selfexe_sealed(void);
/*
 * Unless already sealed: copy /proc/self/exe into a memfd, seal it and
 * fexecve it with @argv and @envp.  Returns 0 if we already run sealed;
 * otherwise only on failure (-errno).
 */
int vs_selfexe_reexec_sealed(char **argv, char **envp, VsError *err);
