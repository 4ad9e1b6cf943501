/* rocket's echo load generator: N connections, each sends one message and
 * waits for its whole echo before sending the next (as in the C project's
 * benchmark). Every echoed byte is compared with what was sent.
 *
 * usage: loadgen HOST PORT CLIENTS SIZE WARMUP_S DURATION_S
 * prints "go" after connecting and warming up, then after DURATION_S:
 *   "requests=N errors=E cpu_us=U" (U: this process's own CPU time).
 * Then it stops sending, waits (at most 2 s) for the echoes still on their
 * way and closes every connection, so that the server sees a clean EOF and
 * not a reset: the benchmark's warm-up runs one of these, then measures with
 * another on new connections against the same server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn { int fd; size_t got; unsigned char seq; };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void fill(unsigned char *buf, size_t size, unsigned char seq, int fd) {
    for (size_t i = 0; i < size; i++) buf[i] = (unsigned char)(seq + i + fd);
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: loadgen HOST PORT CLIENTS SIZE WARMUP DURATION\n"); return 2; }
    const char *host = argv[1];
    int port = atoi(argv[2]), clients = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    double warmup = atof(argv[5]), duration = atof(argv[6]);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    int ep = epoll_create1(0);
    struct conn *conns = calloc(clients, sizeof *conns);
    unsigned char *out = malloc(size), *expect = malloc(size), *in = malloc(size);
    for (int i = 0; i < clients; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fill(out, size, 0, fd);
        if (send(fd, out, size, 0) != (ssize_t)size) { perror("send"); return 1; }
    }
    long requests = 0, errors = 0, cpu_start = 0;
    int measuring = 0;
    double start = now(), phase_end = start + warmup;
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        if (t >= phase_end) {
            if (measuring) break;
            measuring = 1; requests = 0; errors = 0; cpu_start = cpu_us();
            printf("go\n"); fflush(stdout);
            phase_end = t + duration;
        }
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            ssize_t r = recv(c->fd, in, size - c->got, 0);
            if (r <= 0) { if (r < 0 && errno == EINTR) continue; fprintf(stderr, "connection lost\n"); return 1; }
            fill(expect, size, c->seq, c->fd);
            if (memcmp(in, expect + c->got, (size_t)r) != 0) errors++;
            c->got += (size_t)r;
            if (c->got == size) {
                c->got = 0; c->seq++; requests++;
                fill(out, size, c->seq, c->fd);
                if (send(c->fd, out, size, 0) != (ssize_t)size) { perror("send"); return 1; }
            }
        }
    }
    printf("requests=%ld errors=%ld cpu_us=%ld\n", requests, errors, cpu_us() - cpu_start);
    fflush(stdout);
    /* Drain: every connection has one message out; wait for its whole echo. */
    int outstanding = clients;
    double drain_end = now() + 2.0;
    while (outstanding > 0 && now() < drain_end) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            ssize_t r = recv(c->fd, in, size - c->got, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0 || (c->got += (size_t)r) == size) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                outstanding--;
            }
        }
    }
    for (int i = 0; i < clients; i++) close(conns[i].fd);
    return 0;
}
