/* Echo load generator for cxxloop's benchmark.
 *
 *   loadgen HOST PORT CONNECTIONS MESSAGE_SIZE MILLISECONDS
 *
 * Opens CONNECTIONS TCP connections (with TCP_NODELAY); on each, sends a MESSAGE_SIZE message,
 * waits until all of it has come back, and sends the next, until
 * MILLISECONDS have passed. Prints "messages bytes seconds" (round trips
 * completed, bytes echoed back, time measured) on one line.
 *
 * One thread and epoll, so it uses one core: the benchmark pins it to a
 * core of its own, away from the server under test.
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
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t to_send;   /* bytes of the current message not yet sent */
    size_t to_recv;   /* bytes of the current message not yet echoed */
    int watching_out; /* EPOLLOUT is in the interest set */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTIONS MESSAGE_SIZE MILLISECONDS\n", argv[0]);
        return 2;
    }
    int nconn = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    double duration = atof(argv[5]) / 1000.0;
    if (nconn <= 0 || size == 0 || duration <= 0) {
        fprintf(stderr, "CONNECTIONS, MESSAGE_SIZE and MILLISECONDS must be positive\n");
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("inet_pton");

    char *out = malloc(size), *in = malloc(size < 262144 ? 262144 : size);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!out || !in || !conns) die("malloc");
    for (size_t i = 0; i < size; i++) out[i] = (char)('a' + i % 26);

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[i] = (struct conn){fd, size, size, 1};
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    }

    unsigned long long messages = 0, bytes = 0;
    double start = now(), end = start + duration;
    struct epoll_event events[256];
    while (now() < end) {
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (c->to_send) {
                ssize_t w = send(c->fd, out + (size - c->to_send), c->to_send, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w > 0) c->to_send -= (size_t)w;
                else if (w < 0 && errno != EAGAIN) die("send");
            }
            ssize_t r = recv(c->fd, in, c->to_recv, MSG_DONTWAIT);
            if (r == 0) {
                fprintf(stderr, "the server closed a connection\n");
                return 1;
            }
            if (r < 0 && errno != EAGAIN) die("recv");
            if (r > 0) {
                c->to_recv -= (size_t)r;
                bytes += (unsigned long long)r;
                if (c->to_recv == 0) {
                    messages++;
                    c->to_send = c->to_recv = size;
                    ssize_t w = send(c->fd, out, size, MSG_DONTWAIT | MSG_NOSIGNAL);
                    if (w > 0) c->to_send -= (size_t)w;
                    else if (w < 0 && errno != EAGAIN) die("send");
                }
            }
            /* Wait for writability only while part of a message is unsent. */
            int want_out = c->to_send != 0;
            if (want_out != c->watching_out) {
                struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
                c->watching_out = want_out;
            }
        }
    }
    double elapsed = now() - start;
    printf("%llu %llu %.6f\n", messages, bytes, elapsed);
    return 0;
}
