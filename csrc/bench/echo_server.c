/* A plain C epoll echo server: the ceiling the benchmark compares the
 * event loops' echo servers with.
 *
 *   echo_server [http]
 *
 * Listens on an ephemeral loopback port, prints the port on one line, and
 * echoes every connection until it is killed. Level-triggered epoll, one
 * read and as many writes as the socket takes per event, as simple as an
 * echo server gets; no Python anywhere.
 *
 * With "http", it answers instead, like the benchmark's raw Protocol
 * responder: one fixed keep-alive response for every request head (every
 * "\r\n\r\n") read, all of a read's responses in one write.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSIZE (256 * 1024)

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "Connection: keep-alive\r\n\r\nHello, World!";
#define RESPONSE_LEN (sizeof RESPONSE - 1)

struct conn {
    int fd;
    size_t pending, offset;  /* bytes not yet written, from buf + offset */
    unsigned watching;       /* EPOLLIN or EPOLLOUT: what epoll reports */
    unsigned matched;        /* http: how much of "\r\n\r\n" the input ends with */
    char buf[BUFSIZE];
};

/* http: replaces the n request bytes in c->buf with the responses they ask
 * for, and returns the responses' length. A read of BUFSIZE bytes holds at
 * most BUFSIZE / 4 request heads; past what fits in the buffer, the
 * responses are dropped, which wrk reports as a timeout, so it never goes
 * unnoticed. */
static size_t answer(struct conn *c, size_t n) {
    static const char END[] = "\r\n\r\n";
    size_t heads = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = c->buf[i];
        c->matched = ch == END[c->matched] ? c->matched + 1 : (ch == '\r' ? 1 : 0);
        if (c->matched == 4) {
            heads++;
            c->matched = 0;
        }
    }
    if (heads > BUFSIZE / RESPONSE_LEN) heads = BUFSIZE / RESPONSE_LEN;
    for (size_t i = 0; i < heads; i++) memcpy(c->buf + i * RESPONSE_LEN, RESPONSE, RESPONSE_LEN);
    return heads * RESPONSE_LEN;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void watch(int ep, int op, struct conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
    close(c->fd);
    free(c);
}

int main(int argc, char **argv) {
    int http = argc > 1 && strcmp(argv[1], "http") == 0;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) die("bind/listen");
    if (getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = malloc(sizeof *nc);
                    if (!nc) die("malloc");
                    nc->fd = fd;
                    nc->pending = nc->offset = 0;
                    nc->matched = 0;
                    nc->watching = EPOLLIN;
                    watch(ep, EPOLL_CTL_ADD, nc, EPOLLIN);
                }
                continue;
            }
            if (!c->pending) {
                ssize_t r = read(c->fd, c->buf, BUFSIZE);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    drop(c);
                    continue;
                }
                if (r < 0) continue;
                c->pending = http ? answer(c, (size_t)r) : (size_t)r;
                c->offset = 0;
            }
            while (c->pending) {
                ssize_t w = write(c->fd, c->buf + c->offset, c->pending);
                if (w < 0) break;
                c->pending -= (size_t)w;
                c->offset += (size_t)w;
            }
            if (c->pending && errno != EAGAIN) {
                drop(c);
                continue;
            }
            /* Stop reading while an echo waits for room: backpressure. */
            unsigned want = c->pending ? EPOLLOUT : EPOLLIN;
            if (want != c->watching) {
                watch(ep, EPOLL_CTL_MOD, c, want);
                c->watching = want;
            }
        }
    }
}
