/* End-to-end test of the hf_xet C ABI, written as a C host would use it: upload a file to
 * a CAS server on loopback, download it back, compare. CAS tokens come from the server's
 * Hub-style token endpoint, fetched by this program with a plain HTTP/1.1 GET each time
 * the library asks (token_request) -- the server issues short-lived tokens, so the
 * library must ask more than once. Callbacks arrive on library threads; they only record
 * and signal, the main thread does the work.
 *
 * usage: e2e HOST PORT USER_TOKEN REPO CACHE_DIR INPUT OUTPUT
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hf_xet.h"

#define MAX_PENDING 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static uint64_t pending[MAX_PENDING];
static int npending = 0;
static int done = 0;
static int32_t done_code = -1;
static char *done_payload = NULL;
static uint64_t progress_calls = 0;
static uint64_t last_total_processed = 0;
static uint64_t token_requests = 0;

static void on_progress(void *ud, uint64_t op, int64_t item, uint64_t processed, uint64_t total,
                        uint64_t transferred, uint64_t deduped) {
    (void)ud; (void)op; (void)total; (void)transferred; (void)deduped;
    pthread_mutex_lock(&lock);
    progress_calls++;
    if (item == -1) last_total_processed = processed;
    pthread_mutex_unlock(&lock);
}

static void on_token(void *ud, uint64_t op, uint64_t request_id) {
    (void)ud; (void)op;
    pthread_mutex_lock(&lock);
    if (npending < MAX_PENDING) pending[npending++] = request_id;
    token_requests++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_done(void *ud, uint64_t op, int32_t code, char *payload) {
    (void)ud; (void)op;
    pthread_mutex_lock(&lock);
    done = 1;
    done_code = code;
    done_payload = payload; /* owned by us now: freed by the main thread */
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* GET path from host:port with a bearer token; returns the body (malloc'd) or NULL. */
static char *http_get(const char *host, int port, const char *path, const char *bearer) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return NULL;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
                     path, host, port, bearer);
    if (n <= 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { close(fd); return NULL; }
    ssize_t r;
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0) len += (size_t)r;
    close(fd);
    buf[len] = 0;
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0) { fprintf(stderr, "token endpoint: %.60s\n", buf); free(buf); return NULL; }
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) { free(buf); return NULL; }
    char *out = strdup(body + 4);
    free(buf);
    return out;
}

/* Copies the JSON string value of "key" into out; 0 on success. */
static int json_str(const char *json, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap) return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return 0;
}

static int json_u64(const char *json, const char *key, uint64_t *out) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return -1;
    *out = strtoull(p + strlen(pat), NULL, 10);
    return 0;
}

static const char *g_host, *g_user_token, *g_repo;
static int g_port;

/* Fetches a CAS token; fills token, exp and (if cas_url != NULL) the CAS URL. */
static int fetch_token(char *token, size_t cap, uint64_t *exp, char *cas_url, size_t url_cap) {
    char path[512];
    snprintf(path, sizeof path, "/api/models/%s/xet-write-token/main", g_repo);
    char *body = http_get(g_host, g_port, path, g_user_token);
    if (!body) return -1;
    int rc = json_str(body, "accessToken", token, cap) || json_u64(body, "exp", exp) ||
             (cas_url && json_str(body, "casUrl", cas_url, url_cap));
    free(body);
    return rc ? -1 : 0;
}

/* Runs until the operation is done, answering token requests; returns its code. */
static int32_t wait_done(void) {
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!done && npending == 0) pthread_cond_wait(&cond, &lock);
        if (npending == 0 && done) {
            int32_t code = done_code;
            pthread_mutex_unlock(&lock);
            return code;
        }
        uint64_t id = pending[--npending];
        pthread_mutex_unlock(&lock);
        char token[512];
        uint64_t exp = 0;
        if (fetch_token(token, sizeof token, &exp, NULL, 0) == 0) {
            if (hf_xet_token_reply(id, token, exp) != HF_XET_OK) fprintf(stderr, "token_reply refused\n");
        } else {
            hf_xet_token_error(id, "could not reach the token endpoint");
        }
    }
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT USER_TOKEN REPO CACHE_DIR INPUT OUTPUT\n", argv[0]);
        return 2;
    }
    g_host = argv[1];
    g_port = atoi(argv[2]);
    g_user_token = argv[3];
    g_repo = argv[4];
    const char *cache = argv[5], *input = argv[6], *output = argv[7];
    printf("hf_xet %s\n", hf_xet_version());
    if (hf_xet_init(NULL) != HF_XET_OK) return 1;

    char cas_url[256], token[512];
    uint64_t exp = 0;
    if (fetch_token(token, sizeof token, &exp, cas_url, sizeof cas_url) != 0) {
        fprintf(stderr, "no token from the token endpoint\n");
        return 1;
    }
    char options[1024];
    snprintf(options, sizeof options,
             "{\"endpoint\":\"%s\",\"token\":\"%s\",\"tokenExpiry\":%" PRIu64 ",\"cacheDir\":\"%s\"}", cas_url,
             token, exp, cache);

    /* Upload. */
    const char *paths[1] = {input};
    uint64_t op = 0;
    if (hf_xet_upload_files(options, paths, 1, on_progress, on_token, on_done, NULL, &op) != HF_XET_OK) {
        char *m = hf_xet_last_error_message();
        fprintf(stderr, "upload did not start: %s\n", m ? m : "?");
        hf_xet_string_free(m);
        return 1;
    }
    int32_t code = wait_done();
    if (code != HF_XET_OK) {
        fprintf(stderr, "upload failed (%d): %s\n", code, done_payload);
        return 1;
    }
    char hash[65];
    uint64_t size = 0;
    if (json_str(done_payload, "hash", hash, sizeof hash) != 0 || json_u64(done_payload, "size", &size) != 0) {
        fprintf(stderr, "bad upload result: %s\n", done_payload);
        return 1;
    }
    printf("uploaded %s (%" PRIu64 " bytes)\n", hash, size);
    if (hf_xet_string_free(done_payload) != HF_XET_OK) return 1;
    if (hf_xet_string_free(done_payload) != HF_XET_ERR_UNKNOWN_HANDLE) return 1; /* double free caught */
    uint64_t upload_progress = progress_calls, upload_processed = last_total_processed;

    /* Download. */
    pthread_mutex_lock(&lock);
    done = 0;
    done_payload = NULL;
    pthread_mutex_unlock(&lock);
    const char *hashes[1] = {hash};
    const char *dests[1] = {output};
    uint64_t sizes[1] = {size};
    if (hf_xet_download_files(options, hashes, sizes, dests, NULL, NULL, 1, on_progress, on_token, on_done, NULL,
                              &op) != HF_XET_OK) {
        fprintf(stderr, "download did not start\n");
        return 1;
    }
    code = wait_done();
    if (code != HF_XET_OK) {
        fprintf(stderr, "download failed (%d): %s\n", code, done_payload);
        return 1;
    }
    hf_xet_string_free(done_payload);
    if (!files_equal(input, output)) {
        fprintf(stderr, "downloaded file differs\n");
        return 1;
    }
    printf("downloaded and compared: identical\n");
    printf("upload progress callbacks: %" PRIu64 " (last total %" PRIu64 ")\n", upload_progress, upload_processed);
    printf("download progress callbacks: %" PRIu64 " (last total %" PRIu64 ")\n", progress_calls - upload_progress,
           last_total_processed);
    printf("token requests answered: %" PRIu64 "\n", token_requests);
    if (upload_progress == 0 || upload_processed != size || last_total_processed != size) return 1;
    return 0;
}
