/*
 * floor.c — the physical floor for SSE fan-out on this machine.
 *
 * A minimal single-threaded epoll server that does nothing but what the
 * benchmark's SSE scenarios need, in the cheapest way the kernel allows:
 *
 *   public port     GET /sub/{channel}[?anything]  -> one write of the SSE head
 *                   HTTP/1.1 200 OK
 *                   Content-Type: text/event-stream
 *                   Cache-Control: no-cache
 *                   Connection: close
 *                   and the connection is held (anything it sends later is
 *                   read and discarded; EOF or an error drops it).
 *                   GET /healthz -> 200 "ok" and close.
 *   publisher port  POST /pub/{channel} with a Content-Length body, keep-alive,
 *                   pipelined requests answered in order:
 *                   -> exactly one write() per subscriber of that channel of
 *                      "data: <payload>\nid: N\n\n" (N = the channel's counter),
 *                      then 201 {"id":"N","subscribers":K}.
 *                   GET /healthz -> 200 "ok"; GET /stats -> counters as JSON.
 *
 * No queueing: a write() that fails with EAGAIN is a counted drop; a short
 * write (part of an event in the socket) would corrupt the stream, so that
 * subscriber is closed and counted as "partial". No history: ?last_event_id
 * is accepted and ignored. Payload lines (LF) become several data: lines.
 *
 * Binds 127.0.0.1 only. SIGTERM/SIGINT print the counters (one JSON line on
 * stderr) and exit.
 *
 * Build: gcc -O2 -o floor floor.c
 * Usage: floor --sub-port P --pub-port P
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 8192
#define MAX_BODY (1 << 20)

static const char SSE_HEAD[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                               "Connection: close\r\n\r\n";

enum ctype { C_LISTEN_SUB, C_LISTEN_PUB, C_SUBREQ, C_SUB, C_PUB, C_DEAD };

typedef struct conn {
    int fd;
    enum ctype type;
    char *rbuf;
    size_t rlen, rcap;
    char *wbuf; /* publisher responses not yet taken by the socket */
    size_t wlen, woff, wcap;
    int want_out;
    int close_after; /* publisher: close once wbuf is flushed */
    int chan, slot;  /* subscriber: channel index and position in its list */
} conn_t;

typedef struct {
    char *name;
    conn_t **subs;
    int n, cap;
    uint64_t seq;
} chan_t;

static int epfd;
static conn_t lsub = {.type = C_LISTEN_SUB}, lpub = {.type = C_LISTEN_PUB};
static chan_t *chans;
static int nchans, chans_cap;
static int *htab; /* open addressing: channel index + 1, 0 = empty */
static size_t hcap;
static volatile sig_atomic_t stop_flag;
static int accept_paused;
static uint64_t accept_resume_ns;

static struct {
    uint64_t published, deliveries, drops, partial, write_errors, subscribers_total, rejected, accept_emfile;
    int subscribers;
} S;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q && n) { fprintf(stderr, "floor: out of memory\n"); exit(1); }
    return q;
}

static void on_sig(int s) { (void)s; stop_flag = 1; }

/* ------------------------------------------------------------------------ */
/* Channels                                                                  */
/* ------------------------------------------------------------------------ */

static uint64_t hash_name(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void htab_insert(int idx) {
    size_t m = hcap - 1, i = hash_name(chans[idx].name, strlen(chans[idx].name)) & m;
    while (htab[i]) i = (i + 1) & m;
    htab[i] = idx + 1;
}

static int chan_find(const char *name, size_t n, int create) {
    if (hcap) {
        size_t m = hcap - 1, i = hash_name(name, n) & m;
        while (htab[i]) {
            chan_t *c = &chans[htab[i] - 1];
            if (strlen(c->name) == n && !memcmp(c->name, name, n)) return htab[i] - 1;
            i = (i + 1) & m;
        }
    }
    if (!create) return -1;
    if (nchans == chans_cap) {
        chans_cap = chans_cap ? chans_cap * 2 : 64;
        chans = xrealloc(chans, (size_t)chans_cap * sizeof *chans);
    }
    int idx = nchans++;
    chan_t *c = &chans[idx];
    memset(c, 0, sizeof *c);
    c->name = xrealloc(NULL, n + 1);
    memcpy(c->name, name, n);
    c->name[n] = 0;
    if ((size_t)nchans * 2 > hcap) { /* grow and rehash */
        free(htab);
        hcap = hcap ? hcap * 2 : 256;
        while ((size_t)nchans * 2 > hcap) hcap *= 2;
        htab = calloc(hcap, sizeof *htab);
        for (int k = 0; k < nchans; k++) htab_insert(k);
    } else {
        htab_insert(idx);
    }
    return idx;
}

static void chan_add(int idx, conn_t *s) {
    chan_t *c = &chans[idx];
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->subs = xrealloc(c->subs, (size_t)c->cap * sizeof *c->subs);
    }
    s->chan = idx;
    s->slot = c->n;
    c->subs[c->n++] = s;
}

static void chan_remove(conn_t *s) {
    chan_t *c = &chans[s->chan];
    conn_t *last = c->subs[--c->n];
    c->subs[s->slot] = last;
    last->slot = s->slot;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

/* Closed connections are freed after the current epoll batch: a later event of the same batch may still point
 * at them (a subscriber closed during a publish, say); such events are skipped (type C_DEAD). */
static conn_t **graveyard;
static size_t ngrave, grave_cap;

static void conn_free(conn_t *c) {
    if (c->type == C_DEAD) return;
    if (c->type == C_SUB) { chan_remove(c); S.subscribers--; }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->type = C_DEAD;
    if (ngrave == grave_cap) {
        grave_cap = grave_cap ? grave_cap * 2 : 256;
        graveyard = xrealloc(graveyard, grave_cap * sizeof *graveyard);
    }
    graveyard[ngrave++] = c;
}

static void bury(void) {
    for (size_t i = 0; i < ngrave; i++) {
        free(graveyard[i]->rbuf);
        free(graveyard[i]->wbuf);
        free(graveyard[i]);
    }
    ngrave = 0;
}

static void ep_set(conn_t *c, int out) {
    if (c->want_out == out) return;
    c->want_out = out;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Publisher: write what the socket takes; 0 ok, -1 closed. */
static int pub_flush(conn_t *c) {
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_free(c);
            return -1;
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        if (c->close_after) { conn_free(c); return -1; }
    }
    ep_set(c, c->wlen > 0);
    return 0;
}

static void wappend(conn_t *c, const char *d, size_t n) {
    if (c->wlen + n > c->wcap) {
        size_t nc = c->wcap ? c->wcap : 4096;
        while (nc < c->wlen + n) nc *= 2;
        c->wbuf = xrealloc(c->wbuf, nc);
        c->wcap = nc;
    }
    memcpy(c->wbuf + c->wlen, d, n);
    c->wlen += n;
}

static void respond(conn_t *c, int status, const char *phrase, const char *ctype, const char *body, size_t blen) {
    char head[256];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                      phrase, ctype, blen, c->close_after ? "Connection: close\r\n" : "");
    wappend(c, head, (size_t)hl);
    wappend(c, body, blen);
}

/* Read what is there into rbuf (bounded). Returns bytes read, 0 on EOF, -1 on error, -2 when nothing is left. */
static ssize_t read_some(conn_t *c, size_t limit) {
    if (c->rcap - c->rlen < 16384) {
        size_t nc = c->rcap ? c->rcap * 2 : 16384;
        if (nc > limit + 16384) nc = limit + 16384;
        if (nc <= c->rcap) return -1; /* request too large */
        c->rbuf = xrealloc(c->rbuf, nc);
        c->rcap = nc;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
        c->rlen += (size_t)n;
        return n;
    }
}

/* Channel name from "/sub/NAME?..." or "/pub/NAME?..." (target, tlen): the part after the 5-byte prefix. */
static int target_channel(const char *t, size_t tlen, const char *prefix, const char **name, size_t *nlen) {
    if (tlen <= 5 || memcmp(t, prefix, 5)) return 0;
    const char *s = t + 5, *e = t + tlen;
    const char *q = memchr(s, '?', (size_t)(e - s));
    if (q) e = q;
    if (e == s) return 0;
    *name = s;
    *nlen = (size_t)(e - s);
    return 1;
}

/* Subscriber request: answer once the head is complete. */
static void on_subreq(conn_t *c) {
    for (;;) {
        ssize_t n = read_some(c, MAX_HEAD);
        if (n == -2) return;
        if (n <= 0) { conn_free(c); return; }
        char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!e) {
            if (c->rlen > MAX_HEAD) { conn_free(c); return; }
            continue;
        }
        char *sp1 = memchr(c->rbuf, ' ', (size_t)(e - c->rbuf));
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1)) : NULL;
        const char *name;
        size_t nlen;
        if (sp1 && sp2 && sp1 - c->rbuf == 3 && !memcmp(c->rbuf, "GET", 3) &&
            target_channel(sp1 + 1, (size_t)(sp2 - sp1 - 1), "/sub/", &name, &nlen)) {
            if (write(c->fd, SSE_HEAD, sizeof SSE_HEAD - 1) != (ssize_t)(sizeof SSE_HEAD - 1)) {
                conn_free(c);
                return;
            }
            chan_add(chan_find(name, nlen, 1), c); /* before the name's buffer goes */
            free(c->rbuf);
            c->rbuf = NULL;
            c->rlen = c->rcap = 0;
            c->type = C_SUB;
            S.subscribers++;
            S.subscribers_total++;
            return;
        }
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
        static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        int health = sp1 && sp2 && (size_t)(sp2 - sp1 - 1) == 8 && !memcmp(sp1 + 1, "/healthz", 8);
        if (!health) S.rejected++;
        ssize_t w = health ? write(c->fd, ok, sizeof ok - 1) : write(c->fd, nf, sizeof nf - 1);
        (void)w;
        conn_free(c);
        return;
    }
}

/* Held subscriber: discard input; EOF or error drops it. */
static void on_sub_readable(conn_t *c) {
    char junk[4096];
    for (;;) {
        ssize_t n = read(c->fd, junk, sizeof junk);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_free(c);
        return;
    }
}

static char *ev_buf;
static size_t ev_cap;
static conn_t **dead;
static size_t dead_cap;

/* One publish: build the event once, one write() per subscriber. Returns the subscriber count. */
static int publish(int idx, const char *body, size_t blen, uint64_t *id_out) {
    chan_t *ch = &chans[idx];
    uint64_t id = ++ch->seq;
    *id_out = id;
    size_t need = blen * 8 + 64; /* worst case: every byte a line break, each adding "data: " and "\n" */
    if (need > ev_cap) { ev_cap = need; ev_buf = xrealloc(ev_buf, ev_cap); }
    size_t o = 0;
    const char *s = body, *e = body + blen;
    for (;;) {
        const char *nl = memchr(s, '\n', (size_t)(e - s));
        const char *le = nl ? nl : e;
        if (le > s && le[-1] == '\r') le--;
        memcpy(ev_buf + o, "data: ", 6);
        o += 6;
        memcpy(ev_buf + o, s, (size_t)(le - s));
        o += (size_t)(le - s);
        ev_buf[o++] = '\n';
        if (!nl) break;
        s = nl + 1;
    }
    o += (size_t)sprintf(ev_buf + o, "id: %" PRIu64 "\n\n", id);
    S.published++;
    int nsubs = ch->n;
    if ((size_t)nsubs > dead_cap) { dead_cap = (size_t)nsubs; dead = xrealloc(dead, dead_cap * sizeof *dead); }
    size_t ndead = 0;
    for (int i = 0; i < nsubs; i++) {
        conn_t *sub = ch->subs[i];
        ssize_t w = write(sub->fd, ev_buf, o);
        if (w == (ssize_t)o) { S.deliveries++; continue; }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { S.drops++; continue; }
        if (w >= 0) S.partial++;
        else S.write_errors++;
        dead[ndead++] = sub;
    }
    for (size_t i = 0; i < ndead; i++) conn_free(dead[i]);
    return nsubs;
}

static int hdr_value(const char *head, const char *end, const char *name, const char **v, size_t *vl) {
    size_t nl = strlen(name);
    const char *line = memchr(head, '\n', (size_t)(end - head));
    while (line && line + 1 < end) {
        line++;
        const char *le = memchr(line, '\n', (size_t)(end - line));
        if (!le) le = end;
        if ((size_t)(le - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
            const char *s = line + nl + 1;
            while (s < le && (*s == ' ' || *s == '\t')) s++;
            const char *t = le;
            while (t > s && (t[-1] == '\r' || t[-1] == ' ' || t[-1] == '\t')) t--;
            *v = s;
            *vl = (size_t)(t - s);
            return 1;
        }
        line = le < end ? le : NULL;
    }
    return 0;
}

/* Publisher connection: handle every complete request in rbuf, then flush the responses in one write. */
static void on_pub_readable(conn_t *c) {
    int eof = 0;
    for (;;) {
        ssize_t n = read_some(c, MAX_HEAD + MAX_BODY);
        if (n == -2) break;
        if (n < 0) { conn_free(c); return; }
        if (n == 0) { eof = 1; break; }
        if (c->rcap - c->rlen > 0) break; /* short read: drained for now */
    }
    size_t off = 0;
    while (!c->close_after) {
        char *p = c->rbuf + off;
        size_t avail = c->rlen - off;
        char *e = avail >= 4 ? memmem(p, avail, "\r\n\r\n", 4) : NULL;
        if (!e) {
            if (avail > MAX_HEAD) { conn_free(c); return; }
            break;
        }
        size_t hlen = (size_t)(e - p) + 4;
        const char *v;
        size_t vl;
        long clen = 0;
        if (hdr_value(p, e + 2, "Content-Length", &v, &vl)) clen = strtol(v, NULL, 10);
        if (hdr_value(p, e + 2, "Transfer-Encoding", &v, &vl) || clen < 0 || clen > MAX_BODY) {
            c->close_after = 1;
            respond(c, 411, "Length Required", "text/plain", "", 0);
            break;
        }
        if (avail < hlen + (size_t)clen) break; /* body not complete yet */
        if (hdr_value(p, e + 2, "Connection", &v, &vl) && vl == 5 && !strncasecmp(v, "close", 5)) c->close_after = 1;
        char *sp1 = memchr(p, ' ', hlen), *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1)) : NULL;
        const char *name;
        size_t nlen;
        if (sp1 && sp2 && sp1 - p == 4 && !memcmp(p, "POST", 4) &&
            target_channel(sp1 + 1, (size_t)(sp2 - sp1 - 1), "/pub/", &name, &nlen)) {
            uint64_t id;
            int nsubs = publish(chan_find(name, nlen, 1), p + hlen, (size_t)clen, &id);
            char body[96];
            int bl = snprintf(body, sizeof body, "{\"id\":\"%" PRIu64 "\",\"subscribers\":%d}", id, nsubs);
            respond(c, 201, "Created", "application/json", body, (size_t)bl);
        } else if (sp1 && sp2 && (size_t)(sp2 - sp1 - 1) == 8 && !memcmp(sp1 + 1, "/healthz", 8)) {
            respond(c, 200, "OK", "text/plain", "ok\n", 3);
        } else if (sp1 && sp2 && (size_t)(sp2 - sp1 - 1) == 6 && !memcmp(sp1 + 1, "/stats", 6)) {
            char body[512];
            int bl = snprintf(body, sizeof body,
                              "{\"published\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"drops\":%" PRIu64
                              ",\"partial\":%" PRIu64 ",\"write_errors\":%" PRIu64 ",\"subscribers\":%d,"
                              "\"subscribers_total\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"channels\":%d}",
                              S.published, S.deliveries, S.drops, S.partial, S.write_errors, S.subscribers,
                              S.subscribers_total, S.rejected, nchans);
            respond(c, 200, "OK", "application/json", body, (size_t)bl);
        } else {
            S.rejected++;
            respond(c, 404, "Not Found", "text/plain", "", 0);
        }
        off += hlen + (size_t)clen;
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (eof) c->close_after = 1;
    if (c->wlen == 0 && c->close_after) { conn_free(c); return; }
    pub_flush(c);
}

static void pause_accepting(void) {
    if (accept_paused) return;
    accept_paused = 1;
    accept_resume_ns = now_ns() + 50000000ull;
    epoll_ctl(epfd, EPOLL_CTL_DEL, lsub.fd, NULL);
    epoll_ctl(epfd, EPOLL_CTL_DEL, lpub.fd, NULL);
}

static void resume_accepting(void) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lsub};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lsub.fd, &ev);
    ev.data.ptr = &lpub;
    epoll_ctl(epfd, EPOLL_CTL_ADD, lpub.fd, &ev);
    accept_paused = 0;
}

static void on_accept(conn_t *l) {
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                S.accept_emfile++;
                pause_accepting();
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) { close(fd); return; }
        c->fd = fd;
        c->type = l->type == C_LISTEN_SUB ? C_SUBREQ : C_PUB;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(0x7f000001u); /* 127.0.0.1 only */
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    int sub_port = 0, pub_port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--sub-port")) sub_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pub-port")) pub_port = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: floor --sub-port P --pub-port P\n"); return 2; }
    }
    if (sub_port <= 0 || pub_port <= 0 || sub_port == pub_port) {
        fprintf(stderr, "usage: floor --sub-port P --pub-port P\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    lsub.fd = listen_on(sub_port);
    lpub.fd = listen_on(pub_port);
    resume_accepting();
    fprintf(stderr, "floor: listening on 127.0.0.1:%d (subscribers) and 127.0.0.1:%d (publishers)\n", sub_port,
            pub_port);

    struct epoll_event evs[512];
    while (!stop_flag) {
        int timeout = accept_paused ? 10 : 1000;
        int n = epoll_wait(epfd, evs, 512, timeout);
        if (accept_paused && now_ns() >= accept_resume_ns) resume_accepting();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            switch (c->type) {
            case C_LISTEN_SUB:
            case C_LISTEN_PUB: on_accept(c); break;
            case C_SUBREQ: on_subreq(c); break;
            case C_SUB: on_sub_readable(c); break;
            case C_PUB:
                if (e & EPOLLOUT) {
                    if (pub_flush(c) < 0) break;
                }
                if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_pub_readable(c);
                break;
            case C_DEAD: break;
            }
        }
        bury();
    }
    fprintf(stderr,
            "{\"published\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"drops\":%" PRIu64 ",\"partial\":%" PRIu64
            ",\"write_errors\":%" PRIu64 ",\"subscribers\":%d,\"subscribers_total\":%" PRIu64 ",\"rejected\":%" PRIu64
            ",\"channels\":%d}\n",
            S.published, S.deliveries, S.drops, S.partial, S.write_errors, S.subscribers, S.subscribers_total,
            S.rejected, nchans);
    return 0;
}
