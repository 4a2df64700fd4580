/*
 * powercutfs — a FUSE pass-through filesystem that can "cut the power".
 *
 * Everything is written through to a backing directory at once, but the daemon keeps an
 * undo log of what a real disk would not yet have: on `cut` it rolls the backing directory
 * back to the state a power cut would leave, then answers every further request with EIO
 * until the filesystem is unmounted and mounted again.
 *
 * The durability model (deliberately the pessimistic end of what POSIX allows; ext4 and xfs
 * keep more):
 *   - File contents and size: durable as of the last fsync or fdatasync of that inode
 *     (through any descriptor), or of a `syncfs` delivered through the control ioctl (see
 *     below). Writes, truncates and hole punches after that are undone: the file is cut back
 *     to its durable size and the durable bytes it overwrote are put back. An fsync of a
 *     file does NOT make its directory entry durable.
 *   - Directory entries: a create, mknod, mkdir, symlink, link, unlink or rmdir is durable
 *     once its parent directory is fsynced (open O_RDONLY + fsync: FUSE_FSYNCDIR); until
 *     then a cut undoes it: a created name disappears (with everything under it, if it is a
 *     directory), a removed name comes back pointing at the same inode. A rename (and
 *     RENAME_EXCHANGE) is atomic: it is durable once either of its two directories is
 *     fsynced (a journalling filesystem commits a rename as one transaction); until then it
 *     is reverted whole, and a file it replaced comes back. Committing a rename also commits
 *     the earlier unsynced operations on the same names, so the undo never conflicts.
 *   - syncfs(2) and sync(2) are not delivered to a /dev/fuse daemon (the kernel sends
 *     FUSE_SYNCFS only to virtiofs; libfuse 3.14 has no syncfs operation). The ioctl
 *     PC_IOC_SYNCFS on any file or directory of the mount commits everything (data and
 *     names), as syncfs does on a real disk; libpowercut-syncfs.so (LD_PRELOAD) issues it
 *     after every successful syncfs(2) on this filesystem, and `powercut sync` sends it by
 *     hand. Without the preload a syncfs commits nothing here.
 *   - Writes through a descriptor with O_DIRECT set (at open or by fcntl F_SETFL: FUSE
 *     passes the file's current flags with each write) are durable once written, together
 *     with the file size they reach. On a real disk an O_DIRECT write that extends a file
 *     or fills an unwritten extent still needs an fsync for the size/extent metadata; this
 *     tool is lenient there.
 *   - Inode attributes (mode, owner, times, xattrs) are written through and treated as
 *     durable at once: they are not rolled back.
 *   - Unsynced state lives in this process's memory (saved old bytes) and in a hidden
 *     directory BACKING/.powercut (unlinked inodes, replaced rename targets). A daemon that
 *     is killed instead of cut or unmounted leaves the backing directory in its current
 *     (not durable) state; the next mount empties .powercut and warns.
 *   - A clean unmount commits everything (like a clean shutdown).
 *   - The backing directory must be a single filesystem (inodes are identified by number).
 *   - st_nlink of a file with an unsynced unlink counts the hidden shadow link.
 *
 *   - A failing device, for one file: the ioctl PC_IOC_EIO on a descriptor of a regular file
 *     (`powercut eio FILE`) makes every later read of that inode answer EIO, through any
 *     descriptor, until the daemon ends. Writes, metadata and the other files are untouched.
 *
 * Run single-threaded (-s): every request, the cut included, sees a consistent log.
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <linux/falloc.h>
#include <unistd.h>
#include "powercut.h"

#define SHADOW ".powercut"

static int rootfd = -1, shadowfd = -1;
static ino_t root_ino;
static int is_cut;
/* Inodes whose reads fail with EIO (PC_IOC_EIO): a bad sector, for one file. */
#define MAX_EIO 64
static ino_t eio_inodes[MAX_EIO];
static int neio;

static int reads_fail(int fd) {
    if (!neio) return 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    for (int i = 0; i < neio; i++) if (eio_inodes[i] == st.st_ino) return 1;
    return 0;
}
static unsigned long shadow_seq;
static const char *backing_path;

static void logmsg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "powercutfs: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---------- paths ---------- */

static int hidden(const char *path) {
    return path && strncmp(path, "/" SHADOW, sizeof(SHADOW)) == 0 &&
           (path[sizeof(SHADOW)] == 0 || path[sizeof(SHADOW)] == '/');
}
static const char *rel(const char *path) { return path[1] ? path + 1 : "."; }
/* xattrs have no *at calls: they go by the backing directory's absolute path */
static const char *abs_path(char *buf, const char *path) {
    snprintf(buf, 2 * PATH_MAX, "%s%s", backing_path, path[1] ? path : "");
    return buf;
}

/* Opens PATH's parent directory (O_PATH) and points *name at its last component. */
static int parent_of(const char *path, char *buf, const char **name) {
    if (hidden(path)) return -EPERM;
    size_t n = strlen(path);
    if (n >= PATH_MAX) return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    *name = slash + 1;
    if (!**name) return -EINVAL;
    int fd;
    if (slash == buf) fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    else { *slash = 0; fd = openat(rootfd, buf + 1, O_PATH | O_DIRECTORY | O_CLOEXEC); }
    *name = path + (slash - buf) + 1;
    return fd < 0 ? -errno : fd;
}

static ino_t ino_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* ---------- data undo: per inode ---------- */

struct saved { off_t off, len; char *data; /* NULL: zeros */ };
struct dfile {
    ino_t ino;
    int fd;              /* our own O_RDWR descriptor of the inode */
    off_t dsize;         /* durable size */
    struct saved *sv; size_t nsv, capsv;      /* durable bytes that were overwritten */
    off_t (*cov)[2]; size_t ncov, capcov;     /* sorted disjoint ranges already saved */
    struct dfile *next;
};
#define NBUCKET 4096
static struct dfile *dtab[NBUCKET];
static size_t ndirty;

static struct dfile **dslot(ino_t ino) {
    struct dfile **p = &dtab[ino % NBUCKET];
    while (*p && (*p)->ino != ino) p = &(*p)->next;
    return p;
}

static void dfree(struct dfile **p) {
    struct dfile *d = *p;
    *p = d->next;
    for (size_t i = 0; i < d->nsv; i++) free(d->sv[i].data);
    free(d->sv); free(d->cov); close(d->fd); free(d);
    ndirty--;
}

/* The record of the inode open as FD, created (durable = as it is now) if missing. */
static struct dfile *dget(int fd, int create) {
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL;
    struct dfile **p = dslot(st.st_ino);
    if (*p || !create) return *p;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int own = open(proc, O_RDWR | O_CLOEXEC);
    if (own < 0) { logmsg("cannot reopen inode %lu: %s", (unsigned long)st.st_ino, strerror(errno)); return NULL; }
    struct dfile *d = calloc(1, sizeof *d);
    d->ino = st.st_ino; d->fd = own; d->dsize = st.st_size;
    *p = d;
    ndirty++;
    return d;
}

static int cov_add(struct dfile *d, off_t a, off_t b) {
    if (d->ncov == d->capcov) {
        d->capcov = d->capcov ? 2 * d->capcov : 8;
        d->cov = realloc(d->cov, d->capcov * sizeof *d->cov);
    }
    size_t i = 0;
    while (i < d->ncov && d->cov[i][1] < a) i++;
    /* merge every range overlapping or touching [a,b) */
    size_t j = i;
    while (j < d->ncov && d->cov[j][0] <= b) {
        if (d->cov[j][0] < a) a = d->cov[j][0];
        if (d->cov[j][1] > b) b = d->cov[j][1];
        j++;
    }
    memmove(&d->cov[i + 1], &d->cov[j], (d->ncov - j) * sizeof *d->cov);
    d->ncov = d->ncov - (j - i) + 1;
    d->cov[i][0] = a; d->cov[i][1] = b;
    return 0;
}

static int save_range(struct dfile *d, off_t a, off_t b, int zeros) {
    if (b <= a) return 0;
    char *buf = NULL;
    if (!zeros) {
        buf = malloc(b - a);
        if (!buf) return -ENOMEM;
        off_t done = 0;
        while (done < b - a) {
            ssize_t r = pread(d->fd, buf + done, b - a - done, a + done);
            if (r < 0) { free(buf); return -errno; }
            if (r == 0) { memset(buf + done, 0, b - a - done); break; }
            done += r;
        }
    }
    if (d->nsv == d->capsv) {
        d->capsv = d->capsv ? 2 * d->capsv : 8;
        d->sv = realloc(d->sv, d->capsv * sizeof *d->sv);
    }
    d->sv[d->nsv++] = (struct saved){a, b - a, buf};
    return 0;
}

/* Before [a,b) of the inode changes: save its durable bytes that are not saved yet. */
static int protect(struct dfile *d, off_t a, off_t b) {
    if (b > d->dsize) b = d->dsize;
    if (a >= b) return 0;
    off_t pos = a;
    for (size_t i = 0; i < d->ncov && pos < b; i++) {
        if (d->cov[i][1] <= pos) continue;
        if (d->cov[i][0] >= b) break;
        if (d->cov[i][0] > pos) { int e = save_range(d, pos, d->cov[i][0], 0); if (e) return e; }
        pos = d->cov[i][1];
    }
    if (pos < b) { int e = save_range(d, pos, b, 0); if (e) return e; }
    return cov_add(d, a, b);
}

/* An O_DIRECT write of [a,b): those bytes (and the size up to b) are durable now. */
static void make_durable_range(struct dfile *d, off_t a, off_t b) {
    if (a > d->dsize) { save_range(d, d->dsize, a, 1); cov_add(d, d->dsize, a); }
    /* forget saved bytes inside [a,b): keep the parts of each saved range outside it */
    struct saved *nsv = malloc((2 * d->nsv + 1) * sizeof *nsv);
    size_t k = 0;
    for (size_t i = 0; i < d->nsv; i++) {
        struct saved s = d->sv[i];
        off_t s0 = s.off, s1 = s.off + s.len;
        if (s1 <= a || s0 >= b) { nsv[k++] = s; continue; }
        if (s0 < a) {
            struct saved h = {s0, a - s0, NULL};
            if (s.data) { h.data = malloc(a - s0); memcpy(h.data, s.data, a - s0); }
            nsv[k++] = h;
        }
        if (s1 > b) {
            struct saved t = {b, s1 - b, NULL};
            if (s.data) { t.data = malloc(s1 - b); memcpy(t.data, s.data + (b - s0), s1 - b); }
            nsv[k++] = t;
        }
        free(s.data);
    }
    free(d->sv); d->sv = nsv; d->nsv = k; d->capsv = k > 0 ? k : 1;
    /* and the coverage of [a,b): a later buffered write there saves the new durable bytes */
    off_t (*nc)[2] = malloc((d->ncov + 2) * sizeof *nc);
    size_t n = 0;
    for (size_t i = 0; i < d->ncov; i++) {
        off_t c0 = d->cov[i][0], c1 = d->cov[i][1];
        if (c1 <= a || c0 >= b) { nc[n][0] = c0; nc[n][1] = c1; n++; continue; }
        if (c0 < a) { nc[n][0] = c0; nc[n][1] = a; n++; }
        if (c1 > b) { nc[n][0] = b; nc[n][1] = c1; n++; }
    }
    free(d->cov); d->cov = nc; d->ncov = n; d->capcov = d->ncov + 2;
    if (b > d->dsize) d->dsize = b;
}

static void data_commit_ino(ino_t ino) {
    struct dfile **p = dslot(ino);
    if (*p) dfree(p);
}

/* Drops the record of an inode that no name reaches any more. */
static void data_forget_orphan(ino_t ino) {
    struct dfile **p = dslot(ino);
    struct stat st;
    if (*p && fstat((*p)->fd, &st) == 0 && st.st_nlink == 0) dfree(p);
}

static int data_rollback(struct dfile *d) {
    int bad = 0;
    if (ftruncate(d->fd, d->dsize) != 0) bad = 1;
    static char zeros[65536];
    for (size_t i = 0; i < d->nsv; i++) {
        struct saved *s = &d->sv[i];
        off_t done = 0;
        while (done < s->len) {
            size_t n = s->data ? (size_t)(s->len - done) : (size_t)(s->len - done > (off_t)sizeof zeros ? (off_t)sizeof zeros : s->len - done);
            ssize_t w = pwrite(d->fd, s->data ? s->data + done : zeros, n, s->off + done);
            if (w <= 0) { bad = 1; break; }
            done += w;
        }
    }
    if (bad) logmsg("rollback of inode %lu failed: %s", (unsigned long)d->ino, strerror(errno));
    return bad;
}

/* ---------- namespace undo: a list of unsynced operations, oldest first ---------- */

enum { OP_CREATE, OP_UNLINK, OP_RENAME, OP_EXCHANGE };
struct nsop {
    int kind;
    int fd1, fd2;        /* O_PATH descriptors of the directories (fd2: rename target) */
    ino_t d1, d2;
    char *n1, *n2;
    char *shadow;        /* name in .powercut of an unlinked inode or a replaced target */
    struct nsop *prev, *next;
};
static struct nsop *ohead, *otail;
static size_t nops;

static void op_append(struct nsop *o) {
    o->prev = otail; o->next = NULL;
    if (otail) otail->next = o; else ohead = o;
    otail = o;
    nops++;
}
static void op_remove(struct nsop *o) {
    if (o->prev) o->prev->next = o->next; else ohead = o->next;
    if (o->next) o->next->prev = o->prev; else otail = o->prev;
    nops--;
}

static void rm_rf_at(int at, const char *name) {
    if (unlinkat(at, name, 0) == 0 || errno == ENOENT) return;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        DIR *dir = fdopendir(fd);
        struct dirent *e;
        char **names = NULL; size_t n = 0;
        while ((e = readdir(dir))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
        for (size_t i = 0; i < n; i++) { rm_rf_at(dirfd(dir), names[i]); free(names[i]); }
        free(names);
        closedir(dir);
    }
    if (unlinkat(at, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        logmsg("cannot remove %s: %s", name, strerror(errno));
}

static void op_free(struct nsop *o) {
    if (o->fd1 >= 0) close(o->fd1);
    if (o->fd2 >= 0) close(o->fd2);
    free(o->n1); free(o->n2); free(o->shadow); free(o);
}

/* Durable: the shadow copy of a removed or replaced inode goes for real. */
static void op_commit(struct nsop *o) {
    op_remove(o);
    if (o->shadow) {
        struct stat st;
        ino_t ino = fstatat(shadowfd, o->shadow, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_ino : 0;
        rm_rf_at(shadowfd, o->shadow);
        if (ino) data_forget_orphan(ino);
    }
    op_free(o);
}

static int touches(struct nsop *o, ino_t d, const char *n) {
    if (o->d1 == d && !strcmp(o->n1, n)) return 1;
    return o->n2 && o->d2 == d && !strcmp(o->n2, n);
}

/* Commits O and, first, every earlier unsynced operation on one of its names. */
static void commit_closure(struct nsop *o) {
    for (struct nsop *p = o->prev; p;) {
        struct nsop *prev = p->prev;
        if (touches(p, o->d1, o->n1) || (o->n2 && touches(p, o->d2, o->n2))) {
            commit_closure(p);
            /* p and some of its predecessors are gone: restart from o */
            prev = o->prev;
        }
        p = prev;
    }
    op_commit(o);
}

static void commit_dir(ino_t d) {
    for (struct nsop *o = otail; o;) {
        if (o->d1 == d || (o->n2 && o->d2 == d)) {
            commit_closure(o);
            o = otail; /* the list changed; scan again from the end (already durable ops are gone) */
            continue;
        }
        o = o->prev;
    }
}

static struct nsop *last_on(ino_t d, const char *n) {
    for (struct nsop *o = otail; o; o = o->prev)
        if (touches(o, d, n)) return o;
    return NULL;
}

static char *new_shadow_name(void) {
    char *s = malloc(32);
    snprintf(s, 32, "%lu", ++shadow_seq);
    return s;
}

static struct nsop *op_new(int kind, int fd1, const char *n1) {
    struct nsop *o = calloc(1, sizeof *o);
    o->kind = kind;
    o->fd1 = dup(fd1); o->d1 = ino_of(fd1); o->n1 = strdup(n1);
    o->fd2 = -1;
    return o;
}

static void undo(struct nsop *o) {
    int rc = 0;
    switch (o->kind) {
    case OP_CREATE: {
        char *s = new_shadow_name();
        rc = renameat(o->fd1, o->n1, shadowfd, s);
        free(s);
        break;
    }
    case OP_UNLINK:
        rc = renameat(shadowfd, o->shadow, o->fd1, o->n1);
        break;
    case OP_RENAME:
        rc = renameat(o->fd2, o->n2, o->fd1, o->n1);
        if (rc == 0 && o->shadow) rc = renameat(shadowfd, o->shadow, o->fd2, o->n2);
        break;
    case OP_EXCHANGE:
        rc = renameat2(o->fd1, o->n1, o->fd2, o->n2, RENAME_EXCHANGE);
        break;
    }
    if (rc != 0) logmsg("undo of %s %s failed: %s", o->kind == OP_CREATE ? "create" : o->kind == OP_UNLINK ? "unlink" : "rename", o->n1, strerror(errno));
}

/* ---------- control ---------- */

static void commit_all(void) {
    while (ohead) op_commit(ohead);
    for (int i = 0; i < NBUCKET; i++) while (dtab[i]) dfree(&dtab[i]);
}

static void empty_shadow(void) {
    DIR *dir = fdopendir(dup(shadowfd));
    if (!dir) return;
    rewinddir(dir); /* the duplicate shares its offset with shadowfd, at the end after a first listing */
    struct dirent *e;
    char **names = NULL; size_t n = 0;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    for (size_t i = 0; i < n; i++) { rm_rf_at(shadowfd, names[i]); free(names[i]); }
    free(names);
}

static void power_cut(void) {
    size_t files = ndirty, ops = nops;
    for (int i = 0; i < NBUCKET; i++) {
        while (dtab[i]) { data_rollback(dtab[i]); dfree(&dtab[i]); }
    }
    while (otail) {
        struct nsop *o = otail;
        op_remove(o);
        undo(o);
        op_free(o);
    }
    empty_shadow();
    is_cut = 1;
    logmsg("power cut: rolled back %zu files and %zu directory operations", files, ops);
}

#define CHECK_CUT() do { if (is_cut) return -EIO; } while (0)

/* ---------- operations ---------- */

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    cfg->use_ino = 1;
    cfg->readdir_ino = 1;
    cfg->nullpath_ok = 1;
    cfg->hard_remove = 1;
    cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
    cfg->direct_io = 0;
    cfg->kernel_cache = 0;
    if (conn->capable & FUSE_CAP_IOCTL_DIR) conn->want |= FUSE_CAP_IOCTL_DIR;
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* writes must reach us when they are made */
    conn->max_write = 1 << 20;
    return NULL;
}

static void pc_destroy(void *p) {
    (void)p;
    if (!is_cut) commit_all();
    empty_shadow();
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    if (is_cut && !(path && !strcmp(path, "/"))) return -EIO; /* the root stays, for the control ioctl */
    if (fi) return fstat(fi->fh, st) == 0 ? 0 : -errno;
    if (hidden(path)) return -ENOENT;
    return fstatat(rootfd, rel(path), st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) == 0 ? 0 : -errno;
}

static int pc_readlink(const char *path, char *buf, size_t size) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    ssize_t n = readlinkat(rootfd, rel(path), buf, size - 1);
    if (n < 0) return -errno;
    buf[n] = 0;
    return 0;
}

static void own(int dirfd, const char *name) {
    struct fuse_context *c = fuse_get_context();
    if (geteuid() == 0) fchownat(dirfd, name, c->uid, c->gid, AT_SYMLINK_NOFOLLOW);
}

/* Records the creation of NAME in the directory PFD (called after it was created). */
static void record_create(int pfd, const char *name) {
    op_append(op_new(OP_CREATE, pfd, name));
}

static int pc_mknod(const char *path, mode_t mode, dev_t rdev) {
    CHECK_CUT();
    char buf[PATH_MAX]; const char *name;
    int pfd = parent_of(path, buf, &name);
    if (pfd < 0) return pfd;
    int rc = mknodat(pfd, name, mode, rdev) == 0 ? 0 : -errno;
    if (!rc) { own(pfd, name); record_create(pfd, name); }
    close(pfd);
    return rc;
}

static int pc_mkdir(const char *path, mode_t mode) {
    CHECK_CUT();
    char buf[PATH_MAX]; const char *name;
    int pfd = parent_of(path, buf, &name);
    if (pfd < 0) return pfd;
    int rc = mkdirat(pfd, name, mode) == 0 ? 0 : -errno;
    if (!rc) { own(pfd, name); record_create(pfd, name); }
    close(pfd);
    return rc;
}

static int pc_symlink(const char *target, const char *path) {
    CHECK_CUT();
    char buf[PATH_MAX]; const char *name;
    int pfd = parent_of(path, buf, &name);
    if (pfd < 0) return pfd;
    int rc = symlinkat(target, pfd, name) == 0 ? 0 : -errno;
    if (!rc) { own(pfd, name); record_create(pfd, name); }
    close(pfd);
    return rc;
}

static int pc_link(const char *from, const char *to) {
    CHECK_CUT();
    if (hidden(from)) return -ENOENT;
    char buf[PATH_MAX]; const char *name;
    int pfd = parent_of(to, buf, &name);
    if (pfd < 0) return pfd;
    int rc = linkat(rootfd, rel(from), pfd, name, 0) == 0 ? 0 : -errno;
    if (!rc) record_create(pfd, name);
    close(pfd);
    return rc;
}

/* unlink and rmdir: an unsynced removal moves the inode into .powercut. */
static int remove_entry(const char *path, int isdir) {
    CHECK_CUT();
    char buf[PATH_MAX]; const char *name;
    int pfd = parent_of(path, buf, &name);
    if (pfd < 0) return pfd;
    struct stat st;
    int rc = 0;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) { rc = -errno; goto out; }
    if (isdir && !S_ISDIR(st.st_mode)) { rc = -ENOTDIR; goto out; }
    if (!isdir && S_ISDIR(st.st_mode)) { rc = -EISDIR; goto out; }
    ino_t d = ino_of(pfd);
    struct nsop *last = last_on(d, name);
    if (last && last->kind == OP_CREATE) {
        /* created since the last sync of the directory: gone as if never made */
        if (unlinkat(pfd, name, isdir ? AT_REMOVEDIR : 0) != 0) { rc = -errno; goto out; }
        op_remove(last); op_free(last);
        data_forget_orphan(st.st_ino);
        goto out;
    }
    if (isdir) { /* rmdir's checks: it must be empty */
        int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) { rc = -errno; goto out; }
        DIR *dir = fdopendir(fd);
        struct dirent *e;
        while ((e = readdir(dir)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { rc = -ENOTEMPTY; break; }
        closedir(dir);
        if (rc) goto out;
    }
    struct nsop *o = op_new(OP_UNLINK, pfd, name);
    o->shadow = new_shadow_name();
    if (renameat(pfd, name, shadowfd, o->shadow) != 0) { rc = -errno; op_free(o); goto out; }
    op_append(o);
    data_forget_orphan(st.st_ino);
out:
    close(pfd);
    return rc;
}
static int pc_unlink(const char *path) { return remove_entry(path, 0); }
static int pc_rmdir(const char *path) { return remove_entry(path, 1); }

static int dir_is_empty(int pfd, const char *name) {
    int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *dir = fdopendir(fd);
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
    closedir(dir);
    return empty;
}

static int pc_rename(const char *from, const char *to, unsigned int flags) {
    CHECK_CUT();
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -EINVAL;
    char b1[PATH_MAX], b2[PATH_MAX]; const char *n1, *n2;
    int fd1 = parent_of(from, b1, &n1);
    if (fd1 < 0) return fd1;
    int fd2 = parent_of(to, b2, &n2);
    if (fd2 < 0) { close(fd1); return fd2; }
    int rc = 0;
    struct stat s1, s2;
    if (fstatat(fd1, n1, &s1, AT_SYMLINK_NOFOLLOW) != 0) { rc = -errno; goto out; }
    int target = fstatat(fd2, n2, &s2, AT_SYMLINK_NOFOLLOW) == 0;
    struct nsop *o = op_new(flags & RENAME_EXCHANGE ? OP_EXCHANGE : OP_RENAME, fd1, n1);
    o->fd2 = dup(fd2); o->d2 = ino_of(fd2); o->n2 = strdup(n2);
    if (flags & RENAME_EXCHANGE) {
        if (renameat2(fd1, n1, fd2, n2, RENAME_EXCHANGE) != 0) { rc = -errno; op_free(o); goto out; }
        op_append(o);
        goto out;
    }
    if (target) {
        if (flags & RENAME_NOREPLACE) { rc = -EEXIST; op_free(o); goto out; }
        if (s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino) { /* POSIX: nothing happens */
            op_free(o);
            goto out;
        }
        if (S_ISDIR(s1.st_mode) && !S_ISDIR(s2.st_mode)) { rc = -ENOTDIR; op_free(o); goto out; }
        if (!S_ISDIR(s1.st_mode) && S_ISDIR(s2.st_mode)) { rc = -EISDIR; op_free(o); goto out; }
        if (S_ISDIR(s2.st_mode)) {
            int e = dir_is_empty(fd2, n2);
            if (e <= 0) { rc = e < 0 ? e : -ENOTEMPTY; op_free(o); goto out; }
        }
        o->shadow = new_shadow_name();
        if (renameat(fd2, n2, shadowfd, o->shadow) != 0) { rc = -errno; op_free(o); goto out; }
    }
    if (renameat2(fd1, n1, fd2, n2, flags) != 0) {
        rc = -errno;
        if (o->shadow) renameat(shadowfd, o->shadow, fd2, n2);
        op_free(o);
        goto out;
    }
    op_append(o);
    if (target) data_forget_orphan(s2.st_ino);
out:
    close(fd1); close(fd2);
    return rc;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
    CHECK_CUT();
    if (fi) return fchmod(fi->fh, mode) == 0 ? 0 : -errno;
    if (hidden(path)) return -ENOENT;
    return fchmodat(rootfd, rel(path), mode, 0) == 0 ? 0 : -errno;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
    CHECK_CUT();
    if (fi) return fchown(fi->fh, uid, gid) == 0 ? 0 : -errno;
    if (hidden(path)) return -ENOENT;
    return fchownat(rootfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) == 0 ? 0 : -errno;
}

static int pc_utimens(const char *path, const struct timespec ts[2], struct fuse_file_info *fi) {
    CHECK_CUT();
    if (fi) return futimens(fi->fh, ts) == 0 ? 0 : -errno;
    if (hidden(path)) return -ENOENT;
    return utimensat(rootfd, rel(path), ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int tracked_truncate(int fd, off_t size) {
    struct dfile *d = dget(fd, 1);
    if (!d) return -EIO;
    int e = protect(d, size, d->dsize);
    if (e) return e;
    return ftruncate(fd, size) == 0 ? 0 : -errno;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    CHECK_CUT();
    if (fi) return tracked_truncate(fi->fh, size);
    if (hidden(path)) return -ENOENT;
    int fd = openat(rootfd, rel(path), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -errno;
    int rc = tracked_truncate(fd, size);
    close(fd);
    return rc;
}

static int backing_flags(int flags) {
    flags &= ~(O_DIRECT | O_APPEND | O_TRUNC | O_NOFOLLOW);
    return flags | O_CLOEXEC;
}

static int finish_open(int fd, int flags, struct fuse_file_info *fi) {
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > 0) {
            int rc = tracked_truncate(fd, 0);
            if (rc) { close(fd); return rc; }
        }
    }
    fi->fh = fd;
    fi->keep_cache = 0;
    return 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    int fd = openat(rootfd, rel(path), backing_flags(fi->flags));
    if (fd < 0) return -errno;
    return finish_open(fd, fi->flags, fi);
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    CHECK_CUT();
    char buf[PATH_MAX]; const char *name;
    int pfd = parent_of(path, buf, &name);
    if (pfd < 0) return pfd;
    struct stat st;
    int existed = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int fd = openat(pfd, name, backing_flags(fi->flags) | O_CREAT, mode);
    if (fd < 0) { int e = -errno; close(pfd); return e; }
    if (!existed) { own(pfd, name); record_create(pfd, name); }
    close(pfd);
    return finish_open(fd, fi->flags, fi);
}

static int pc_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)path;
    CHECK_CUT();
    if (reads_fail(fi->fh)) return -EIO;
    ssize_t n = pread(fi->fh, buf, size, off);
    return n < 0 ? -errno : (int)n;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)path;
    CHECK_CUT();
    int direct = (fi->flags & O_DIRECT) && !fi->writepage;
    struct dfile *d = dget(fi->fh, !direct);
    if (d && !direct) {
        int e = protect(d, off, off + size);
        if (e) return e;
    }
    ssize_t n = pwrite(fi->fh, buf, size, off);
    if (n < 0) return -errno;
    if (d && direct) make_durable_range(d, off, off + n);
    return (int)n;
}

static int pc_statfs(const char *path, struct statvfs *st) {
    (void)path;
    CHECK_CUT();
    return fstatvfs(rootfd, st) == 0 ? 0 : -errno;
}

static int pc_flush(const char *path, struct fuse_file_info *fi) { (void)path; (void)fi; return is_cut ? -EIO : 0; }

static int pc_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    close(fi->fh);
    return 0;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path; (void)datasync;
    CHECK_CUT();
    data_commit_ino(ino_of(fi->fh));
    return 0;
}

static int pc_setxattr(const char *path, const char *name, const char *value, size_t size, int flags) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    char p[2 * PATH_MAX];
    return lsetxattr(abs_path(p, path), name, value, size, flags) == 0 ? 0 : -errno;
}

static int pc_getxattr(const char *path, const char *name, char *value, size_t size) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    char p[2 * PATH_MAX];
    ssize_t n = lgetxattr(abs_path(p, path), name, value, size);
    return n < 0 ? -errno : (int)n;
}

static int pc_listxattr(const char *path, char *list, size_t size) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    char p[2 * PATH_MAX];
    ssize_t n = llistxattr(abs_path(p, path), list, size);
    return n < 0 ? -errno : (int)n;
}

static int pc_removexattr(const char *path, const char *name) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    char p[2 * PATH_MAX];
    return lremovexattr(abs_path(p, path), name) == 0 ? 0 : -errno;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
    /* the root stays openable after a cut so that the control ioctl still answers */
    if (is_cut && strcmp(path, "/")) return -EIO;
    if (hidden(path)) return -ENOENT;
    int fd = openat(rootfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    fi->fh = fd;
    return 0;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
    (void)off; (void)flags;
    CHECK_CUT();
    int fd = openat(fi->fh, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *dir = fdopendir(fd);
    if (!dir) { int e = -errno; close(fd); return e; }
    (void)path; /* NULL with nullpath_ok: the root is recognised by its inode */
    int root = ino_of(fi->fh) == root_ino;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (root && !strcmp(e->d_name, SHADOW)) continue;
        struct stat st = {0};
        st.st_ino = e->d_ino;
        st.st_mode = (mode_t)DTTOIF(e->d_type);
        if (filler(buf, e->d_name, &st, 0, 0)) break;
    }
    closedir(dir);
    return 0;
}

static int pc_releasedir(const char *path, struct fuse_file_info *fi) {
    (void)path;
    close(fi->fh);
    return 0;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path; (void)datasync;
    CHECK_CUT();
    commit_dir(ino_of(fi->fh));
    return 0;
}

static int pc_access(const char *path, int mask) {
    CHECK_CUT();
    if (hidden(path)) return -ENOENT;
    return faccessat(rootfd, rel(path), mask, AT_EACCESS) == 0 ? 0 : -errno;
}

static int pc_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
    (void)path;
    CHECK_CUT();
    if (!fi) return -EOPNOTSUPP;
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) return -EOPNOTSUPP;
    struct dfile *d = dget(fi->fh, 1);
    if (!d) return -EIO;
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        int e = protect(d, off, off + len);
        if (e) return e;
    }
    return fallocate(fi->fh, mode, off, len) == 0 ? 0 : -errno;
}

static int pc_ioctl(const char *path, unsigned int cmd, void *arg, struct fuse_file_info *fi,
                    unsigned int flags, void *data) {
    (void)path; (void)arg; (void)fi; (void)flags;
    switch (cmd) {
    case PC_IOC_CUT:
        /* A dead mount has nothing more to lose. (Seen once: a second PC_IOC_CUT right after
         * the first, as if the kernel restarted an ioctl interrupted during a long rollback.) */
        if (is_cut) { logmsg("cut again: nothing to do"); return 0; }
        power_cut();
        return 0;
    case PC_IOC_SYNCFS:
        if (is_cut) return -EIO;
        commit_all();
        empty_shadow();
        return 0;
    case PC_IOC_EIO: {
        struct stat st;
        if (!fi || fstat(fi->fh, &st) != 0 || !S_ISREG(st.st_mode)) return -EINVAL;
        if (reads_fail(fi->fh)) return 0;
        if (neio == MAX_EIO) return -ENOSPC;
        eio_inodes[neio++] = st.st_ino;
        logmsg("reads of inode %llu fail with EIO from now on", (unsigned long long)st.st_ino);
        return 0;
    }
    case PC_IOC_STATUS: {
        struct pc_status *s = data;
        memset(s, 0, sizeof *s);
        s->cut = is_cut;
        s->pid = getpid();
        s->dirty_files = ndirty;
        s->pending_dir_ops = nops;
        return 0;
    }
    }
    return -ENOTTY;
}

static const struct fuse_operations ops = {
    .init = pc_init, .destroy = pc_destroy,
    .getattr = pc_getattr, .readlink = pc_readlink, .mknod = pc_mknod, .mkdir = pc_mkdir,
    .unlink = pc_unlink, .rmdir = pc_rmdir, .symlink = pc_symlink, .rename = pc_rename,
    .link = pc_link, .chmod = pc_chmod, .chown = pc_chown, .truncate = pc_truncate,
    .open = pc_open, .read = pc_read, .write = pc_write, .statfs = pc_statfs,
    .flush = pc_flush, .release = pc_release, .fsync = pc_fsync,
    .setxattr = pc_setxattr, .getxattr = pc_getxattr, .listxattr = pc_listxattr,
    .removexattr = pc_removexattr, .opendir = pc_opendir, .readdir = pc_readdir,
    .releasedir = pc_releasedir, .fsyncdir = pc_fsyncdir, .access = pc_access,
    .create = pc_create, .utimens = pc_utimens, .fallocate = pc_fallocate, .ioctl = pc_ioctl,
};

/* powercutfs --ctl cut|sync|status MOUNTPOINT, powercutfs --ctl eio FILE */
static int control(const char *what, const char *mnt) {
    int eio = !strcmp(what, "eio");
    int fd = open(mnt, O_RDONLY | (eio ? 0 : O_DIRECTORY) | O_CLOEXEC);
    if (fd < 0) { fprintf(stderr, "powercut: %s: %s\n", mnt, strerror(errno)); return 1; }
    int rc;
    if (!strcmp(what, "cut")) rc = ioctl(fd, PC_IOC_CUT);
    else if (!strcmp(what, "sync")) rc = ioctl(fd, PC_IOC_SYNCFS);
    else if (eio) rc = ioctl(fd, PC_IOC_EIO);
    else if (!strcmp(what, "status")) {
        struct pc_status s;
        rc = ioctl(fd, PC_IOC_STATUS, &s);
        if (rc == 0)
            printf("cut=%llu pid=%llu dirty_files=%llu pending_dir_ops=%llu\n", (unsigned long long)s.cut,
                   (unsigned long long)s.pid, (unsigned long long)s.dirty_files, (unsigned long long)s.pending_dir_ops);
    } else { fprintf(stderr, "powercut: unknown control %s\n", what); return 2; }
    if (rc != 0) { fprintf(stderr, "powercut: %s %s: %s\n", what, mnt, strerror(errno)); return 1; }
    return 0;
}

int main(int argc, char *argv[]) {
    if (argc == 4 && !strcmp(argv[1], "--ctl")) return control(argv[2], argv[3]);
    /* powercutfs BACKING MOUNTPOINT [fuse options...] */
    if (argc < 3) {
        fprintf(stderr, "usage: powercutfs BACKING MOUNTPOINT [FUSE options]\n");
        return 2;
    }
    backing_path = realpath(argv[1], NULL);
    if (!backing_path) { perror(argv[1]); return 1; }
    umask(0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    rootfd = open(backing_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) { perror(backing_path); return 1; }
    root_ino = ino_of(rootfd);
    if (mkdirat(rootfd, SHADOW, 0700) != 0 && errno != EEXIST) { perror(SHADOW); return 1; }
    shadowfd = openat(rootfd, SHADOW, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shadowfd < 0) { perror(SHADOW); return 1; }
    /* One daemon per backing directory: a new mount waits for the previous daemon to finish. */
    if (flock(shadowfd, LOCK_EX) != 0) { perror("flock"); return 1; }
    DIR *dir = fdopendir(dup(shadowfd));
    if (dir) rewinddir(dir);
    int leftovers = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) leftovers++;
    if (dir) closedir(dir);
    if (leftovers) {
        logmsg("warning: %s/" SHADOW " held %d entries from a daemon that did not finish; removed", backing_path, leftovers);
        empty_shadow();
    }
    /* argv for fuse_main: program, mountpoint, options */
    char **fargv = calloc(argc + 2, sizeof *fargv);
    int n = 0;
    fargv[n++] = argv[0];
    fargv[n++] = argv[2];
    for (int i = 3; i < argc; i++) fargv[n++] = argv[i];
    return fuse_main(n, fargv, &ops, NULL);
}
