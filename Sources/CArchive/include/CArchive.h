#ifndef STRATA_CARCHIVE_H
#define STRATA_CARCHIVE_H

#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/xattr.h>

/* File-type constants that Swift cannot import from macros. */
extern const unsigned int strata_AE_IFMT;
extern const unsigned int strata_AE_IFREG;
extern const unsigned int strata_AE_IFLNK;
extern const unsigned int strata_AE_IFDIR;
extern const unsigned int strata_AE_IFCHR;
extern const unsigned int strata_AE_IFBLK;
extern const unsigned int strata_AE_IFIFO;
extern const unsigned int strata_AE_IFSOCK;

/* Switch this thread to a C.UTF-8 LC_CTYPE (libarchive needs it for non-ASCII paths).
   Returns an opaque token for strata_locale_restore. */
void *strata_locale_enter(void);
void strata_locale_restore(void *token);

/* Streaming decompression (push style): gzip (multi-member) or zstd (multi-frame). */
typedef struct strata_decoder strata_decoder;
enum { STRATA_CODEC_GZIP = 1, STRATA_CODEC_ZSTD = 2 };
/* check = 0 skips the gzip trailer's CRC-32 and length check (zlib's inflateValidate): for
   callers that compare the digest of the decompressed bytes with an expected diffID, which
   proves more than the CRC does, at a tenth of a second less CPU per GB. */
strata_decoder *strata_decoder_new(int codec, int check);
void strata_decoder_free(strata_decoder *d);
/* Consumes from in[0..inlen) and writes to out[0..outcap). Returns 0 on progress,
   -1 on corrupt input (message in strata_decoder_error). */
int strata_decoder_step(strata_decoder *d, const void *in, size_t inlen, size_t *consumed,
                        void *out, size_t outcap, size_t *produced);
/* 1 when the input so far ends exactly at the end of a complete member/frame. */
int strata_decoder_complete(const strata_decoder *d);
const char *strata_decoder_error(const strata_decoder *d);

/* Streaming gzip or zstd compression (push style). */
typedef struct strata_encoder strata_encoder;
strata_encoder *strata_gzip_encoder_new(int level);
strata_encoder *strata_zstd_encoder_new(int level);
void strata_encoder_free(strata_encoder *e);
/* Compresses from in[0..inlen) into out[0..outcap); with finish != 0 flushes the end of the
   stream (call until *done). Returns 0, or -1 on error. */
int strata_encoder_step(strata_encoder *e, const void *in, size_t inlen, size_t *consumed,
                        void *out, size_t outcap, size_t *produced, int finish, int *done);

/* Linux I/O helpers Swift cannot see without _GNU_SOURCE. */
int strata_syncfs(int fd);
/* Starts writeback of a file range without waiting (sync_file_range SYNC_FILE_RANGE_WRITE). */
int strata_start_writeback(int fd, long long offset, long long length);
/* Reserves blocks for a file about to be written to `size` bytes without changing its size
   (fallocate FALLOC_FL_KEEP_SIZE): writes into reserved blocks skip ext4's delayed
   allocation, which costs more CPU than the copy itself. Returns 0, or -1 (errno) when the
   filesystem cannot, which callers ignore. */
int strata_preallocate(int fd, long long size);
/* Gives back blocks reserved past the end of the file (after a size estimate that was too
   high). Returns 0, or -1 (errno). */
int strata_trim_preallocation(int fd);
/* Turns O_DIRECT on for an open file. Returns 0, or -1 (EINVAL: the filesystem has no
   direct I/O). */
int strata_set_direct(int fd);
/* Turns O_DIRECT off again (for a last write that is not a whole block). */
int strata_clear_direct(int fd);

/* Opens `path` for reading below the directory `rootfd` as if that directory were `/`
   (openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): symlinks, absolute or relative,
   and `..` are resolved inside it and never leave it. Opened O_RDONLY | O_NONBLOCK |
   O_NOCTTY | O_CLOEXEC. Returns an fd, or -1 with errno (ENOSYS: no openat2 here). */
int strata_open_in_root(int rootfd, const char *path);
/* openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC): a handle on one path component,
   a symlink itself rather than what it points to. Returns an fd, or -1 with errno. */
int strata_open_component(int dirfd, const char *name);
/* openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC). */
int strata_open_final(int dirfd, const char *name);

/* Copies len bytes between file descriptors in the kernel (copy_file_range, falling back to
   read/write). Returns 0 on success, -1 with errno set. */
int strata_copy_fd(int in_fd, int out_fd, long long len);
/* Clones the whole file (FICLONE: XFS, btrfs) when the filesystem can share the blocks, else
   strata_copy_fd. The output must be empty. */
int strata_clone_or_copy_fd(int in_fd, int out_fd, long long len);

/* XXH3-128 (system libxxhash) behind plain functions, so Swift need not import xxhash's
   inline and macro API. A state is reusable: reset it before each new input. */
typedef struct strata_xxh3 strata_xxh3;
strata_xxh3 *strata_xxh3_new(void);
void strata_xxh3_free(strata_xxh3 *s);
/* Returns 0, or -1 on error. */
int strata_xxh3_reset(strata_xxh3 *s);
int strata_xxh3_update(strata_xxh3 *s, const void *data, size_t len);
/* Writes the 128-bit digest of everything fed since the last reset into out[0..16),
   big-endian (XXH128_canonicalFromHash, as xxh128sum prints it). */
void strata_xxh3_digest128(const strata_xxh3 *s, unsigned char out[16]);


/* SHA-256 on the x86 SHA extensions (sha256x2.c), for hashing a layer's stored and
   decompressed bytes together: update2 interleaves two streams, which costs about as
   much as one. Use only when strata_sha256_accelerated() returns 1. */
typedef struct strata_sha256 {
    uint32_t state[8];
    uint64_t length;
    uint32_t buffered;
    uint8_t block[64];
} strata_sha256;
int strata_sha256_accelerated(void);
void strata_sha256_init(strata_sha256 *c);
void strata_sha256_update(strata_sha256 *c, const void *data, size_t len);
void strata_sha256_update2(strata_sha256 *a, const void *da, size_t la, strata_sha256 *b, const void *db, size_t lb);
void strata_sha256_final(strata_sha256 *c, uint8_t out[32]);

#endif

/// fallocate(2) of bytes 0..<length of `fd` (mode 0: a shorter file is extended with zeros,
/// bytes already there are never changed). Returns 0 or the errno (EOPNOTSUPP where the
/// filesystem has no fallocate; glibc's posix_fallocate would then write bytes instead).
int strata_fallocate_keep(int fd, long long length);

/// printf's "%.3g" of `v` into `buf` (Docker's size column), without a va_list from Swift.
int strata_format_3g(double v, char *buf, unsigned long size);

/// Moves this (still single-threaded) process into a new user and mount namespace where uid
/// and gid 0 are `outer_uid`/`outer_gid` and 1… the subordinate ranges, mapped by the system's
/// setuid `newuidmap`/`newgidmap` from a forked helper that stays outside. 0: done, the process
/// is uid 0 inside; -1 (errno set): nothing changed (unshare refused, e.g. EINVAL when threads
/// exist); -2: in the namespace but the mapping failed, the caller must stop.
int strata_enter_userns(const char *newuidmap, const char *newgidmap, unsigned outer_uid, unsigned outer_gid,
                        unsigned sub_uid, unsigned sub_uid_count, unsigned sub_gid, unsigned sub_gid_count);

/// As strata_enter_userns, but shares one user namespace among the user's strata processes:
/// when `pid_file` names a live holder process (`strata-userns`) whose uid and gid maps are
/// exactly these, the process joins its user namespace (setns, no newuidmap/newgidmap starts);
/// otherwise it makes a new one as strata_enter_userns does and starts a holder for the next
/// commands (its pid goes to `pid_file`, under an flock). Either way the process gets a new
/// private mount namespace of its own. Same return values.
int strata_enter_shared_userns(const char *pid_file, const char *newuidmap, const char *newgidmap, unsigned outer_uid,
                               unsigned outer_gid, unsigned sub_uid, unsigned sub_uid_count, unsigned sub_gid,
                               unsigned sub_gid_count);

/// A TCP connection to 127.0.0.1:`port` inside the network namespace `nsfd` (an open
/// /proc/PID/ns/net), made on a thread of its own so the caller's namespace is untouched: the
/// connected socket, or -1 with errno set (ECONNREFUSED: nothing listens there).
int strata_connect_in_netns(int nsfd, unsigned short port);
/* A UDP socket made inside the network namespace `nsfd` and connected to 127.0.0.1:`port`
   there (a published UDP port's flow); -1 with errno on failure. */
int strata_udp_connect_in_netns(int nsfd, unsigned short port);

/* A pipe whose two ends are close-on-exec from the moment they exist (pipe2 with O_CLOEXEC):
   no process launched meanwhile by another thread inherits either end. 0 or -1 (errno). */
int strata_pipe_cloexec(int fds[2]);

/* accept(2) of a connection that is close-on-exec from the start (accept4, SOCK_CLOEXEC). */
int strata_accept_cloexec(int listener);
