/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/*
 * Where an installation keeps its files.  Normally under /; with
 * VSERVER_ROOT=DIR (or --root-dir DIR) all of it lives under DIR, so a test
 * or a user can keep one installation apart from the others.
 */
typedef struct VsPaths {
        char root[PATH_MAX / 4];    /* "" for the real one */
        char host_conf[PATH_MAX];   /* etc/vserver/vserver.conf */
        char guests_conf[PATH_MAX]; /* etc/vserver/guests */
        char subid[PATH_MAX];       /* etc/vserver/subid: the guests' id ranges (idmap.h) */
        char guests[PATH_MAX];      /* var/lib/vserver/guests */
        char store[PATH_MAX];       /* var/lib/vserver/store: unify's shared copies (cow.h) */
        char run[PATH_MAX];         /* run/vserver */
        char log[PATH_MAX];         /* var/log/vserver */
} VsPaths;

/* The files of an installation's run directory, named in paths.c only. */
typedef enum {
        VS_RUN_GUEST_LOCK,       /* NAME.lock: one command at a time works on guest NAME */
        VS_RUN_GUEST_STARTED,    /* NAME.started: the guest file a running guest started with */
        VS_RUN_CONTEXT_LOCK,     /* context.lock: context ids are taken one build at a time */
        VS_RUN_CONTEXT_RESERVED, /* context.ID: an id a build holds until its file is written */
        VS_RUN_BPF,              /* bpf: the isolate mode's bpffs */
        VS_RUN_UNIFY_LOCK,       /* unify.lock: one unify, deunify or delete at a time */
        VS_RUN_UNIFY_PENDING,    /* unify.pending: a unify's work may be half done */
        VS_RUN_UNIFY_FROZEN,     /* unify.frozen: the guests that unify froze */
} VsRunFile;

/* The path of run file @f (@arg: the guest's name, or the context id, where it has one). */
const char *vs_paths_run(const VsPaths *p, VsRunFile f, const char *arg, char *buf, size_t size);

/*
 * What every installation on this host shares, whatever its root: the
 * context ids of running guests (their loopback addresses and veth names
 * are host-wide), the lock of the nftables tables.
 */
#define VS_HOST_RUN "/run/vserver-host"

/* @root: NULL or "" for the system installation, else an absolute directory. */
int vs_paths_init(VsPaths *p, const char *root, VsError *err);
/* mkdir -p of the directories a command is about to write to. */
int vs_paths_ensure(const VsPaths *p, VsError *err);
/* mkdir -p @path with @mode for created components; -errno. */
int vs_mkdir_p(const char *path, mode_t mode);
/* The lock file @path in @dir (made if missing), held exclusively: its fd, or -errno. */
int vs_lock_in(const char *dir, const char *path, VsError *err);

/* Guest names: 1-48 letters, digits, '-', '_', '.', starting with a letter or digit. */
bool vs_guest_name_valid(const char *name);
