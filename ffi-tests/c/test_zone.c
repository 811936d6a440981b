/*
 * Shared zones through the C ABI: the size formula and lc_zone_capacity_fit() against an
 * independent computation, every refusal with its exact status and logged message, an
 * anonymous zone used by a forked child through its inherited handle, a file zone opened
 * twice by path here and once by a forked child, and caller memory (aligned malloc, and a
 * MAP_SHARED file mapping made by a child) created, attached and refused. Prints "N checks
 * passed" on success (tests/ffi.rs checks it). Pools on zones: test_zone_pool.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "check.h"

static const lc_zone_capacity SMALL = {8, 64, 2, 3, 4};
static const char MAGIC_MESSAGE[] =
    "not a leastconn zone: magic [0, 0, 0, 0, 0, 0, 0, 0], expected [76, 67, 90, 79, 78, 69, 0, 1]";

/* A refusal: the status, nothing in *out, and exactly one error logged, equal to `message`. */
#define CHECK_REFUSED(expr, want, out, message)                                       \
    do {                                                                              \
        errors_logged = 0;                                                            \
        CHECK_STATUS(expr, want);                                                     \
        CHECK((out) == NULL);                                                         \
        check_logged(message);                                                        \
    } while (0)

static void check_logged(const char *message) {
    if (errors_logged != 1 || strcmp(last_error, message) != 0) {
        fprintf(stderr, "logged %u errors, the last %s\nwant: %s\n", errors_logged, last_error, message);
        exit(1);
    }
    COUNT_CHECK();
}

static size_t round16(size_t words) {
    return (words + 15) / 16 * 16;
}

/* docs/design-zone.md, section 1.2: header, slots, process table, thread records, matrix. */
static size_t design_size(const lc_zone_capacity *c) {
    size_t key_words = (c->address_bytes + 5) / 6;
    size_t slot = round16(16 + 3 + key_words + c->fail_ring);
    size_t process = round16(8 + ((size_t)c->hosts + 63) / 64);
    return 256 + (size_t)c->hosts * slot * 8 + (size_t)c->processes * process * 8 + (size_t)c->threads * 128 +
           (size_t)c->threads * round16(c->hosts) * 8;
}

static int same_caps(lc_zone_capacity a, lc_zone_capacity b) {
    return a.hosts == b.hosts && a.address_bytes == b.address_bytes && a.fail_ring == b.fail_ring &&
           a.processes == b.processes && a.threads == b.threads;
}

static lc_zone_capacity capacity_of(const lc_zone *zone) {
    lc_zone_capacity caps;
    memset(&caps, 0xff, sizeof caps);
    CHECK_OK(lc_zone_capacity_of(zone, &caps));
    return caps;
}

static void sizes_and_fits(void) {
    lc_zone_capacity caps, nginx = {0, 64, 2, 32, 32}, design = {1024, 256, 16, 64, 128}, odd = {65, 61, 1, 1, 1};
    const size_t budgets[] = {12800, 65536, 1 << 20, (1 << 20) - 1, 100u << 20};
    char want[512];
    size_t i, one;

    CHECK_OK(lc_zone_capacity_default(&caps));
    CHECK(caps.hosts == 1024 && caps.address_bytes == 256 && caps.fail_ring == 16 && caps.processes == 64 &&
          caps.threads == 256);
    CHECK(lc_zone_size(&caps) == design_size(&caps) && lc_zone_size(&caps) == 2801920);
    CHECK(lc_zone_size(&design) == 1736960); /* the design's "1.7 MiB" example */
    CHECK(lc_zone_size(&odd) == design_size(&odd) && lc_zone_size(&SMALL) == design_size(&SMALL));

    /* Out of range: size 0, and nothing logged. */
    errors_logged = 0;
    CHECK(lc_zone_size(NULL) == 0);
    caps = SMALL, caps.hosts = 0;
    CHECK(lc_zone_size(&caps) == 0);
    caps = SMALL, caps.hosts = 1u << 30;
    CHECK(lc_zone_size(&caps) == 0);
    caps = SMALL, caps.address_bytes = 4096;
    CHECK(lc_zone_size(&caps) == 0);
    caps = SMALL, caps.fail_ring = LC_MAX_FAILS_LIMIT + 1;
    CHECK(lc_zone_size(&caps) == 0);
    caps = SMALL, caps.processes = 16384;
    CHECK(lc_zone_size(&caps) == 0);
    caps = SMALL, caps.threads = 1u << 31;
    CHECK(lc_zone_size(&caps) == 0);
    CHECK(errors_logged == 0);

    /* The most hosts that fit: size(h) <= budget < size(h + 1), whatever hosts was given. */
    for (i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        caps = nginx;
        caps.hosts = (uint32_t)i * 1000;
        CHECK_OK(lc_zone_capacity_fit(budgets[i], &caps));
        CHECK(caps.address_bytes == 64 && caps.fail_ring == 2 && caps.processes == 32 && caps.threads == 32);
        CHECK(caps.hosts >= 1 && design_size(&caps) <= budgets[i] && lc_zone_size(&caps) == design_size(&caps));
        caps.hosts++;
        CHECK(design_size(&caps) > budgets[i]);
    }
    caps = nginx;
    CHECK_OK(lc_zone_capacity_fit(1 << 20, &caps));
    CHECK(caps.hosts == 2015); /* `zone app 1m` with 8 workers: ~2,000 hosts */
    caps = SMALL;
    CHECK_OK(lc_zone_capacity_fit(SIZE_MAX, &caps));
    CHECK(caps.hosts == (1u << 30) - 1);

    /* Not one host fits, or another field is out of range: refused, caps unchanged. */
    caps = SMALL, caps.hosts = 1;
    one = lc_zone_size(&caps);
    CHECK(one == design_size(&caps));
    caps.hosts = 7;
    errors_logged = 0;
    CHECK_STATUS(lc_zone_capacity_fit(one - 1, &caps), LC_ERR_ZONE_TOO_SMALL);
    CHECK(same_caps(caps, (lc_zone_capacity){7, 64, 2, 3, 4}));
    snprintf(want, sizeof want,
             "lc_zone_capacity_fit: %zu bytes cannot hold a zone of even 1 host with address_bytes 64, "
             "fail_ring 2, processes 3, threads 4 (%zu bytes)",
             one - 1, one);
    check_logged(want);
    CHECK_OK(lc_zone_capacity_fit(one, &caps));
    CHECK(caps.hosts == 1);
    caps.fail_ring = 0;
    errors_logged = 0;
    CHECK_STATUS(lc_zone_capacity_fit(1 << 20, &caps), LC_ERR_INVALID_LIMIT);
    CHECK(caps.hosts == 1 && caps.fail_ring == 0);
    check_logged("lc_zone_capacity_fit: zone capacity fail_ring 0 is outside 1..=1024");
    errors_logged = 0;
    CHECK_STATUS(lc_zone_capacity_fit(1 << 20, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_capacity_default(NULL), LC_ERR_NULL_POINTER);
    CHECK(errors_logged == 0);

    CHECK(strcmp(lc_status_str(LC_ERR_ZONE_INCOMPATIBLE), "shared zone made for another layout or capacities") == 0);
    CHECK(strcmp(lc_status_str(LC_ERR_ZONE_TOO_SMALL), "shared zone memory too small") == 0);
    CHECK(strcmp(lc_status_str(LC_ERR_ZONE_BUSY), "shared zone still being initialised by another process") == 0);
}

/* Made before fork(); the child reads it through its copy of the handle and frees that. */
static void anonymous_zone_shared_with_a_child(void) {
    lc_zone *zone = (lc_zone *)&errors_logged;
    lc_zone_capacity bad = SMALL;
    uint64_t id;
    pid_t pid;

    bad.processes = 0;
    CHECK_REFUSED(lc_zone_new_anonymous(&bad, &zone), LC_ERR_INVALID_LIMIT, zone,
                  "lc_zone_new_anonymous: zone capacity processes 0 is outside 1..=16383");
    zone = (lc_zone *)&errors_logged;
    CHECK_STATUS(lc_zone_new_anonymous(NULL, &zone), LC_ERR_NULL_POINTER);
    CHECK(zone == NULL);
    CHECK_STATUS(lc_zone_new_anonymous(&SMALL, NULL), LC_ERR_NULL_POINTER);

    CHECK_OK(lc_zone_new_anonymous(&SMALL, &zone));
    id = lc_zone_creation_id(zone);
    CHECK(id != 0 && lc_zone_size_of(zone) == lc_zone_size(&SMALL) && same_caps(capacity_of(zone), SMALL));
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK(lc_zone_creation_id(zone) == id);
        CHECK(same_caps(capacity_of(zone), SMALL));
        CHECK(lc_zone_size_of(zone) == lc_zone_size(&SMALL));
        lc_zone_free(zone);
        child_passed();
    }
    check_child(pid);
    /* The child's free was its own: the parent's handle is intact. */
    CHECK(lc_zone_creation_id(zone) == id && same_caps(capacity_of(zone), SMALL));
    CHECK(lc_zone_size_of(NULL) == 0 && lc_zone_creation_id(NULL) == 0);
    CHECK_STATUS(lc_zone_capacity_of(NULL, &bad), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_capacity_of(zone, NULL), LC_ERR_NULL_POINTER);
    lc_zone_free(zone);
    lc_zone_free(NULL);
}

static void write_file(const char *path, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)len) == 0);
    CHECK(close(fd) == 0);
}

static void file_zone_opened_twice_and_by_a_child(const char *dir) {
    char path[512], other[512], want[1024];
    lc_zone *first = NULL, *second = NULL, *refused = NULL;
    lc_zone_capacity fewer = SMALL;
    struct stat st;
    uint64_t id;
    size_t size = lc_zone_size(&SMALL);
    pid_t pid;

    fewer.hosts = 7;
    snprintf(path, sizeof path, "%s/zone", dir);
    CHECK_OK(lc_zone_open(path, &SMALL, &first));
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && (size_t)st.st_size == size);
    CHECK_OK(lc_zone_open(path, &SMALL, &second));
    CHECK(first != second);
    id = lc_zone_creation_id(first);
    CHECK(id != 0 && lc_zone_creation_id(second) == id && same_caps(capacity_of(second), SMALL));
    CHECK(lc_zone_size_of(second) == size);

    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        lc_zone *mine = NULL;
        lc_zone_free(first);
        lc_zone_free(second);
        CHECK_OK(lc_zone_open(path, &SMALL, &mine));
        CHECK(lc_zone_creation_id(mine) == id && same_caps(capacity_of(mine), SMALL));
        lc_zone_free(mine);
        errors_logged = 0;
        CHECK_STATUS(lc_zone_open(path, &fewer, &mine), LC_ERR_ZONE_INCOMPATIBLE);
        CHECK(mine == NULL && errors_logged == 1);
        child_passed();
    }
    check_child(pid);
    lc_zone_free(first);
    lc_zone_free(second);

    /* The file outlives its handles: opened again, it is the same zone. */
    CHECK_OK(lc_zone_open(path, &SMALL, &first));
    CHECK(lc_zone_creation_id(first) == id);
    lc_zone_free(first);

    snprintf(want, sizeof want,
             "lc_zone_open: zone file %s: zone capacities differ: hosts 8 in the zone, 7 asked", path);
    refused = (lc_zone *)&errors_logged;
    CHECK_REFUSED(lc_zone_open(path, &fewer, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused, want);

    /* A zone file cut short. */
    CHECK(truncate(path, (off_t)(size - 8)) == 0);
    snprintf(want, sizeof want, "lc_zone_open: zone file %s: zone needs %zu bytes, the memory has %zu", path, size,
             size - 8);
    CHECK_REFUSED(lc_zone_open(path, &SMALL, &refused), LC_ERR_ZONE_TOO_SMALL, refused, want);
    CHECK(unlink(path) == 0);

    /* Files that are no zones: too short for a header, and zeros. */
    snprintf(other, sizeof other, "%s/short", dir);
    write_file(other, 100);
    snprintf(want, sizeof want, "lc_zone_open: zone file %s: 100 bytes cannot hold a zone header (256 bytes)",
             other);
    CHECK_REFUSED(lc_zone_open(other, &SMALL, &refused), LC_ERR_ZONE_TOO_SMALL, refused, want);
    CHECK(unlink(other) == 0);
    snprintf(other, sizeof other, "%s/zeros", dir);
    write_file(other, size);
    snprintf(want, sizeof want, "lc_zone_open: zone file %s: %s", other, MAGIC_MESSAGE);
    CHECK_REFUSED(lc_zone_open(other, &SMALL, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused, want);
    CHECK(unlink(other) == 0);

    /* Paths that cannot be a zone file. */
    snprintf(other, sizeof other, "%s/missing/zone", dir);
    errors_logged = 0;
    CHECK_STATUS(lc_zone_open(other, &SMALL, &refused), LC_ERR_OS);
    CHECK(refused == NULL && errors_logged == 1);
    snprintf(want, sizeof want, "lc_zone_open: creating %s/missing/zone.%d.", dir, (int)getpid());
    CHECK(strncmp(last_error, want, strlen(want)) == 0);
    CHECK(strstr(last_error, ".tmp: No such file or directory (os error 2)") != NULL);
    snprintf(want, sizeof want, "lc_zone_open: opening zone file %s: Is a directory (os error 21)", dir);
    CHECK_REFUSED(lc_zone_open(dir, &SMALL, &refused), LC_ERR_OS, refused, want);
    CHECK_REFUSED(lc_zone_open("", &SMALL, &refused), LC_ERR_INVALID_ARGUMENT, refused,
                  "lc_zone_open: zone path  does not name a file");
    errors_logged = 0;
    CHECK_STATUS(lc_zone_open(NULL, &SMALL, &refused), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_open(path, NULL, &refused), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_open(path, &SMALL, NULL), LC_ERR_NULL_POINTER);
    CHECK(refused == NULL && errors_logged == 0);
}

/* Marks caller memory as being initialised by `pid` (the init-state word, bytes 16 to 23),
 * as a process that died or stalls in lc_zone_from_memory() would leave it. */
static void set_initialiser(uint64_t *mem, pid_t pid) {
    mem[2] = (uint64_t)pid << 2 | 1;
}

static void caller_memory(void) {
    size_t size = lc_zone_size(&SMALL);
    lc_zone_capacity fewer = SMALL;
    lc_zone *made = NULL, *attached = NULL, *refused = NULL;
    uint64_t *mem = NULL, id;
    char want[512];
    pid_t pid;

    fewer.hosts = 7;
    CHECK(posix_memalign((void **)&mem, 64, size + 64) == 0);
    memset(mem, 0, size + 64);

    /* Refusals on fresh memory, which none of them writes to. */
    refused = (lc_zone *)&errors_logged;
    snprintf(want, sizeof want,
             "lc_zone_from_memory: a zone of hosts 8, address_bytes 64, fail_ring 2, processes 3, threads 4 "
             "needs %zu bytes, the memory has %zu",
             size, size - 8);
    CHECK_REFUSED(lc_zone_from_memory(mem, size - 8, &SMALL, LC_ZONE_CREATE, &refused), LC_ERR_ZONE_TOO_SMALL,
                  refused, want);
    snprintf(want, sizeof want, "lc_zone_from_memory: %s", MAGIC_MESSAGE);
    CHECK_REFUSED(lc_zone_from_memory(mem, size, NULL, LC_ZONE_ATTACH, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused,
                  want);
    CHECK_REFUSED(lc_zone_from_memory(mem, 100, NULL, LC_ZONE_ATTACH, &refused), LC_ERR_ZONE_TOO_SMALL, refused,
                  "lc_zone_from_memory: 100 bytes cannot hold a zone header (256 bytes)");
    snprintf(want, sizeof want, "lc_zone_from_memory: zone memory at %p is not 8-byte aligned",
             (void *)((char *)mem + 4));
    CHECK_REFUSED(lc_zone_from_memory((char *)mem + 4, size, &SMALL, LC_ZONE_CREATE, &refused),
                  LC_ERR_INVALID_ARGUMENT, refused, want);
    errors_logged = 0;
    CHECK_STATUS(lc_zone_from_memory(mem, size, &SMALL, 3, &refused), LC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(lc_zone_from_memory(NULL, size, &SMALL, LC_ZONE_CREATE, &refused), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_from_memory(mem, size, NULL, LC_ZONE_CREATE, &refused), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_from_memory(mem, size, NULL, LC_ZONE_CREATE_OR_ATTACH, &refused), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE, NULL), LC_ERR_NULL_POINTER);
    CHECK(refused == NULL && errors_logged == 0);

    /* Create, then Attach (with any capacities, and with the zone's), then CreateOrAttach. */
    CHECK_OK(lc_zone_from_memory(mem, size + 64, &SMALL, LC_ZONE_CREATE, &made));
    id = lc_zone_creation_id(made);
    CHECK(id != 0 && lc_zone_size_of(made) == size && same_caps(capacity_of(made), SMALL));
    CHECK_OK(lc_zone_from_memory(mem, size, NULL, LC_ZONE_ATTACH, &attached));
    CHECK(lc_zone_creation_id(attached) == id && same_caps(capacity_of(attached), SMALL));
    lc_zone_free(attached);
    CHECK_OK(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_ATTACH, &attached));
    CHECK(lc_zone_creation_id(attached) == id);
    lc_zone_free(attached);
    CHECK_OK(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE_OR_ATTACH, &attached));
    CHECK(lc_zone_creation_id(attached) == id);
    lc_zone_free(attached);

    /* A zone is there now. */
    CHECK_REFUSED(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused,
                  "lc_zone_from_memory: memory is not fresh: init state 0x2 (use Attach for an existing zone)");
    CHECK_REFUSED(lc_zone_from_memory(mem, size, &fewer, LC_ZONE_ATTACH, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused,
                  "lc_zone_from_memory: zone capacities differ: hosts 8 in the zone, 7 asked");
    CHECK_REFUSED(lc_zone_from_memory(mem, size, &fewer, LC_ZONE_CREATE_OR_ATTACH, &refused),
                  LC_ERR_ZONE_INCOMPATIBLE, refused,
                  "lc_zone_from_memory: zone capacities differ: hosts 8 in the zone, 7 asked");
    snprintf(want, sizeof want, "lc_zone_from_memory: zone needs %zu bytes, the memory has %zu", size, size - 3);
    CHECK_REFUSED(lc_zone_from_memory(mem, size - 3, NULL, LC_ZONE_ATTACH, &refused), LC_ERR_ZONE_TOO_SMALL, refused,
                  want);
    CHECK(lc_zone_creation_id(made) == id);
    lc_zone_free(made);

    /* An initialisation that a live process (this one) has not finished: CreateOrAttach waits
     * about a second, then says so; Create and Attach refuse at once. */
    memset(mem, 0, size + 64);
    set_initialiser(mem, getpid());
    snprintf(want, sizeof want, "lc_zone_from_memory: pid %d is still initialising the zone after 1s", (int)getpid());
    CHECK_REFUSED(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE_OR_ATTACH, &refused), LC_ERR_ZONE_BUSY,
                  refused, want);
    snprintf(want, sizeof want, "lc_zone_from_memory: memory is not fresh: pid %d is initialising a zone in it",
             (int)getpid());
    CHECK_REFUSED(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused,
                  want);
    snprintf(want, sizeof want,
             "lc_zone_from_memory: zone not ready: its initialisation by pid %d did not finish", (int)getpid());
    CHECK_REFUSED(lc_zone_from_memory(mem, size, NULL, LC_ZONE_ATTACH, &refused), LC_ERR_ZONE_INCOMPATIBLE, refused,
                  want);

    /* One whose initialiser died (a child, reaped): CreateOrAttach redoes it. */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child_passed();
    check_child(pid);
    set_initialiser(mem, pid);
    CHECK_OK(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE_OR_ATTACH, &made));
    CHECK(lc_zone_creation_id(made) != 0 && lc_zone_creation_id(made) != id);
    CHECK_OK(lc_zone_from_memory(mem, size, NULL, LC_ZONE_ATTACH, &attached));
    CHECK(lc_zone_creation_id(attached) == lc_zone_creation_id(made));
    lc_zone_free(attached);
    lc_zone_free(made);
    free(mem);
}

/* Shared memory as nginx has it: mapped before fork(); a child creates the zone in it and
 * leaves its creation id after the zone's bytes; the parent attaches and finds that id. */
static void caller_memory_shared_with_a_child(const char *dir) {
    size_t size = lc_zone_size(&SMALL);
    char path[512];
    lc_zone *zone = NULL;
    uint64_t *mem;
    pid_t pid;
    int fd;

    snprintf(path, sizeof path, "%s/shared", dir);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)(size + 8)) == 0);
    mem = mmap(NULL, size + 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(mem != MAP_FAILED);
    CHECK(close(fd) == 0 && unlink(path) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK_OK(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_CREATE, &zone));
        __atomic_store_n(&mem[size / 8], lc_zone_creation_id(zone), __ATOMIC_SEQ_CST);
        lc_zone_free(zone);
        child_passed();
    }
    check_child(pid);
    CHECK(__atomic_load_n(&mem[size / 8], __ATOMIC_SEQ_CST) != 0);
    CHECK_OK(lc_zone_from_memory(mem, size, &SMALL, LC_ZONE_ATTACH, &zone));
    CHECK(lc_zone_creation_id(zone) == __atomic_load_n(&mem[size / 8], __ATOMIC_SEQ_CST));
    lc_zone_free(zone);
    CHECK(munmap(mem, size + 8) == 0);
}

int main(void) {
    char dir[] = "/dev/shm/lc-zone-test-XXXXXX", fallback[] = "/tmp/lc-zone-test-XXXXXX";
    const char *tmp;

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    sizes_and_fits();
    anonymous_zone_shared_with_a_child();
    tmp = mkdtemp(dir);
    if (tmp == NULL) tmp = mkdtemp(fallback); /* no /dev/shm: any directory serves a test */
    CHECK(tmp != NULL);
    file_zone_opened_twice_and_by_a_child(tmp);
    caller_memory();
    caller_memory_shared_with_a_child(tmp);
    CHECK(rmdir(tmp) == 0);
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
