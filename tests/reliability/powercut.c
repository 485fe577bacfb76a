/*
 * powercut.so: an LD_PRELOAD shim that logs, in order, every durable-storage event of a process
 * on one SQLite database, so that a test can rebuild what a disk would hold after a power cut.
 *
 * Environment:
 *   POWERCUT_LOG     the log file to append to
 *   POWERCUT_PREFIX  track files whose path starts with this (the database, its -wal and
 *                    -journal; the -shm file is memory only and never needed for recovery)
 *   POWERCUT_DIR     the database's directory: an fsync of it makes creations durable
 *
 * Records: u8 op, u32 path length, i64 offset, u64 data length, path bytes, data bytes.
 *   W write (offset, data)    T truncate (offset = new size)    S fsync/fdatasync of a file
 *   C created by this open    U unlinked    D fsync of the directory
 *   A bytes written to stdout: the process's acknowledgements, in order with the rest
 * All under one lock, so the log is one total order. A kill -9 can land anywhere, even inside
 * a write to the log, so the order of logging and calling matters:
 *   W and T are logged before the real call (an intent: if the kill lands in between, the log
 *   holds a write that never happened, which the model treats as unsynced, so may-or-may-not
 *   have reached the disk: sound, since the process could have completed it and then died);
 *   S, D, C and A are logged after the real call succeeded (a claim of durability, a creation or
 *   an acknowledgement is only logged once true). The reader drops a torn last record.
 * The log itself lives on a disk that does not fail.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 4096
#define DIRECTORY ((char *)1)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static const char *prefix;
static const char *directory;
static char *tracked[MAX_FDS]; /* fd -> path, DIRECTORY, or NULL */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_open64)(const char *, int, ...);
static int (*real_open)(const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate64)(int, off_t);
static int (*real_unlink)(const char *);

__attribute__((constructor)) static void start(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_open = dlsym(RTLD_NEXT, "open");
    real_close = dlsym(RTLD_NEXT, "close");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    prefix = getenv("POWERCUT_PREFIX");
    directory = getenv("POWERCUT_DIR");
    const char *log_path = getenv("POWERCUT_LOG");
    if (log_path && prefix && directory)
        log_fd = real_open64(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void put(const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = real_write(log_fd, p, size);
        if (n <= 0) abort(); /* a torn log would make the test lie: stop here */
        p += n;
        size -= (size_t)n;
    }
}

static void record(char op, const char *path, int64_t offset, const void *data, uint64_t size) {
    uint8_t code = (uint8_t)op;
    uint32_t path_size = path ? (uint32_t)strlen(path) : 0;
    put(&code, 1);
    put(&path_size, 4);
    put(&offset, 8);
    put(&size, 8);
    if (path_size) put(path, path_size);
    if (size) put(data, size);
}

static int wanted(const char *path) {
    size_t n = strlen(prefix), len = strlen(path);
    if (strncmp(path, prefix, n) != 0) return 0;
    return !(len >= 4 && strcmp(path + len - 4, "-shm") == 0);
}

static int opened(int (*real)(const char *, int, ...), const char *path, int flags, mode_t mode) {
    if (log_fd < 0 || !path) return real(path, flags, mode);
    pthread_mutex_lock(&lock);
    int file = wanted(path);
    int existed = file && access(path, F_OK) == 0;
    int fd = real(path, flags, mode);
    if (fd >= 0 && fd < MAX_FDS) {
        if (file) {
            free(tracked[fd] == DIRECTORY ? NULL : tracked[fd]);
            tracked[fd] = strdup(path);
            if ((flags & O_CREAT) && !existed) record('C', path, 0, NULL, 0);
            if (flags & O_TRUNC) record('T', path, 0, NULL, 0);
        } else if (strcmp(path, directory) == 0) {
            tracked[fd] = DIRECTORY;
        }
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

static mode_t mode_of(int flags, va_list args) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(args, int) : 0;
}

int open64(const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_of(flags, args);
    va_end(args);
    return opened(real_open64, path, flags, mode);
}

int open(const char *path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_of(flags, args);
    va_end(args);
    return opened(real_open, path, flags, mode);
}

int close(int fd) {
    if (log_fd >= 0 && fd >= 0 && fd < MAX_FDS && tracked[fd]) {
        pthread_mutex_lock(&lock);
        if (tracked[fd] != DIRECTORY) free(tracked[fd]);
        tracked[fd] = NULL;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

static char *file_of(int fd) {
    return (log_fd >= 0 && fd >= 0 && fd < MAX_FDS) ? tracked[fd] : NULL;
}

ssize_t pwrite64(int fd, const void *data, size_t size, off_t offset) {
    if (!file_of(fd)) return real_pwrite64(fd, data, size, offset);
    pthread_mutex_lock(&lock);
    if (tracked[fd] != DIRECTORY) record('W', tracked[fd], offset, data, size);
    ssize_t n = real_pwrite64(fd, data, size, offset);
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t pwrite(int fd, const void *data, size_t size, off_t offset) {
    return pwrite64(fd, data, size, offset);
}

ssize_t write(int fd, const void *data, size_t size) {
    if (log_fd < 0 || (fd != 1 && !file_of(fd))) return real_write(fd, data, size);
    pthread_mutex_lock(&lock);
    if (fd != 1 && tracked[fd] != DIRECTORY)
        record('W', tracked[fd], lseek(fd, 0, SEEK_CUR), data, size);
    ssize_t n = real_write(fd, data, size);
    if (n > 0 && fd == 1) record('A', NULL, 0, data, (uint64_t)n);
    pthread_mutex_unlock(&lock);
    return n;
}

static int synced(int (*real)(int), int fd) {
    if (!file_of(fd)) return real(fd);
    pthread_mutex_lock(&lock);
    int rc = real(fd);
    if (rc == 0 && tracked[fd]) {
        if (tracked[fd] == DIRECTORY)
            record('D', NULL, 0, NULL, 0);
        else
            record('S', tracked[fd], 0, NULL, 0);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int fsync(int fd) { return synced(real_fsync, fd); }
int fdatasync(int fd) { return synced(real_fdatasync, fd); }

int ftruncate64(int fd, off_t size) {
    if (!file_of(fd)) return real_ftruncate64(fd, size);
    pthread_mutex_lock(&lock);
    if (tracked[fd] != DIRECTORY) record('T', tracked[fd], size, NULL, 0);
    int rc = real_ftruncate64(fd, size);
    pthread_mutex_unlock(&lock);
    return rc;
}

int ftruncate(int fd, off_t size) { return ftruncate64(fd, size); }

int unlink(const char *path) {
    if (log_fd < 0 || !path || !wanted(path)) return real_unlink(path);
    pthread_mutex_lock(&lock);
    int rc = real_unlink(path);
    if (rc == 0) record('U', path, 0, NULL, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}
