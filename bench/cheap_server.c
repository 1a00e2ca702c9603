/*
 * cheap_server.c - a benchmark server for ListOTATaskByJob that costs less than the clients.
 *
 * The emulator (nginx + Lua, every signature verified) spends more CPU per page than either
 * client it serves, which caps any client-against-client ratio measured through it. This one
 * answers from pages rendered once and cached, plain and gzip, and checks no signature: what
 * is left per request is reading it, finding its page, and one writev.
 *
 *   cheap_server [--port N] [--warm JOB[:PAGE_SIZE]]... [--foreground] [--verbose]
 *
 * Binds 127.0.0.1 (port 0 = any free port, the default), renders the --warm jobs' pages (all
 * of them, plain and gzip; say which PageSize, default 100), then prints "<port> <pid>" on one
 * line and serves in the background (--foreground: in this process). Stop it by PID (SIGTERM).
 *
 * HTTP/1.1 with keep-alive (HTTP/1.0: only with "Connection: keep-alive"), pipelining,
 * Content-Length request bodies (no chunked requests), "Expect: 100-continue"; one poll()
 * loop, no threads. Requests:
 *   GET  /?...             ListOTATaskByJob as V1 sends it (every parameter in the query)
 *   POST /?...             as V3 sends it (parameters in the query, x-acs-action header); a
 *                          form body (application/x-www-form-urlencoded) is read as well
 *   GET  /__cheap/stats    {"user_seconds":..,"sys_seconds":..,"requests":..,"pages":..,
 *                          "bytes":..}: this process's getrusage, to measure its own CPU
 * An Action (parameter or x-acs-action) other than ListOTATaskByJob is a 400 gateway error.
 * Parameters read: JobId, PageSize (default 10), CurrentPage (default 1), TaskStatus; the
 * rest (signature, nonce, timestamp, ...) is ignored. DeviceNames.N is not served (an error).
 *
 * Answers are those of spec/emulator/ota.lua over the jobs of spec/emulator/jobs.lua, in the
 * same JSON (same fields in the same order, the same task records, "SimpleOTATaskInfo": []
 * past the end, "Data": {} for an empty job, the same iot.* errors for bad paging, an unknown
 * status or job): job-<N> (the mixed status pattern, TaskStatus filters it) and
 * job-<N>-<STATUS> (every task in STATUS). bench/cheap_check.lua compares pages of both. A
 * page's RequestId is fixed when it is rendered. With "Accept-Encoding: gzip" the answer is
 * the page compressed once (zlib, level 6) and cached too.
 *
 * Built by scripts/bench: cc -O2 -o build/bench/cheap_server bench/cheap_server.c -lz
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#define MAX_REQUEST (64 * 1024)    /* headers + body of one request */
#define MAX_PAGE_SIZE 100
#define MAX_DEPTH 100000
#define MAX_TASKS 100000000L
#define PERIOD 20
#define BASE_EPOCH 1572838702L     /* 2019-11-04T03:38:22Z, jobs.lua's BASE_EPOCH */
#define BUCKETS 65536

static int verbose;
static unsigned long n_requests, n_pages;
static size_t n_bytes;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("cheap_server: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- growing buffers ----------------------------------------------------------------- */

struct sb {
    char *p;
    size_t len, cap;
};

static void sb_reserve(struct sb *b, size_t extra) {
    size_t cap = b->cap ? b->cap : 256;
    if (b->len + extra <= b->cap)
        return;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL)
        die("out of memory");
    b->cap = cap;
}

static void sb_add(struct sb *b, const char *s, size_t n) {
    sb_reserve(b, n + 1);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s) {
    sb_add(b, s, strlen(s));
}

static void sb_printf(struct sb *b, const char *fmt, ...) {
    va_list ap;
    int n;
    sb_reserve(b, 128);
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("vsnprintf failed");
    if ((size_t)n >= b->cap - b->len) {
        sb_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A JSON string as codec.lua writes it: '"', '\\' and control bytes escaped, UTF-8 as is. */
static void sb_json(struct sb *b, const char *s, size_t n) {
    size_t i;
    sb_add(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\b': sb_add(b, "\\b", 2); break;
        case '\f': sb_add(b, "\\f", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f)
                sb_printf(b, "\\u%04x", c);
            else
                sb_add(b, (const char *)&c, 1);
        }
    }
    sb_add(b, "\"", 1);
}

/* ---- the jobs of spec/emulator/jobs.lua -------------------------------------------------- */

static const char *const STATUSES[] = {"QUEUED", "NOTIFIED", "IN_PROGRESS", "SUCCEEDED",
                                       "FAILED", "CANCELED", "CONFIRM"};
#define NSTATUS 7
/* STATUS_PATTERN, as indexes into STATUSES */
static const int PATTERN[PERIOD] = {3, 4, 3, 2, 0, 3, 1, 3, 4, 2,
                                    3, 5, 0, 3, 4, 6, 3, 2, 1, 3};
static const char *const FAILED_DESCRIPTIONS[] = {
    "report version is not conform",
    "下载失败：固件校验错误",
    "timeout * retry ~ later",
    "device offline, upgrade timed out (30 min)",
    "升级超时 * 请稍后重试 ~",
};
static const char *const SRC_VERSIONS[] = {"1.0.0", "1.0.1", "0.9.8"};

static int positions[NSTATUS][PERIOD]; /* 1-based pattern positions of each status */
static int npositions[NSTATUS];

static void jobs_init(void) {
    int p;
    for (p = 0; p < PERIOD; p++) {
        int s = PATTERN[p];
        positions[s][npositions[s]++] = p + 1;
    }
}

static int status_index(const char *s) {
    int i;
    for (i = 0; i < NSTATUS; i++)
        if (strcmp(s, STATUSES[i]) == 0)
            return i;
    return -1;
}

struct job {
    char id[64];
    long size;
    int uniform;   /* -1: mixed (the pattern), else every task has this status */
};

/* jobs.parse for job-<N> and job-<N>-<STATUS>; 0 when the job does not exist here. */
static int job_parse(const char *id, struct job *j) {
    const char *p = id, *d;
    long n = 0;
    if (strncmp(p, "job-", 4) != 0 || strlen(id) >= sizeof j->id)
        return 0;
    p += 4;
    d = p;
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (*p - '0');
        if (n > MAX_TASKS)
            return 0;
        p++;
    }
    if (p == d || (p - d > 1 && *d == '0'))
        return 0;
    j->size = n;
    j->uniform = -1;
    if (*p == '-') {
        j->uniform = status_index(p + 1);
        if (j->uniform < 0)
            return 0;
    } else if (*p != '\0') {
        return 0;
    }
    strcpy(j->id, id);
    return 1;
}

static int status_of(const struct job *j, long i) {
    return j->uniform >= 0 ? j->uniform : PATTERN[(i - 1) % PERIOD];
}

static long job_count(const struct job *j, int status) {
    long full, rest, c;
    int k;
    if (status < 0)
        return j->size;
    if (j->uniform >= 0)
        return status == j->uniform ? j->size : 0;
    full = j->size / PERIOD;
    rest = j->size % PERIOD;
    c = full * npositions[status];
    for (k = 0; k < npositions[status]; k++)
        if (positions[status][k] <= rest)
            c++;
    return c;
}

/* Index of the k-th task (1-based) having status (-1: any). */
static long job_kth(const struct job *j, int status, long k) {
    int per;
    if (status < 0 || j->uniform >= 0)
        return k;
    per = npositions[status];
    return (k - 1) / per * PERIOD + positions[status][(k - 1) % per];
}

static long rank_in_status(const struct job *j, long i) {
    int s, p, k;
    if (j->uniform >= 0)
        return i;
    s = status_of(j, i);
    p = (int)((i - 1) % PERIOD) + 1;
    for (k = 0; k < npositions[s]; k++)
        if (positions[s][k] == p)
            return (i - 1) / PERIOD * npositions[s] + k + 1;
    return 0;
}

static void iso_utc_ms(char out[80], long t) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.000Z", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void field(struct sb *b, const char *name, const char *v, int first) {
    if (!first)
        sb_add(b, ",", 1);
    sb_printf(b, "\"%s\":", name);
    sb_json(b, v, strlen(v));
}

/* jobs.task(job, i) as codec.json writes it (jobs.TASK_FIELDS order). */
static void render_task(struct sb *b, const struct job *j, long i) {
    int s = status_of(j, i);
    char progress[16] = "0.00", created[80], modified[80], buf[96];
    const char *desc = "";
    long c = BASE_EPOCH + (i - 1), m = c;
    char fw[80];
    if (s == 3) {
        strcpy(progress, "100.00");
    } else if (s == 2) {
        long p = (i * 7919) % 9999 + 1;
        snprintf(progress, sizeof progress, "%ld.%02ld", p / 100, p % 100);
    }
    if (s != 0)
        m = c + 60 + (i * 37) % 3600;
    if (s == 4)
        desc = FAILED_DESCRIPTIONS[(rank_in_status(j, i) - 1) % 5];
    iso_utc_ms(created, c);
    iso_utc_ms(modified, m);
    if (j->uniform < 0 && j->size < 100)
        strcpy(fw, "FW-EmuSensor-1.1.0");
    else
        snprintf(fw, sizeof fw, "FW-%s", j->id);

    sb_add(b, "{", 1);
    field(b, "SrcVersion", SRC_VERSIONS[i % 3], 1);
    if (i % 13 == 5)
        snprintf(buf, sizeof buf, "dev@%ld.lab", i);
    else if (i % 13 == 9)
        snprintf(buf, sizeof buf, "gw:%06ld_a-b.c", i);
    else
        snprintf(buf, sizeof buf, "device-%06ld", i);
    field(b, "DeviceName", buf, 0);
    field(b, "FirmwareId", fw, 0);
    snprintf(buf, sizeof buf, "SynIot%010ldEmu", i);
    field(b, "IotId", buf, 0);
    snprintf(buf, sizeof buf, "pk-%s", j->id); /* as spec/emulator/jobs.lua: one product per job */
    field(b, "ProductKey", buf, 0);
    field(b, "JobId", j->id, 0);
    field(b, "TaskDesc", desc, 0);
    field(b, "DestVersion", "1.1.0", 0);
    field(b, "UtcCreate", created, 0);
    field(b, "UtcModified", modified, 0);
    field(b, "TaskStatus", STATUSES[s], 0);
    field(b, "ProductName", "EmuSensor", 0);
    snprintf(buf, sizeof buf, "%s-T%07ld", j->id, i);
    field(b, "TaskId", buf, 0);
    field(b, "Progress", progress, 0);
    if (i % 4 == 0) {
        snprintf(buf, sizeof buf, "%ld", 30 * (i % 5 + 1));
        field(b, "Timeout", buf, 0);
    }
    sb_add(b, "}", 1);
}

static void request_id(char out[40], unsigned long n) {
    snprintf(out, 40, "C4EA9000-0000-4000-8000-%012lX", n);
}

/* ---- the page cache -------------------------------------------------------------------- */

struct page {
    struct page *next;
    char key[128];
    char *plain, *gz;
    size_t plain_len, gz_len;
};

static struct page *buckets[BUCKETS];
static unsigned long rid_counter;

static unsigned hash_key(const char *k) {
    uint32_t h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h & (BUCKETS - 1);
}

static void render_page(struct page *pg, const struct job *j, int status, long ps, long cp) {
    struct sb b = {0};
    char rid[40];
    long total = job_count(j, status), pages = (total + ps - 1) / ps, k;
    long first = (cp - 1) * ps + 1, last = cp * ps < total ? cp * ps : total;
    request_id(rid, ++rid_counter);
    sb_printf(&b, "{\"RequestId\":\"%s\",\"Success\":true,\"Total\":%ld,\"PageSize\":%ld,"
                  "\"CurrentPage\":%ld,\"PageCount\":%ld,\"Data\":",
              rid, total, ps, cp, pages);
    if (total == 0) {
        sb_str(&b, "{}");
    } else {
        sb_str(&b, "{\"SimpleOTATaskInfo\":[");
        for (k = first; k <= last; k++) {
            if (k > first)
                sb_add(&b, ",", 1);
            render_task(&b, j, job_kth(j, status, k));
        }
        sb_str(&b, "]}");
    }
    sb_add(&b, "}", 1);
    pg->plain = b.p;
    pg->plain_len = b.len;
    n_pages++;
    n_bytes += b.len;
}

static void compress_page(struct page *pg) {
    z_stream z;
    uLong bound;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2 failed");
    bound = deflateBound(&z, (uLong)pg->plain_len);
    pg->gz = malloc(bound);
    if (pg->gz == NULL)
        die("out of memory");
    z.next_in = (Bytef *)pg->plain;
    z.avail_in = (uInt)pg->plain_len;
    z.next_out = (Bytef *)pg->gz;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate failed");
    pg->gz_len = z.total_out;
    deflateEnd(&z);
    n_bytes += pg->gz_len;
}

static struct page *get_page(const struct job *j, int status, long ps, long cp, int gz) {
    char key[128];
    unsigned h;
    struct page *pg;
    snprintf(key, sizeof key, "%s|%d|%ld|%ld", j->id, status, ps, cp);
    h = hash_key(key);
    for (pg = buckets[h]; pg != NULL; pg = pg->next)
        if (strcmp(pg->key, key) == 0)
            break;
    if (pg == NULL) {
        pg = calloc(1, sizeof *pg);
        if (pg == NULL)
            die("out of memory");
        strcpy(pg->key, key);
        render_page(pg, j, status, ps, cp);
        pg->next = buckets[h];
        buckets[h] = pg;
    }
    if (gz && pg->gz == NULL)
        compress_page(pg);
    return pg;
}

/* ---- requests ------------------------------------------------------------------------ */

struct conn {
    int fd;
    struct sb in;               /* bytes read, not yet answered */
    struct sb out;              /* head of the answer (and a body that is not cached) */
    const char *body;           /* a cached body, sent after out */
    size_t body_len, out_off, body_off;
    int close_after;            /* close once the answer is sent */
    int continued;              /* "100 Continue" sent for the request in `in` */
};

struct params {
    char job[256], status[64], page_size[32], current_page[32], action[64];
    int has_job, has_status, has_page_size, has_current_page, has_action, device_names;
};

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated, truncated to cap - 1). */
static void url_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t i, o = 0;
    for (i = 0; i < n && o + 1 < cap; i++) {
        int c = (unsigned char)s[i], h1, h2;
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && (h1 = hexval(s[i + 1])) >= 0 && (h2 = hexval(s[i + 2])) >= 0) {
            c = h1 * 16 + h2;
            i += 2;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
}

static void parse_pairs(const char *s, size_t n, struct params *p) {
    const char *end = s + n;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s)), *e = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        char name[64];
        const char *v = eq ? eq + 1 : e;
        url_decode(s, (size_t)((eq ? eq : e) - s), name, sizeof name);
#define TAKE(NAME, BUF, FLAG) \
        if (strcmp(name, NAME) == 0) { url_decode(v, (size_t)(e - v), p->BUF, sizeof p->BUF); p->FLAG = 1; }
        TAKE("JobId", job, has_job)
        else TAKE("TaskStatus", status, has_status)
        else TAKE("PageSize", page_size, has_page_size)
        else TAKE("CurrentPage", current_page, has_current_page)
        else TAKE("Action", action, has_action)
        else if (strncmp(name, "DeviceNames.", 12) == 0) p->device_names = 1;
#undef TAKE
        s = e + 1;
    }
}

/* The gateway's Integer: optional '-', digits, 32-bit. */
static int parse_integer(const char *s, long *out) {
    const char *p = s;
    long long v;
    if (*p == '-')
        p++;
    if (*p == '\0' || strlen(s) > 11)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    v = strtoll(s, NULL, 10);
    if (v < -2147483648LL || v > 2147483647LL)
        return 0;
    *out = (long)v;
    return 1;
}

static void date_header(char out[64]) {
    static time_t last;
    static char cached[64];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof cached, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        last = now;
    }
    strcpy(out, cached);
}

static void head(struct conn *c, int status, const char *reason, size_t len, const char *rid,
                 int gz) {
    char date[64];
    date_header(date);
    sb_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=utf-8\r\n"
                       "Content-Length: %lu\r\n%s",
              status, reason, (unsigned long)len, date);
    if (rid != NULL)
        sb_printf(&c->out, "x-acs-request-id: %s\r\n", rid);
    if (gz)
        sb_str(&c->out, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
    sb_str(&c->out, c->close_after ? "Connection: close\r\n\r\n" : "\r\n");
}

/* An answer whose body is built now (errors, stats): head and body both in c->out. */
static void answer_now(struct conn *c, int status, const char *reason, struct sb *body,
                       const char *rid) {
    head(c, status, reason, body->len, rid, 0);
    sb_add(&c->out, body->p, body->len);
    free(body->p);
}

static void gateway_error(struct conn *c, const char *code, const char *msg) {
    struct sb b = {0};
    char rid[40];
    request_id(rid, ++rid_counter);
    sb_printf(&b, "{\"RequestId\":\"%s\",\"HostId\":\"iot.cn-shanghai.aliyuncs.com\",\"Code\":",
              rid);
    sb_json(&b, code, strlen(code));
    sb_str(&b, ",\"Message\":");
    sb_json(&b, msg, strlen(msg));
    sb_str(&b, ",\"Recommend\":\"\"}");
    answer_now(c, 400, "Bad Request", &b, rid);
}

static void iot_error(struct conn *c, const char *code, const char *msg) {
    struct sb b = {0};
    char rid[40];
    request_id(rid, ++rid_counter);
    sb_printf(&b, "{\"RequestId\":\"%s\",\"Success\":false,\"Code\":", rid);
    sb_json(&b, code, strlen(code));
    sb_str(&b, ",\"ErrorMessage\":");
    sb_json(&b, msg, strlen(msg));
    sb_str(&b, "}");
    answer_now(c, 200, "OK", &b, rid);
}

static void stats(struct conn *c) {
    struct rusage ru;
    struct sb b = {0};
    getrusage(RUSAGE_SELF, &ru);
    sb_printf(&b, "{\"user_seconds\":%ld.%06ld,\"sys_seconds\":%ld.%06ld,\"requests\":%lu,"
                  "\"pages\":%lu,\"bytes\":%lu,\"max_rss_kb\":%ld}",
              (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec,
              (long)ru.ru_stime.tv_usec, n_requests, n_pages, (unsigned long)n_bytes,
              ru.ru_maxrss);
    answer_now(c, 200, "OK", &b, NULL);
}

/* ota.lua's call(), for the cases served here. */
static void list_tasks(struct conn *c, struct params *p, int gz) {
    long ps = 10, cp = 1;
    int status = -1;
    struct job j;
    struct page *pg;
    char msg[512];
    if (p->has_action && strcmp(p->action, "ListOTATaskByJob") != 0) {
        gateway_error(c, "InvalidAction.NotFound", "cheap_server answers ListOTATaskByJob only");
        return;
    }
    if (!p->has_job || p->job[0] == '\0') {
        gateway_error(c, "MissingJobId", "JobId is mandatory for this action.");
        return;
    }
    if (p->has_page_size && !parse_integer(p->page_size, &ps)) {
        snprintf(msg, sizeof msg, "The specified parameter \"PageSize\" is not valid. It must be "
                 "an Integer, got \"%s\".", p->page_size);
        gateway_error(c, "InvalidParameter", msg);
        return;
    }
    if (p->has_current_page && !parse_integer(p->current_page, &cp)) {
        snprintf(msg, sizeof msg, "The specified parameter \"CurrentPage\" is not valid. It must "
                 "be an Integer, got \"%s\".", p->current_page);
        gateway_error(c, "InvalidParameter", msg);
        return;
    }
    if (p->device_names) {
        gateway_error(c, "InvalidParameter", "cheap_server does not serve DeviceNames");
        return;
    }
    if (p->has_status) {
        status = status_index(p->status);
        if (status < 0) {
            snprintf(msg, sizeof msg, "TaskStatus is invalid: %s (one of QUEUED, NOTIFIED, "
                     "IN_PROGRESS, SUCCEEDED, FAILED, CANCELED, CONFIRM).", p->status);
            iot_error(c, "iot.common.InvalidParameter", msg);
            return;
        }
    }
    if (ps < 1 || ps > MAX_PAGE_SIZE) {
        snprintf(msg, sizeof msg, "PageSize must be between 1 and %d, got %ld.", MAX_PAGE_SIZE, ps);
        iot_error(c, "iot.common.InvalidPageParams", msg);
        return;
    }
    if (cp < 1) {
        snprintf(msg, sizeof msg, "CurrentPage must be at least 1, got %ld.", cp);
        iot_error(c, "iot.common.InvalidPageParams", msg);
        return;
    }
    if (cp * ps > MAX_DEPTH) {
        snprintf(msg, sizeof msg, "Paging too deep: CurrentPage * PageSize must not exceed %d, "
                 "got %ld * %ld.", MAX_DEPTH, cp, ps);
        iot_error(c, "iot.common.InvalidPageParams", msg);
        return;
    }
    if (!job_parse(p->job, &j)) {
        snprintf(msg, sizeof msg, "The OTA job does not exist: %s.", p->job);
        iot_error(c, "iot.ota.OtaJobNotExist", msg);
        return;
    }
    pg = get_page(&j, status, ps, cp, gz);
    {
        char rid[40];
        memcpy(rid, pg->plain + 14, 36); /* {"RequestId":"<36 characters>" */
        rid[36] = '\0';
        head(c, 200, "OK", gz ? pg->gz_len : pg->plain_len, rid, gz);
    }
    c->body = gz ? pg->gz : pg->plain;
    c->body_len = gz ? pg->gz_len : pg->plain_len;
}

/* Case-insensitive: does header line [s, e) have name `name`? Then its value. */
static const char *header_value(const char *s, const char *e, const char *name, size_t *vlen) {
    size_t n = strlen(name);
    const char *v;
    if ((size_t)(e - s) <= n || s[n] != ':' || strncasecmp(s, name, n) != 0)
        return NULL;
    v = s + n + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *vlen = (size_t)(e - v);
    return v;
}

static int contains_token(const char *v, size_t n, const char *tok) {
    size_t t = strlen(tok), i;
    for (i = 0; i + t <= n; i++)
        if (strncasecmp(v + i, tok, t) == 0)
            return 1;
    return 0;
}

static const char *find_end_of_head(const char *p, size_t n) {
    size_t i;
    for (i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i + 4;
    return NULL;
}

/*
 * Answer the first complete request in c->in, if there is one: 1 when an answer is queued
 * (the request is consumed), 0 when more bytes are needed, -1 to drop the connection.
 */
static int handle_request(struct conn *c) {
    const char *p = c->in.p, *end_head, *line, *eol, *sp1, *sp2, *q;
    size_t content_length = 0, used, vlen;
    int keepalive, http10, gz = 0, expect = 0, form = 0;
    struct params prm;
    if (c->in.len == 0)
        return 0;
    end_head = find_end_of_head(p, c->in.len);
    if (end_head == NULL)
        return c->in.len > MAX_REQUEST ? -1 : 0;
    eol = memchr(p, '\r', (size_t)(end_head - p));
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL)
        return -1;
    http10 = (size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
    keepalive = !http10;
    memset(&prm, 0, sizeof prm);
    for (line = eol + 2; line < end_head - 2; line = eol + 2) {
        const char *v;
        eol = memchr(line, '\r', (size_t)(end_head - line));
        if ((v = header_value(line, eol, "content-length", &vlen)) != NULL) {
            content_length = (size_t)strtoul(v, NULL, 10);
        } else if ((v = header_value(line, eol, "transfer-encoding", &vlen)) != NULL) {
            return -1; /* chunked request bodies: not served */
        } else if ((v = header_value(line, eol, "connection", &vlen)) != NULL) {
            if (contains_token(v, vlen, "close"))
                keepalive = 0;
            else if (contains_token(v, vlen, "keep-alive"))
                keepalive = 1;
        } else if ((v = header_value(line, eol, "accept-encoding", &vlen)) != NULL) {
            gz = contains_token(v, vlen, "gzip") && !contains_token(v, vlen, "gzip;q=0");
        } else if ((v = header_value(line, eol, "expect", &vlen)) != NULL) {
            expect = contains_token(v, vlen, "100-continue");
        } else if ((v = header_value(line, eol, "content-type", &vlen)) != NULL) {
            form = contains_token(v, vlen, "application/x-www-form-urlencoded");
        } else if ((v = header_value(line, eol, "x-acs-action", &vlen)) != NULL) {
            url_decode(v, vlen, prm.action, sizeof prm.action);
            prm.has_action = 1;
        }
    }
    if (content_length > MAX_REQUEST)
        return -1;
    used = (size_t)(end_head - p) + content_length;
    if (c->in.len < used) {
        if (expect && !c->continued) {
            sb_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            c->continued = 1;
        }
        return 0;
    }
    n_requests++;
    c->close_after = !keepalive;
    q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
    if (verbose)
        fprintf(stderr, "cheap_server: %.*s%s\n", (int)(sp2 - p), p, gz ? " (gzip)" : "");
    if ((size_t)(sp2 - sp1 - 1) >= 14 && memcmp(sp1 + 1, "/__cheap/stats", 14) == 0) {
        stats(c);
    } else if (sp1 + 2 > sp2 || sp1[1] != '/' || (sp1 + 2 != sp2 && sp1[2] != '?')) {
        gateway_error(c, "InvalidAction.NotFound", "cheap_server serves / only");
    } else if (!((sp1 - p == 3 && memcmp(p, "GET", 3) == 0) ||
                 (sp1 - p == 4 && memcmp(p, "POST", 4) == 0))) {
        gateway_error(c, "InvalidAction.NotFound", "method must be GET or POST");
    } else {
        if (q != NULL)
            parse_pairs(q + 1, (size_t)(sp2 - q - 1), &prm);
        if (form && content_length > 0)
            parse_pairs(end_head, content_length, &prm);
        list_tasks(c, &prm, gz);
    }
    /* Consume the request; keep what follows (pipelined requests). */
    memmove(c->in.p, c->in.p + used, c->in.len - used);
    c->in.len -= used;
    c->continued = 0;
    return 1;
}

/* ---- the loop -------------------------------------------------------------------------- */

static struct conn **conns;
static struct pollfd *pfds;
static size_t nconns, capconns;

static void conn_free(size_t i) {
    struct conn *c = conns[i];
    close(c->fd);
    free(c->in.p);
    free(c->out.p);
    free(c);
    conns[i] = conns[nconns - 1];
    nconns--;
}

/* Send what is queued; 1 when all of it went, 0 when the socket is full, -1 on error. */
static int flush(struct conn *c) {
    for (;;) {
        struct iovec iov[2];
        int n = 0;
        ssize_t w;
        size_t out_left = c->out.len - c->out_off, body_left = c->body_len - c->body_off;
        if (out_left == 0 && body_left == 0) {
            c->out.len = c->out_off = 0;
            c->body = NULL;
            c->body_len = c->body_off = 0;
            return 1;
        }
        if (out_left > 0) {
            iov[n].iov_base = c->out.p + c->out_off;
            iov[n++].iov_len = out_left;
        }
        if (body_left > 0) {
            iov[n].iov_base = (void *)(c->body + c->body_off);
            iov[n++].iov_len = body_left;
        }
        w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        if ((size_t)w <= out_left) {
            c->out_off += (size_t)w;
        } else {
            c->out_off = c->out.len;
            c->body_off += (size_t)w - out_left;
        }
    }
}

/* Read, answer, send; 0 to keep the connection, -1 to drop it. */
static int serve(struct conn *c, short revents) {
    if (revents & (POLLERR | POLLNVAL))
        return -1;
    if (revents & (POLLIN | POLLHUP)) {
        for (;;) {
            ssize_t r;
            sb_reserve(&c->in, 16384);
            r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1);
            if (r > 0) {
                c->in.len += (size_t)r;
                if (c->in.len > 2 * MAX_REQUEST)
                    return -1;
                continue;
            }
            if (r == 0)
                return -1; /* the client closed: whatever is unanswered is dropped */
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
    }
    for (;;) {
        int rc, h;
        if (c->out.len > c->out_off || c->body_len > c->body_off) {
            rc = flush(c);
            if (rc < 0)
                return -1;
            if (rc == 0)
                return 0; /* POLLOUT will bring us back */
            if (c->close_after)
                return -1;
        }
        h = handle_request(c);
        if (h < 0)
            return -1;
        if (h == 0) {
            if (c->out.len > c->out_off) /* a 100 Continue */
                continue;
            return 0;
        }
    }
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl: %s", strerror(errno));
}

static void accept_all(int lfd) {
    for (;;) {
        int fd = accept(lfd, NULL, NULL), one = 1;
        struct conn *c;
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN, or out of descriptors: try again on the next wakeup */
        }
        set_nonblock(fd);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (nconns == capconns) {
            capconns = capconns ? capconns * 2 : 16;
            conns = realloc(conns, capconns * sizeof *conns);
            pfds = realloc(pfds, (capconns + 1) * sizeof *pfds);
            if (conns == NULL || pfds == NULL)
                die("out of memory");
        }
        c = calloc(1, sizeof *c);
        if (c == NULL)
            die("out of memory");
        c->fd = fd;
        conns[nconns++] = c;
    }
}

static void warm(const char *spec) {
    char id[128];
    const char *colon = strchr(spec, ':');
    long ps = 100, cp, pages;
    struct job j;
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n >= sizeof id)
        die("--warm %s: JobId too long", spec);
    memcpy(id, spec, n);
    id[n] = '\0';
    if (colon != NULL)
        ps = strtol(colon + 1, NULL, 10);
    if (!job_parse(id, &j) || ps < 1 || ps > MAX_PAGE_SIZE)
        die("--warm %s: want job-<N>[-<STATUS>][:PAGE_SIZE]", spec);
    pages = (j.size + ps - 1) / ps;
    if (pages < 1)
        pages = 1;
    for (cp = 1; cp <= pages && cp * ps <= MAX_DEPTH; cp++)
        get_page(&j, -1, ps, cp, 1);
}

int main(int argc, char **argv) {
    int port = 0, foreground = 0, lfd, one = 1, i;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    pid_t pid;

    jobs_init();
    signal(SIGPIPE, SIG_IGN);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--foreground") == 0)
            foreground = 1;
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--warm") == 0 && i + 1 < argc)
            warm(argv[++i]);
        else
            die("usage: cheap_server [--port N] [--warm JOB[:PAGE_SIZE]]... [--foreground] "
                "[--verbose]");
    }

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        die("socket: %s", strerror(errno));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind 127.0.0.1:%d: %s", port, strerror(errno));
    if (listen(lfd, 128) < 0)
        die("listen: %s", strerror(errno));
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
        die("getsockname: %s", strerror(errno));
    set_nonblock(lfd);

    if (!foreground) {
        fflush(stdout);
        pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid > 0) {
            printf("%d %ld\n", ntohs(addr.sin_port), (long)pid);
            return 0;
        }
        setsid();
        if (freopen("/dev/null", "r", stdin) == NULL || freopen("/dev/null", "w", stdout) == NULL)
            die("cannot reopen stdio");
    } else {
        printf("%d %ld\n", ntohs(addr.sin_port), (long)getpid());
        fflush(stdout);
    }

    for (;;) {
        size_t k;
        int n;
        if (pfds == NULL) {
            pfds = malloc(sizeof *pfds);
            if (pfds == NULL)
                die("out of memory");
        }
        pfds[0].fd = lfd;
        pfds[0].events = POLLIN;
        for (k = 0; k < nconns; k++) {
            struct conn *c = conns[k];
            pfds[k + 1].fd = c->fd;
            pfds[k + 1].events =
                (c->out.len > c->out_off || c->body_len > c->body_off) ? POLLOUT : POLLIN;
            pfds[k + 1].revents = 0;
        }
        n = poll(pfds, (nfds_t)(nconns + 1), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        /* Connections first (indexes match pfds), from the end so conn_free can swap in. */
        for (k = nconns; k-- > 0;) {
            short re = pfds[k + 1].revents;
            if (re != 0 && serve(conns[k], re) < 0)
                conn_free(k);
        }
        if (pfds[0].revents & POLLIN)
            accept_all(lfd);
    }
}
