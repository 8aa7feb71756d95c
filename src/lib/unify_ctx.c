/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unification: a run's context (trees opened, threads, clocks). */
#include "unify_int.h"

int unify_root_fd(const char *root, dev_t *ret_dev, VsError *err)
{
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
                return vs_error(err, errno, "open %s", root);
        if (fstat(fd, &st) < 0) {
                int e = errno;
                close(fd);
                return vs_error(err, e, "stat %s", root);
        }
        if (ret_dev)
                *ret_dev = st.st_dev;
        return fd;
}

long long unify_now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int jobs_of(const VsUnifyOptions *o, int per_cpu)
{
        if (o->jobs > 0)
                return o->jobs > 64 ? 64 : o->jobs;
        long n = sysconf(_SC_NPROCESSORS_ONLN) * per_cpu;
        return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/*
 * Run @fn on one thread per job; the caller reports progress (@count of
 * @total, 0: unknown) every tenth of a second meanwhile, or works along
 * when nobody watches.
 */
void unify_run_threads(Ctx *c, void *(*fn)(void *), void *arg, const char *phase,
                       atomic_uint_fast64_t *count, uint64_t total, int per_cpu)
{
        int jobs = jobs_of(c->o, per_cpu);
        pthread_t th[64];
        int started = 0;
        for (int i = c->o->progress ? 0 : 1; i < jobs; i++)
                if (pthread_create(&th[started], NULL, fn, arg) == 0)
                        started++;
        if (!c->o->progress || started == 0)
                fn(arg);
        for (int joined = 0; joined < started;) {
                struct timespec deadline;
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_nsec += 100000000;
                if (deadline.tv_nsec >= 1000000000) {
                        deadline.tv_sec++;
                        deadline.tv_nsec -= 1000000000;
                }
                if (!c->o->progress) {
                        pthread_join(th[joined++], NULL);
                } else if (pthread_timedjoin_np(th[joined], NULL, &deadline) == 0) {
                        joined++;
                } else {
                        VsUnifyProgress p = {phase, atomic_load(count), total};
                        c->o->progress(c->o->data, &p);
                }
        }
        if (c->o->progress) {
                VsUnifyProgress p = {phase, atomic_load(count), total ? total : atomic_load(count)};
                c->o->progress(c->o->data, &p);
        }
}

bool unify_fs_reflinks(int fd)
{
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return false;
        return sf.f_type == (typeof(sf.f_type))BTRFS_SUPER_MAGIC ||
               sf.f_type == (typeof(sf.f_type))XFS_SUPER_MAGIC;
}

/* ---- vs_unify -------------------------------------------------------------------------- */

void unify_ctx_free(Ctx *c)
{
        if (c->rootfd)
                for (int i = 0; i < c->ntrees; i++)
                        if (c->rootfd[i] >= 0)
                                close(c->rootfd[i]);
        free(c->rootfd);
        if (c->basefd)
                for (int i = 0; i < c->ntrees; i++)
                        if (c->basefd[i] >= 0)
                                close(c->basefd[i]);
        free(c->basefd);
        if (c->storefd >= 0)
                close(c->storefd);
        if (c->cow_names)
                for (size_t i = 0; i < c->ninos; i++)
                        free(c->cow_names[i]);
        free(c->cow_names);
        for (size_t i = 0; i < c->ncow_linked; i++)
                free(c->cow_linked[i]);
        free(c->cow_linked);
        for (size_t i = 0; i < c->npaths; i++)
                free(c->paths[i].rel);
        free(c->paths);
        free(c->inos);
        free(c->order);
        free(c->runs);
        for (size_t i = 0; i < c->nsets; i++)
                free(c->sets[i].ino);
        free(c->sets);
        pthread_mutex_destroy(&c->lock);
}

/* Overlay: the store (the last tree) and each guest's base and work directories. */
static int cow_init(Ctx *c)
{
        c->cow = true;
        c->store_tree = c->ntrees - 1;
        c->basefd = malloc((size_t)c->ntrees * sizeof *c->basefd);
        if (!c->basefd)
                return vs_error(&c->err, ENOMEM, "unify");
        for (int i = 0; i < c->ntrees; i++)
                c->basefd[i] = -1;
        c->storefd = fcntl(c->rootfd[c->store_tree], F_DUPFD_CLOEXEC, 3);
        struct stat st;
        if (c->storefd < 0 || fstat(c->storefd, &st) < 0)
                return vs_error(&c->err, errno, "open %s", c->o->store);
        c->store_dev = st.st_dev;
        for (int i = 0; i < c->store_tree; i++) {
                const VsUnifyTree *t = &c->trees[i];
                if (!t->base || !t->work || t->running)
                        return vs_error(&c->err, EINVAL, "%s: no overlay layers, or it runs",
                                        t->name);
                if (c->o->dry_run)
                        continue;
                if ((mkdir(t->work, 0700) < 0 && errno != EEXIST) ||
                    (mkdir(t->base, 0755) < 0 && errno != EEXIST))
                        return vs_error(&c->err, errno, "create %s and %s", t->base, t->work);
                c->basefd[i] = open(t->base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (c->basefd[i] < 0)
                        return vs_error(&c->err, errno, "open %s", t->base);
        }
        return 0;
}

int unify_ctx_init(Ctx *c, const VsUnifyTree *trees, int n, const VsUnifyOptions *o,
                   VsUnifyStats *st)
{
        *c = (Ctx){.trees = trees, .ntrees = n, .o = o, .st = st, .store_tree = -1, .storefd = -1};
        pthread_mutex_init(&c->lock, NULL);
        c->rootfd = malloc((size_t)(n ? n : 1) * sizeof *c->rootfd);
        if (!c->rootfd)
                return vs_error(&c->err, ENOMEM, "unify");
        for (int i = 0; i < n; i++)
                c->rootfd[i] = -1;
        for (int i = 0; i < n; i++) {
                c->rootfd[i] = unify_root_fd(trees[i].root, NULL, &c->err);
                if (c->rootfd[i] < 0)
                        return c->rootfd[i];
                if (trees[i].running)
                        c->any_running = true;
        }
        if (o->store)
                return cow_init(c);
        return 0;
}
