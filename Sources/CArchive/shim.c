#define _GNU_SOURCE
#include "CArchive.h"
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <zlib.h>
#include <zstd.h>
#include <xxhash.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

const unsigned int strata_AE_IFMT = AE_IFMT;
const unsigned int strata_AE_IFREG = AE_IFREG;
const unsigned int strata_AE_IFLNK = AE_IFLNK;
const unsigned int strata_AE_IFDIR = AE_IFDIR;
const unsigned int strata_AE_IFCHR = AE_IFCHR;
const unsigned int strata_AE_IFBLK = AE_IFBLK;
const unsigned int strata_AE_IFIFO = AE_IFIFO;
const unsigned int strata_AE_IFSOCK = AE_IFSOCK;

struct strata_locale_token { locale_t mine; locale_t previous; };

void *strata_locale_enter(void) {
    struct strata_locale_token *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->mine = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (t->mine == (locale_t)0) t->mine = newlocale(LC_CTYPE_MASK, "C.utf8", (locale_t)0);
    if (t->mine != (locale_t)0) t->previous = uselocale(t->mine);
    return t;
}

void strata_locale_restore(void *token) {
    struct strata_locale_token *t = token;
    if (!t) return;
    if (t->mine != (locale_t)0) {
        uselocale(t->previous);
        freelocale(t->mine);
    }
    free(t);
}

struct strata_decoder {
    int codec;
    int complete;      /* input so far ends at a member/frame boundary */
    int in_member;     /* inside a gzip member */
    int check;         /* verify each gzip member's CRC-32 and length */
    z_stream z;
    ZSTD_DStream *zs;
    char error[160];
};

strata_decoder *strata_decoder_new(int codec, int check) {
    strata_decoder *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->codec = codec;
    d->check = check;
    if (codec == STRATA_CODEC_GZIP) {
        if (inflateInit2(&d->z, 15 + 16) != Z_OK) { free(d); return NULL; }
        if (!check) inflateValidate(&d->z, 0);
    } else if (codec == STRATA_CODEC_ZSTD) {
        d->zs = ZSTD_createDStream();
        if (!d->zs) { free(d); return NULL; }
        ZSTD_initDStream(d->zs);
    } else {
        free(d);
        return NULL;
    }
    return d;
}

void strata_decoder_free(strata_decoder *d) {
    if (!d) return;
    if (d->codec == STRATA_CODEC_GZIP) inflateEnd(&d->z);
    if (d->zs) ZSTD_freeDStream(d->zs);
    free(d);
}

int strata_decoder_complete(const strata_decoder *d) { return d->complete; }
const char *strata_decoder_error(const strata_decoder *d) { return d->error; }

static int gzip_step(strata_decoder *d, const unsigned char *in, size_t inlen, size_t *consumed,
                     unsigned char *out, size_t outcap, size_t *produced) {
    *consumed = 0; *produced = 0;
    if (!d->in_member) {
        /* Between members: skip zero padding, otherwise expect a new gzip header. */
        size_t i = 0;
        if (d->complete) {
            while (i < inlen && in[i] == 0) i++;
            if (i == inlen) { *consumed = inlen; return 0; }
            if (in[i] != 0x1f) {
                snprintf(d->error, sizeof d->error, "unexpected data after the end of the gzip stream");
                return -1;
            }
            if (inflateReset(&d->z) != Z_OK) { snprintf(d->error, sizeof d->error, "gzip reset failed"); return -1; }
            if (!d->check) inflateValidate(&d->z, 0);
        }
        d->in_member = 1;
        d->complete = 0;
        in += i; inlen -= i; *consumed = i;
    }
    d->z.next_in = (Bytef *)in;
    d->z.avail_in = (uInt)(inlen > 0x40000000 ? 0x40000000 : inlen);
    d->z.next_out = out;
    d->z.avail_out = (uInt)(outcap > 0x40000000 ? 0x40000000 : outcap);
    uInt before_in = d->z.avail_in, before_out = d->z.avail_out;
    int rc = inflate(&d->z, Z_NO_FLUSH);
    *consumed += before_in - d->z.avail_in;
    *produced = before_out - d->z.avail_out;
    if (rc == Z_STREAM_END) { d->in_member = 0; d->complete = 1; return 0; }
    if (rc == Z_OK || rc == Z_BUF_ERROR) return 0;
    snprintf(d->error, sizeof d->error, "corrupt gzip data (%s)", d->z.msg ? d->z.msg : "inflate failed");
    return -1;
}

static int zstd_step(strata_decoder *d, const unsigned char *in, size_t inlen, size_t *consumed,
                     unsigned char *out, size_t outcap, size_t *produced) {
    ZSTD_inBuffer ib = { in, inlen, 0 };
    ZSTD_outBuffer ob = { out, outcap, 0 };
    size_t rc = ZSTD_decompressStream(d->zs, &ob, &ib);
    *consumed = ib.pos; *produced = ob.pos;
    if (ZSTD_isError(rc)) {
        snprintf(d->error, sizeof d->error, "corrupt zstd data (%s)", ZSTD_getErrorName(rc));
        return -1;
    }
    if (rc == 0) d->complete = 1;
    else if (ib.pos > 0 || ob.pos > 0) d->complete = 0;
    return 0;
}

int strata_decoder_step(strata_decoder *d, const void *in, size_t inlen, size_t *consumed,
                        void *out, size_t outcap, size_t *produced) {
    if (d->codec == STRATA_CODEC_GZIP) return gzip_step(d, in, inlen, consumed, out, outcap, produced);
    return zstd_step(d, in, inlen, consumed, out, outcap, produced);
}

int strata_open_in_root(int rootfd, const char *path) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
#else
    (void)rootfd; (void)path;
    errno = ENOSYS;
    return -1;
#endif
}

int strata_open_component(int dirfd, const char *name) {
    return openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

int strata_open_final(int dirfd, const char *name) {
    return openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

int strata_syncfs(int fd) { return syncfs(fd); }

int strata_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, (off64_t)offset, (off64_t)length, SYNC_FILE_RANGE_WRITE);
}

int strata_preallocate(int fd, long long size) {
    if (size <= 0) return 0;
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size);
}

int strata_trim_preallocation(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    if ((long long)st.st_blocks * 512 <= (long long)st.st_size) return 0;
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size, (off_t)st.st_blocks * 512);
}

int strata_set_direct(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, fl | O_DIRECT);
}

int strata_clear_direct(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, fl & ~O_DIRECT);
}

int strata_copy_fd(int in_fd, int out_fd, long long len) {
    while (len > 0) {
        ssize_t n = copy_file_range(in_fd, NULL, out_fd, NULL, (size_t)(len > (1 << 30) ? (1 << 30) : len), 0);
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) break;
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        if (n == 0) return len == 0 ? 0 : -1;
        len -= n;
    }
    char buf[1 << 16];
    while (len > 0) {
        ssize_t r = read(in_fd, buf, sizeof buf < (size_t)len ? sizeof buf : (size_t)len);
        if (r < 0) { if (errno == EINTR) continue; return -1; }
        if (r == 0) { errno = EIO; return -1; }
        ssize_t off = 0;
        while (off < r) {
            ssize_t w = write(out_fd, buf + off, (size_t)(r - off));
            if (w < 0) { if (errno == EINTR) continue; return -1; }
            off += w;
        }
        len -= r;
    }
    return 0;
}

int strata_clone_or_copy_fd(int in_fd, int out_fd, long long len) {
    if (len > 0 && ioctl(out_fd, FICLONE, in_fd) == 0) return 0;
    return strata_copy_fd(in_fd, out_fd, len);
}

struct strata_encoder { z_stream z; ZSTD_CStream *zs; };

strata_encoder *strata_gzip_encoder_new(int level) {
    strata_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    if (deflateInit2(&e->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) { free(e); return NULL; }
    return e;
}

strata_encoder *strata_zstd_encoder_new(int level) {
    strata_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->zs = ZSTD_createCStream();
    if (!e->zs || ZSTD_isError(ZSTD_initCStream(e->zs, level))) { if (e->zs) ZSTD_freeCStream(e->zs); free(e); return NULL; }
    return e;
}

void strata_encoder_free(strata_encoder *e) {
    if (!e) return;
    if (e->zs) ZSTD_freeCStream(e->zs); else deflateEnd(&e->z);
    free(e);
}

int strata_encoder_step(strata_encoder *e, const void *in, size_t inlen, size_t *consumed,
                        void *out, size_t outcap, size_t *produced, int finish, int *done) {
    if (e->zs) {
        ZSTD_inBuffer ib = { in, in ? inlen : 0, 0 };
        ZSTD_outBuffer ob = { out, outcap, 0 };
        size_t r = ZSTD_compressStream2(e->zs, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
        *consumed = ib.pos;
        *produced = ob.pos;
        *done = finish && r == 0;
        return ZSTD_isError(r) ? -1 : 0;
    }
    e->z.next_in = (Bytef *)in;
    e->z.avail_in = (uInt)(inlen > 0x40000000 ? 0x40000000 : inlen);
    e->z.next_out = out;
    e->z.avail_out = (uInt)(outcap > 0x40000000 ? 0x40000000 : outcap);
    uInt bi = e->z.avail_in, bo = e->z.avail_out;
    int rc = deflate(&e->z, finish ? Z_FINISH : Z_NO_FLUSH);
    *consumed = bi - e->z.avail_in;
    *produced = bo - e->z.avail_out;
    *done = rc == Z_STREAM_END;
    return (rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) ? 0 : -1;
}

/* ---- XXH3-128 ---- */

struct strata_xxh3 { XXH3_state_t *state; };

strata_xxh3 *strata_xxh3_new(void) {
    strata_xxh3 *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->state = XXH3_createState();
    if (!s->state || XXH3_128bits_reset(s->state) != XXH_OK) {
        if (s->state) XXH3_freeState(s->state);
        free(s);
        return NULL;
    }
    return s;
}

void strata_xxh3_free(strata_xxh3 *s) {
    if (!s) return;
    XXH3_freeState(s->state);
    free(s);
}

int strata_xxh3_reset(strata_xxh3 *s) {
    return XXH3_128bits_reset(s->state) == XXH_OK ? 0 : -1;
}

int strata_xxh3_update(strata_xxh3 *s, const void *data, size_t len) {
    return XXH3_128bits_update(s->state, data, len) == XXH_OK ? 0 : -1;
}

void strata_xxh3_digest128(const strata_xxh3 *s, unsigned char out[16]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s->state));
    memcpy(out, c.digest, 16);
}

int strata_format_3g(double v, char *buf, unsigned long size) {
    return snprintf(buf, size, "%.3g", v);
}

int strata_fallocate_keep(int fd, long long length) {
    return fallocate(fd, 0, 0, (off_t)length) == 0 ? 0 : errno;
}
