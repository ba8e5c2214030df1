/* metrics_server.c - GET /metrics with libmicrohttpd on a listener bound here (so a port in
 * use is reported as such). */
/* SPDX-License-Identifier: MIT */
#include "metrics_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define METRICS_BACKLOG 16

struct metrics_server {
    struct MHD_Daemon *mhd;
    metrics_collect_fn collect;
    void *arg;
    uint16_t port;
    char addr[METRICS_ADDR_MAX];
};

/* A whole decimal 1..65535. */
static int parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -ERANGE;
    }
    if (v == 0)
        return -ERANGE;
    *out = (uint16_t)v;
    return 0;
}

int metrics_endpoint_parse(const char *s, struct metrics_endpoint *out, const char **why)
{
    const char *port = s, *addr = METRICS_DEFAULT_ADDR;
    size_t addr_len = strlen(METRICS_DEFAULT_ADDR);
    unsigned char probe[sizeof(struct in6_addr)];
    const char *colon = strrchr(s, ':');

    memset(out, 0, sizeof *out);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (end == NULL || end[1] != ':') {
            *why = "expected [IPV6]:PORT";
            return -EINVAL;
        }
        addr = s + 1;
        addr_len = (size_t)(end - addr);
        port = end + 2;
    } else if (colon != NULL) {
        if (strchr(s, ':') != colon) {
            *why = "an IPv6 address goes in brackets: [ADDR]:PORT";
            return -EINVAL;
        }
        addr = s;
        addr_len = (size_t)(colon - s);
        port = colon + 1;
    }
    if (addr_len == 0 || addr_len >= sizeof out->addr) {
        *why = "expected [ADDR:]PORT with a numeric address";
        return -EINVAL;
    }
    memcpy(out->addr, addr, addr_len);
    out->addr[addr_len] = '\0';
    if (inet_pton(AF_INET, out->addr, probe) != 1 && inet_pton(AF_INET6, out->addr, probe) != 1) {
        *why = "the address must be a numeric IPv4 or IPv6 address";
        return -EINVAL;
    }
    if (parse_port(port, &out->port) < 0) {
        *why = "the port must be 1..65535";
        return -EINVAL;
    }
    return 0;
}

/* A bound, listening, non-blocking socket on ep. Returns the fd or -errno. */
static int listen_on(const struct metrics_endpoint *ep)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, rc;

    memset(&ss, 0, sizeof ss);
    if (strchr(ep->addr, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons(ep->port);
        if (inet_pton(AF_INET6, ep->addr, &a->sin6_addr) != 1)
            return -EINVAL;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_port = htons(ep->port);
        if (inet_pton(AF_INET, ep->addr, &a->sin_addr) != 1)
            return -EINVAL;
        len = sizeof *a;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* A restart must not wait out the last run's TIME_WAIT connections; a listener that is
     * still there is EADDRINUSE all the same. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto err;
    if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto err;
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, METRICS_BACKLOG) < 0)
        goto err;
    return fd;
err:
    rc = -errno;
    close(fd);
    return rc;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             const char *allow)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                        MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result serve_page(struct metrics_server *m, struct MHD_Connection *c)
{
    struct MHD_Response *r;
    struct prom_buf b;
    enum MHD_Result ret;
    size_t len = 0;
    char *page;
    int rc;

    prom_buf_init(&b, METRICS_PAGE_MAX);
    rc = m->collect(&b, m->arg);
    if (rc == 0)
        rc = prom_buf_error(&b);
    page = prom_buf_take(&b, &len);
    if (rc < 0 || page == NULL) {
        free(page);
        if (rc < 0)
            log_warn(-rc, "metrics: cannot write the page");
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the metrics\n", NULL);
    }
    r = MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(page);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, PROM_CONTENT_TYPE);
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct metrics_server *m = cls;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    /* Answered on the first call, before any body: MHD discards what a client still sends. */
    if (strcmp(url, METRICS_PATH) != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at " METRICS_PATH "\n",
                     NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    return serve_page(m, c);
}

/* libmicrohttpd's log callback: fmt is its own printf format. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    log_debug("metrics: %s", line);
}

int metrics_server_start(struct metrics_server **out, const struct metrics_endpoint *ep,
                         metrics_collect_fn collect, void *arg)
{
    struct metrics_server *m;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    sigset_t block, old;
    int fd, rc;

    m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->collect = collect;
    m->arg = arg;
    memcpy(m->addr, ep->addr, sizeof m->addr);
    fd = listen_on(ep);
    if (fd < 0) {
        free(m);
        return fd;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    /* The thread MHD starts inherits this mask: the daemons' signals stay with their threads. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGPIPE);
    rc = pthread_sigmask(SIG_BLOCK, &block, &old);
    if (rc != 0) {
        close(fd);
        free(m);
        return -rc;
    }
    m->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                              on_request, m, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONN_MAX,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_CONN_PER_IP,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_IDLE_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (m->mhd == NULL) {
        close(fd);
        free(m);
        return -EIO;
    }
    *out = m;
    return 0;
}

uint16_t metrics_server_port(const struct metrics_server *m)
{
    return m->port;
}

void metrics_server_url(const struct metrics_server *m, char *out, size_t cap)
{
    int v6 = strchr(m->addr, ':') != NULL;

    snprintf(out, cap, "http://%s%s%s:%u%s", v6 ? "[" : "", m->addr, v6 ? "]" : "",
             (unsigned)m->port, METRICS_PATH);
}

void metrics_server_stop(struct metrics_server *m)
{
    if (m == NULL)
        return;
    MHD_stop_daemon(m->mhd); /* closes the listener and every connection, joins the thread */
    free(m);
}
