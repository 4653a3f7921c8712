/*
 * loadgen.c — load generator for the comet-gateway benchmark harness.
 *
 * Single thread, epoll, non-blocking sockets. Talks HTTP/1.1 to one of four
 * push servers (our gateway, Nchan, Pushpin, and floor.c, the minimal SSE
 * server) through a small per-server "adapter" (request building + response
 * framing). Subscriber kinds: sse, stream (ndjson / raw lines), longpoll, ws
 * (RFC 6455 client), and two gateway transports: iframe (chunked HTML, one
 * <script> per message) and jsonp (long-poll body wrapped in cb(...);).
 * It measures:
 *
 *   fanout   : N subscribers on C channels; publish at fixed rates (a sweep of
 *              steps, --rates 100,200,...) for D seconds each; per step count
 *              deliveries, loss, duplicates, reordering (by per-channel
 *              sequence number), end-to-end latency histogram (send timestamp
 *              embedded in the payload -> receipt) and server CPU time.
 *   pubtput  : as many POSTs/s as possible over K keep-alive connections
 *              (optionally pipelined) for D seconds, with 0..N subscribers.
 *   capacity : N idle SSE subscribers; report time to connect all; hold them
 *              open for --hold seconds or until SIGTERM/SIGINT.
 *   connect  : connect storm: N SSE subscribers opened at --connect-rate per
 *              second, time from connect() to the first response byte per
 *              connection and server CPU per connection; a few messages give
 *              each a last event id; then the reconnect storm: all closed
 *              (RST) and reopened at once with ?last_event_id=, measured the
 *              same way; then one message must reach every subscriber.
 *
 * Output: one JSON object on stdout. Progress/diagnostics on stderr.
 *
 * Safety: only loopback (127.0.0.0/8) targets are accepted; every phase is
 * bounded in time and the whole run has a hard deadline (--deadline).
 *
 * Build: gcc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Utilities                                                                 */
/* ------------------------------------------------------------------------ */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void logmsg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q && n) die("out of memory");
    return q;
}

/* Growable byte buffer. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + extra) nc *= 2;
    b->p = xrealloc(b->p, nc);
    b->cap = nc;
}
static void buf_append(buf_t *b, const void *d, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void buf_consume(buf_t *b, size_t n) {
    if (n >= b->len) { b->len = 0; return; }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* ------------------------------------------------------------------------ */
/* Latency histogram: log-linear buckets over microseconds.                 */
/* Values < 1024 us are exact; above, 512 sub-buckets per power of two      */
/* (relative error <= 0.2%).                                                 */
/* ------------------------------------------------------------------------ */

#define H_LIN 1024
#define H_SUB 512
#define H_EXPS 34 /* up to 2^43 us, far beyond any bounded run */
#define H_SIZE (H_LIN + H_EXPS * H_SUB)

typedef struct {
    uint64_t b[H_SIZE];
    uint64_t n, max, sum;
} hist_t;

static int hist_index(uint64_t v) {
    if (v < H_LIN) return (int)v;
    int e = 63 - __builtin_clzll(v); /* e >= 10 */
    int sub = (int)((v >> (e - 9)) & (H_SUB - 1));
    int idx = H_LIN + (e - 10) * H_SUB + sub;
    return idx < H_SIZE ? idx : H_SIZE - 1;
}
static uint64_t hist_value(int idx) { /* midpoint of the bucket */
    if (idx < H_LIN) return (uint64_t)idx;
    int e = (idx - H_LIN) / H_SUB + 10, sub = (idx - H_LIN) % H_SUB;
    uint64_t lo = ((uint64_t)1 << e) + ((uint64_t)sub << (e - 9));
    return lo + (((uint64_t)1 << (e - 9)) >> 1);
}
static void hist_add(hist_t *h, uint64_t us) {
    h->b[hist_index(us)]++;
    h->n++;
    h->sum += us;
    if (us > h->max) h->max = us;
}
static double hist_pct_ms(const hist_t *h, double p) {
    if (!h->n) return -1;
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n);
    if (want < 1) want = 1;
    uint64_t acc = 0;
    for (int i = 0; i < H_SIZE; i++) {
        acc += h->b[i];
        if (acc >= want) {
            uint64_t v = hist_value(i);
            if (v > h->max) v = h->max;
            return (double)v / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

enum server { SRV_GATEWAY, SRV_NCHAN, SRV_PUSHPIN, SRV_FLOOR };
enum kind { K_SSE, K_STREAM, K_LONGPOLL, K_WS, K_IFRAME, K_JSONP, K_BAYEUX };
enum mode { M_FANOUT, M_PUBTPUT, M_CAPACITY, M_CONNECT };

static const char *server_names[] = {"gateway", "nchan", "pushpin", "floor"};
static const char *kind_names[] = {"sse", "stream", "longpoll", "ws", "iframe", "jsonp", "bayeux"};
static const char *mode_names[] = {"fanout", "pubtput", "capacity", "connect"};

static struct {
    enum mode mode;
    enum server server;
    enum kind kind;
    char host[64];
    struct sockaddr_in sub_addr, pub_addr;
    int sub_port, pub_port, origin_port;
    int sub_ports[8]; /* --sub-ports: subscriber i connects to sub_ports[i % nsub_ports] (several nodes) */
    int nsub_ports;
    struct sockaddr_in sub_addrs[8];
    int subs, channels;
    char chan_prefix[64];
    double rates[32];
    int nrates;
    double duration;
    int size;
    int pub_conns, pipeline;
    int grip; /* --grip: SSE through GRIP stream holds (the gateway: /grip/CH proxied to the origin, EPCP publishes) */
    int connect_conc;
    int src_ips;
    double hold;
    double drain, settle;
    double connect_timeout;
    double deadline;
    int max_fds;
    int stop_after_fail;
    double p99_limit_ms;
    char ready_file[512];
    int pids[64];
    int npids;
    char label[128];
    int pub_any_order;
    int aux_pids[16]; /* helper processes (Pushpin's GRIP origin): reported separately */
    int naux_pids;
    double connect_rate; /* connect mode: subscriber connects per second in the storm */
    int prime_msgs;      /* connect mode: messages published between the storm and the reconnect */
    int reconnect_batch; /* connect mode: reconnects opened between two event-loop passes */
} cfg;

/* Long-poll kinds: one response per request, re-polled with a cursor. */
static int kind_is_poll(void) { return cfg.kind == K_LONGPOLL || cfg.kind == K_JSONP || cfg.kind == K_BAYEUX; }

/* ------------------------------------------------------------------------ */
/* Server CPU / RSS sampling from /proc                                      */
/* ------------------------------------------------------------------------ */

static long clk_tck;

/* utime+stime (clock ticks) summed over a pid list. */
static uint64_t cpu_ticks_of(const int *pids, int npids) {
    uint64_t total = 0;
    for (int i = 0; i < npids; i++) {
        char path[64], line[2048];
        snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = 0;
        char *p = strrchr(line, ')'); /* comm may contain spaces */
        if (!p) continue;
        /* fields after ')': state(3) ppid(4) ... utime(14) stime(15) */
        unsigned long long ut = 0, st = 0;
        int field = 2;
        char *tok = strtok(p + 1, " ");
        while (tok) {
            field++;
            if (field == 14) ut = strtoull(tok, NULL, 10);
            if (field == 15) { st = strtoull(tok, NULL, 10); break; }
            tok = strtok(NULL, " ");
        }
        total += ut + st;
    }
    return total;
}
static uint64_t server_cpu_ticks(void) { return cpu_ticks_of(cfg.pids, cfg.npids); }

/* Machine-wide process CPU time (ticks) from /proc/stat. Used to detect
 * other processes competing with the benchmark. */
static uint64_t machine_busy_ticks(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8) return 0;
    /* user nice system idle iowait irq softirq steal (guest is in user).
     * irq/softirq are left out: loopback packet processing for our own
     * connections is accounted there, not to any process. */
    return v[0] + v[1] + v[2] + v[7];
}
static uint64_t aux_cpu_ticks(void) { return cpu_ticks_of(cfg.aux_pids, cfg.naux_pids); }

/* Kernel counters (machine-wide) that explain tail latency on loopback: packets dropped because a CPU's input
 * backlog was full (/proc/net/softnet_stat, 2nd column, summed over CPUs; loopback traffic is queued there and
 * net.core.netdev_max_backlog bounds it), TCP segments retransmitted after such a drop (/proc/net/snmp
 * Tcp RetransSegs), and connections refused by a full accept queue (/proc/net/netstat TcpExt ListenOverflows). */
static uint64_t softnet_drops(void) {
    FILE *f = fopen("/proc/net/softnet_stat", "r");
    if (!f) return 0;
    char line[512];
    uint64_t sum = 0;
    unsigned int a, b;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%x %x", &a, &b) == 2) sum += b;
    fclose(f);
    return sum;
}

static uint64_t proc_net_counter(const char *path, const char *prefix, const char *name) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char head[8192], vals[8192];
    uint64_t v = 0;
    size_t pl = strlen(prefix);
    while (fgets(head, sizeof head, f) && fgets(vals, sizeof vals, f)) {
        if (strncmp(head, prefix, pl) || strncmp(vals, prefix, pl)) continue;
        char *hs = NULL, *vs = NULL;
        char *h = strtok_r(head + pl, " \n", &hs), *x = strtok_r(vals + pl, " \n", &vs);
        while (h && x) {
            if (!strcmp(h, name)) { v = strtoull(x, NULL, 10); break; }
            h = strtok_r(NULL, " \n", &hs);
            x = strtok_r(NULL, " \n", &vs);
        }
        break;
    }
    fclose(f);
    return v;
}
static uint64_t tcp_retrans_segs(void) { return proc_net_counter("/proc/net/snmp", "Tcp:", "RetransSegs"); }
static uint64_t listen_overflows(void) { return proc_net_counter("/proc/net/netstat", "TcpExt:", "ListenOverflows"); }

/* VmRSS (KiB) summed over cfg.pids. */
static uint64_t server_rss_kb(void) {
    uint64_t total = 0;
    for (int i = 0; i < cfg.npids; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", cfg.pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmRSS:", 6)) { total += strtoull(line + 6, NULL, 10); break; }
        fclose(f);
    }
    return total;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

enum role { R_SUB, R_PUB };
enum cstate { S_IDLE, S_CONNECTING, S_HEAD, S_BODY, S_CLOSED };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER, CH_DONE };

#define PIPE_MAX 64

typedef struct conn {
    int fd;
    int id;
    enum role role;
    enum cstate state;
    int chan;
    int retries;
    int established; /* subscriber: stream open / long-poll request in place */
    int pending;     /* counted in pending_connects */
    buf_t rbuf;      /* raw bytes from the socket */
    buf_t body;      /* de-chunked body bytes (streams and full bodies) */
    buf_t wbuf;      /* pending outgoing bytes */
    size_t woff;
    int want_out;
    /* HTTP response framing */
    int status;
    int chunked;
    long clen;   /* -1: none */
    long remain; /* bytes left in current chunk / content-length body */
    enum chunk_state cst;
    int conn_close;
    /* long-poll cursors */
    char cursor[160]; /* gateway/pushpin: last_event_id */
    char lm[64];      /* nchan: Last-Modified */
    char etag[96];    /* nchan: Etag */
    /* bayeux: the clientId from the handshake; subscribed once the subscribe reply came */
    char client_id[64];
    int bayeux_subscribed;
    /* subscriber accounting */
    uint64_t rx, uniq, dup, reorder, unparsed;
    uint64_t step_uniq;
    uint64_t max_seq;
    uint8_t *seen;
    size_t seen_len;
    uint64_t polls;
    /* connect mode: when connect() was called and when the first response byte arrived (CLOCK_MONOTONIC ns) */
    uint64_t t_start, t_first;
    /* publisher: channels of the outstanding (pipelined) requests, FIFO */
    int pq[PIPE_MAX];
    int pq_head, pq_n;
} conn_t;

static int epfd;
static conn_t *subs;
static conn_t *pubs;
static int *subs_per_chan;
static uint64_t *chan_seq;       /* last sequence number published per channel */
static uint64_t *chan_acked;     /* 2xx publishes per channel in the current step */
static uint64_t *chan_step_base; /* first seq of the current step per channel */
static volatile sig_atomic_t stop_flag;
static uint64_t run_deadline_ns;
static char payload_pad[65536];

/* Global counters for the current step. */
static struct {
    hist_t hist;
    uint64_t deliveries;  /* unique in-step deliveries across subscribers */
    uint64_t dups, reorders, late_prev, unparsed;
    uint64_t pub_sent, pub_ok, pub_fail, pub_err;
    uint64_t expected; /* sum over channels of acked * subscribers */
} st;

static uint64_t total_disconnects, total_reconnects, total_connect_fail;
/* WebSocket: control messages without a payload (the gateway's {"type":"subscribed",..}), pings answered */
static uint64_t total_ws_control, total_ws_pings;
/* connect mode: latency from connect() to the first response byte / to the complete head, while measuring */
static int measuring_connects;
static hist_t conn_first_hist, conn_head_hist;

static void on_sig(int s) { (void)s; stop_flag = 1; }

/* ------------------------------------------------------------------------ */
/* Adapters: request building per server and kind                           */
/* ------------------------------------------------------------------------ */

static void chan_name(int ch, char *out, size_t n) { snprintf(out, n, "%s%d", cfg.chan_prefix, ch); }

static void urlencode(const char *in, char *out, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < n; in++) {
        unsigned char c = (unsigned char)*in;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out[o++] = (char)c;
        else { out[o++] = '%'; out[o++] = hex[c >> 4]; out[o++] = hex[c & 15]; }
    }
    out[o] = 0;
}

/* Bayeux long-polling (the gateway's /cometd): a handshake, then the subscribe and the first connect in one batch
 * (answered at once), then one /meta/connect after another, each held until messages come. */
static void build_bayeux_request(conn_t *c, const char *ch) {
    char body[600];
    int blen;
    if (!c->client_id[0])
        blen = snprintf(body, sizeof body, "[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\","
                        "\"supportedConnectionTypes\":[\"long-polling\"]}]");
    else if (!c->bayeux_subscribed)
        blen = snprintf(body, sizeof body, "[{\"channel\":\"/meta/subscribe\",\"clientId\":\"%s\",\"subscription\":"
                        "\"/%s\"},{\"channel\":\"/meta/connect\",\"clientId\":\"%s\",\"connectionType\":"
                        "\"long-polling\"}]", c->client_id, ch, c->client_id);
    else
        blen = snprintf(body, sizeof body, "[{\"channel\":\"/meta/connect\",\"clientId\":\"%s\",\"connectionType\":"
                        "\"long-polling\"}]", c->client_id);
    char req[1000];
    int n = snprintf(req, sizeof req, "POST /cometd HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nUser-Agent: comet-bench\r\n\r\n%s", cfg.sub_ports[c->id % cfg.nsub_ports], blen, body);
    buf_append(&c->wbuf, req, (size_t)n);
}

/* Build the subscribe (or re-poll) request for subscriber c into c->wbuf. */
static void build_sub_request(conn_t *c) {
    char ch[96], path[512], extra[512] = "";
    chan_name(c->chan, ch, sizeof ch);
    if (cfg.kind == K_BAYEUX) { build_bayeux_request(c, ch); return; }
    const char *accept = "*/*";
    switch (cfg.kind) {
    case K_SSE:
        accept = "text/event-stream";
        snprintf(path, sizeof path, "/sub/%s", ch);
        if (cfg.server == SRV_GATEWAY) snprintf(path, sizeof path, cfg.grip ? "/grip/%s" : "/sub/%s?transport=sse", ch);
        if (c->cursor[0]) {
            /* connect mode's reconnect storm: resume after the last event id seen (the gateway and Nchan read
             * ?last_event_id=; the floor server ignores it) */
            char enc[480];
            urlencode(c->cursor, enc, sizeof enc);
            size_t l = strlen(path);
            snprintf(path + l, sizeof path - l, "%slast_event_id=%s", strchr(path, '?') ? "&" : "?", enc);
        }
        break;
    case K_IFRAME:
        /* gateway "forever iframe": chunked text/html, one <script>c({message})</script> per message */
        accept = "text/html";
        snprintf(path, sizeof path, "/sub/%s?transport=iframe&callback=cb", ch);
        break;
    case K_JSONP:
        /* gateway JSONP long-poll: the body is the long-poll JSON wrapped as a call, cb({"messages":[..],
         * "last_event_id":"X"}); (after an empty comment); resumed with the cursor like --kind longpoll */
        snprintf(path, sizeof path, "/sub/%s?transport=jsonp&callback=cb", ch);
        if (c->cursor[0]) {
            char enc[480];
            urlencode(c->cursor, enc, sizeof enc);
            size_t l = strlen(path);
            snprintf(path + l, sizeof path - l, "&last_event_id=%s", enc);
        }
        break;
    case K_STREAM:
        if (cfg.server == SRV_GATEWAY) snprintf(path, sizeof path, "/sub/%s?transport=stream", ch);
        else snprintf(path, sizeof path, "/stream/%s", ch);
        break;
    case K_LONGPOLL:
        if (cfg.server == SRV_NCHAN) {
            /* Nchan resumes long-poll via the previous response's
             * Last-Modified / Etag (If-Modified-Since / If-None-Match). */
            snprintf(path, sizeof path, "/sub/%s", ch);
            if (c->lm[0])
                snprintf(extra, sizeof extra, "If-Modified-Since: %s\r\nIf-None-Match: %s\r\n", c->lm, c->etag);
        } else {
            /* gateway and the Pushpin GRIP origin: ?last_event_id=CURSOR */
            const char *base = cfg.server == SRV_GATEWAY ? "/sub/%s?transport=poll" : "/poll/%s?transport=poll";
            snprintf(path, sizeof path, base, ch);
            if (c->cursor[0]) {
                char enc[480];
                urlencode(c->cursor, enc, sizeof enc);
                size_t l = strlen(path);
                snprintf(path + l, sizeof path - l, "&last_event_id=%s", enc);
            }
        }
        break;
    case K_BAYEUX:
        break; /* built above */
    case K_WS:
        /* RFC 6455 opening handshake on the subscriber URL (the gateway and
         * Nchan serve WebSocket on the same path as the other transports). */
        snprintf(path, sizeof path, "/sub/%s", ch);
        snprintf(extra, sizeof extra,
                 "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: Y29tZXQtYmVuY2gta2V5IQ==\r\n");
        break;
    }
    char req[1200];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: %s\r\n%sUser-Agent: comet-bench\r\n\r\n",
                     path, cfg.sub_ports[c->id % cfg.nsub_ports], accept, extra);
    buf_append(&c->wbuf, req, (size_t)n);
}

/* JSON-escape src into dst (dst must be big enough: 2*len+1). */
static size_t json_escape(const char *src, size_t len, char *dst) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char x = src[i];
        if (x == '"' || x == '\\') { dst[o++] = '\\'; dst[o++] = x; }
        else if (x == '\n') { dst[o++] = '\\'; dst[o++] = 'n'; }
        else dst[o++] = x;
    }
    dst[o] = 0;
    return o;
}

/* Build one publish request for channel ch with sequence seq. The payload is
 * {"seq":N,"t":MONO_NS,"pad":"xxx"} padded to cfg.size bytes. */
static void build_pub_request(conn_t *c, int ch, uint64_t seq) {
    char name[96], payload[70000], body[150000], hdr[512];
    chan_name(ch, name, sizeof name);
    int plen = snprintf(payload, sizeof payload, "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 ",\"pad\":\"", seq, now_ns());
    int pad = cfg.size - plen - 2;
    if (pad < 0) pad = 0;
    memcpy(payload + plen, payload_pad, (size_t)pad);
    plen += pad;
    payload[plen++] = '"';
    payload[plen++] = '}';
    payload[plen] = 0;

    const char *path_fmt = "/pub/%s";
    char path[200];
    const char *ctype = "application/json";
    int blen;
    int port = cfg.pub_port;
    if ((cfg.server == SRV_PUSHPIN || cfg.grip) && cfg.kind != K_LONGPOLL) {
        /* Pushpin's HTTP publish endpoint (or the gateway's, --grip): wrap the payload in a GRIP item. */
        char esc[140000];
        snprintf(path, sizeof path, "/publish/");
        /* WebSocket subscribers get ws-message items, streams http-stream ones */
        const char *format = cfg.kind == K_WS ? "ws-message" : "http-stream";
        if (cfg.kind == K_WS) {
            json_escape(payload, (size_t)plen, esc);
        } else if (cfg.kind == K_SSE) {
            char ev[70200];
            int evl = snprintf(ev, sizeof ev, "id: %" PRIu64 "\ndata: %s\n\n", seq, payload);
            json_escape(ev, (size_t)evl, esc);
        } else {
            char line[70100];
            int ll = snprintf(line, sizeof line, "%s\n", payload);
            json_escape(line, (size_t)ll, esc);
        }
        blen = snprintf(body, sizeof body, "{\"items\":[{\"channel\":\"%s\",\"formats\":{\"%s\":{\"content\":\"%s\"}}}]}",
                        name, format, esc);
    } else {
        /* gateway /pub/CH, nchan /pub/CH, pushpin long-poll: origin /pub/CH */
        if (cfg.server == SRV_PUSHPIN) port = cfg.origin_port;
        snprintf(path, sizeof path, path_fmt, name);
        memcpy(body, payload, (size_t)plen + 1);
        blen = plen;
    }
    int hl = snprintf(hdr, sizeof hdr,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path,
                      port, ctype, blen);
    buf_append(&c->wbuf, hdr, (size_t)hl);
    buf_append(&c->wbuf, body, (size_t)blen);
}

/* ------------------------------------------------------------------------ */
/* Message accounting                                                        */
/* ------------------------------------------------------------------------ */

/* Parse the next unsigned integer at or after *p (skipping non-digits). */
static int next_uint(const char **p, const char *end, uint64_t *out) {
    const char *s = *p;
    while (s < end && !isdigit((unsigned char)*s)) s++;
    if (s >= end) return 0;
    uint64_t v = 0;
    while (s < end && isdigit((unsigned char)*s)) v = v * 10 + (uint64_t)(*s++ - '0');
    *p = s;
    *out = v;
    return 1;
}

/* Record one received message payload (may be JSON-escaped). */
static void on_payload(conn_t *c, const char *s, size_t len, uint64_t rx_ns) {
    const char *end = s + len;
    const char *k = memmem(s, len, "seq", 3);
    uint64_t seq, t;
    if (!k) { c->unparsed++; st.unparsed++; return; }
    const char *p = k + 3;
    if (!next_uint(&p, end, &seq) || !next_uint(&p, end, &t)) { c->unparsed++; st.unparsed++; return; }
    c->rx++;
    /* duplicate detection: bitmap of seen sequence numbers */
    size_t byte = (size_t)(seq >> 3);
    if (byte >= c->seen_len) {
        size_t nl = c->seen_len ? c->seen_len : 64;
        while (nl <= byte) nl *= 2;
        c->seen = xrealloc(c->seen, nl);
        memset(c->seen + c->seen_len, 0, nl - c->seen_len);
        c->seen_len = nl;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (c->seen[byte] & bit) { c->dup++; st.dups++; return; }
    c->seen[byte] |= bit;
    c->uniq++;
    if (seq < c->max_seq) { c->reorder++; st.reorders++; }
    else c->max_seq = seq;
    if (seq < chan_step_base[c->chan]) { st.late_prev++; return; }
    c->step_uniq++;
    st.deliveries++;
    hist_add(&st.hist, rx_ns > t ? (rx_ns - t) / 1000 : 0);
}

/* ------------------------------------------------------------------------ */
/* Socket plumbing                                                           */
/* ------------------------------------------------------------------------ */

static int open_fds;

static void ep_mod(conn_t *c) {
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_reset_parse(conn_t *c) {
    c->status = 0;
    c->chunked = 0;
    c->clen = -1;
    c->remain = 0;
    c->cst = CH_SIZE;
    c->conn_close = 0;
    c->body.len = 0;
}

static void conn_close(conn_t *c) {
    if (c->fd >= 0) {
        /* abortive close: no TIME_WAIT on our side (ports are reused a lot) */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        open_fds--;
    }
    c->fd = -1;
    c->state = S_CLOSED;
    c->rbuf.len = 0;
    c->wbuf.len = 0;
    c->woff = 0;
    c->want_out = 0;
    conn_reset_parse(c);
}

static int conn_open(conn_t *c, const struct sockaddr_in *dst) {
    if (open_fds >= cfg.max_fds) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cfg.src_ips > 1) {
        /* spread source addresses over 127.0.0.1..N (all loopback) so that
         * 19k+ connections never exhaust one address's ephemeral ports */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->id % cfg.src_ips));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { close(fd); return -1; }
    }
    int r = connect(fd, (const struct sockaddr *)dst, sizeof *dst);
    if (r < 0 && errno != EINPROGRESS) { close(fd); return -1; }
    open_fds++;
    c->fd = fd;
    c->state = S_CONNECTING;
    c->want_out = 1;
    conn_reset_parse(c);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* Write as much of wbuf as the socket takes. Returns -1 on error. */
static int conn_flush(conn_t *c) {
    while (c->woff < c->wbuf.len) {
        ssize_t n = send(c->fd, c->wbuf.p + c->woff, c->wbuf.len - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        c->woff += (size_t)n;
    }
    if (c->woff >= c->wbuf.len) { c->wbuf.len = 0; c->woff = 0; }
    int want = c->wbuf.len > 0;
    if (want != c->want_out) { c->want_out = want; ep_mod(c); }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* HTTP response parsing                                                     */
/* ------------------------------------------------------------------------ */

static int hdr_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen) {
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) || line[nl] != ':') return 0;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    *val = v;
    *vlen = (size_t)(e - v);
    return 1;
}

/* Parse the response head if complete. Returns 1 when parsed, 0 if more
 * bytes are needed, -1 on garbage. Consumes the head from rbuf. */
static int parse_head(conn_t *c) {
    char *p = c->rbuf.p;
    char *e = c->rbuf.len >= 4 ? memmem(p, c->rbuf.len, "\r\n\r\n", 4) : NULL;
    if (!e) return c->rbuf.len > 65536 ? -1 : 0;
    size_t hlen = (size_t)(e - p) + 4;
    if (hlen < 12 || strncmp(p, "HTTP/1.", 7)) return -1;
    c->status = atoi(p + 9);
    c->clen = -1;
    c->chunked = 0;
    c->conn_close = p[7] == '0'; /* HTTP/1.0 defaults to close */
    char *line = memchr(p, '\n', hlen) + 1;
    while (line < e) {
        char *nl = memchr(line, '\n', (size_t)(e + 2 - line));
        if (!nl) break;
        size_t ll = (size_t)(nl - line);
        const char *v;
        size_t vl;
        if (hdr_is(line, ll, "Content-Length", &v, &vl)) c->clen = strtol(v, NULL, 10);
        else if (hdr_is(line, ll, "Transfer-Encoding", &v, &vl)) c->chunked = vl >= 7 && !strncasecmp(v, "chunked", 7);
        else if (hdr_is(line, ll, "Connection", &v, &vl)) {
            if (vl >= 5 && !strncasecmp(v, "close", 5)) c->conn_close = 1;
            if (vl >= 10 && !strncasecmp(v, "keep-alive", 10)) c->conn_close = 0;
        } else if (hdr_is(line, ll, "Last-Modified", &v, &vl) && vl < sizeof c->lm) {
            memcpy(c->lm, v, vl); c->lm[vl] = 0;
        } else if (hdr_is(line, ll, "Etag", &v, &vl) && vl < sizeof c->etag) {
            memcpy(c->etag, v, vl); c->etag[vl] = 0;
        }
        line = nl + 1;
    }
    if (c->chunked) c->clen = -1;
    if (c->status == 204 || c->status == 304) { c->clen = 0; c->chunked = 0; }
    c->remain = c->clen;
    c->cst = CH_SIZE;
    c->body.len = 0;
    buf_consume(&c->rbuf, hlen);
    return 1;
}

/* Move body bytes from rbuf into c->body, de-chunking if needed.
 * Returns 1 when the body is complete (chunked terminator or
 * Content-Length reached), 0 otherwise, -1 on a framing error. */
static int pump_body(conn_t *c) {
    if (!c->chunked) {
        size_t take = c->rbuf.len;
        if (c->clen >= 0 && (long)take > c->remain) take = (size_t)c->remain;
        buf_append(&c->body, c->rbuf.p, take);
        buf_consume(&c->rbuf, take);
        if (c->clen >= 0) { c->remain -= (long)take; return c->remain == 0; }
        return 0; /* close-delimited */
    }
    size_t off = 0;
    int done = 0;
    while (off < c->rbuf.len && !done) {
        char *p = c->rbuf.p + off;
        size_t avail = c->rbuf.len - off;
        switch (c->cst) {
        case CH_SIZE: {
            char *nl = memchr(p, '\n', avail);
            if (!nl) goto out;
            c->remain = strtol(p, NULL, 16);
            off += (size_t)(nl - p) + 1;
            c->cst = c->remain > 0 ? CH_DATA : CH_TRAILER;
            break;
        }
        case CH_DATA: {
            size_t take = avail < (size_t)c->remain ? avail : (size_t)c->remain;
            buf_append(&c->body, p, take);
            off += take;
            c->remain -= (long)take;
            if (!c->remain) c->cst = CH_DATA_CRLF;
            break;
        }
        case CH_DATA_CRLF: {
            char *nl = memchr(p, '\n', avail);
            if (!nl) goto out;
            off += (size_t)(nl - p) + 1;
            c->cst = CH_SIZE;
            break;
        }
        case CH_TRAILER: {
            char *nl = memchr(p, '\n', avail);
            if (!nl) goto out;
            size_t ll = (size_t)(nl - p);
            off += ll + 1;
            if (ll == 0 || (ll == 1 && p[0] == '\r')) { c->cst = CH_DONE; done = 1; }
            break;
        }
        case CH_DONE: done = 1; break;
        }
    }
out:
    buf_consume(&c->rbuf, off);
    return done;
}

/* Streaming subscribers: consume complete lines from c->body. */
static void process_stream_lines(conn_t *c, uint64_t t) {
    size_t off = 0;
    while (off < c->body.len) {
        char *p = c->body.p + off;
        char *nl = memchr(p, '\n', c->body.len - off);
        if (!nl) break;
        size_t ll = (size_t)(nl - p);
        if (ll && p[ll - 1] == '\r') ll--;
        if (cfg.kind == K_SSE) {
            if (ll > 5 && !memcmp(p, "data:", 5)) on_payload(c, p + 5, ll - 5, t);
            else if (cfg.mode == M_CONNECT && ll > 3 && !memcmp(p, "id:", 3)) {
                /* connect mode keeps the last event id for the reconnect storm's ?last_event_id= */
                const char *v = p + 3, *ve = p + ll;
                if (v < ve && *v == ' ') v++;
                if ((size_t)(ve - v) < sizeof c->cursor) { memcpy(c->cursor, v, (size_t)(ve - v)); c->cursor[ve - v] = 0; }
            }
            /* "event:", ":" comments and blank lines need no action */
        } else if (ll > 0 && memmem(p, ll, "seq", 3)) {
            /* one message per line (ndjson / raw); lines without a payload
             * (e.g. the gateway's initial {"last_event_id":..}) are control */
            on_payload(c, p, ll, t);
        }
        off += (size_t)(nl - p) + 1;
    }
    buf_consume(&c->body, off);
}

/* Forever iframe: the de-chunked body is HTML, a padding chunk and a start script, then one
 * <script>c({message object})</script> per message. Scripts are cut at "</script>" (which cannot occur inside
 * the JSON: the gateway escapes '<' and '>' in strings), so a script split over chunks or reads is only taken
 * once complete; scripts without a payload (start, heartbeats) and the padding are skipped. */
static void process_iframe_scripts(conn_t *c, uint64_t t) {
    size_t off = 0;
    while (off < c->body.len) {
        char *p = c->body.p + off;
        char *e = memmem(p, c->body.len - off, "</script>", 9);
        if (!e) break;
        size_t sl = (size_t)(e - p);
        if (memmem(p, sl, "seq", 3)) on_payload(c, p, sl, t);
        off += sl + 9;
    }
    buf_consume(&c->body, off);
}

static void sub_established(conn_t *c);

/* Long-poll: a complete response body arrived. Extract messages + cursor. */
static void process_poll_body(conn_t *c, uint64_t t) {
    const char *b = c->body.p, *e = b + c->body.len;
    if (c->status == 200 && c->body.len) {
        if (cfg.kind == K_JSONP) {
            /* the JSON must come wrapped in a call of the callback we named, cb(...); (an empty comment may
             * precede it) */
            const char *w = b;
            while (w < e && isspace((unsigned char)*w)) w++;
            if (e - w >= 4 && !memcmp(w, "/**/", 4)) w += 4;
            if (e - w < 4 || memcmp(w, "cb(", 3) || !memmem(w, (size_t)(e - w), ");", 2)) {
                c->unparsed++;
                st.unparsed++;
                if (st.unparsed <= 3) logmsg("jsonp: unexpected body: %.*s", (int)(c->body.len > 120 ? 120 : c->body.len), b);
            }
        }
        if (cfg.kind == K_BAYEUX && !c->bayeux_subscribed) {
            /* the handshake's clientId, then the subscribe reply (the subscriber counts as established) */
            const char *q = memmem(b, c->body.len, "\"clientId\":\"", 12);
            if (!c->client_id[0]) {
                if (q) {
                    q += 12;
                    const char *qe = memchr(q, '"', (size_t)(e - q));
                    if (qe && (size_t)(qe - q) < sizeof c->client_id) {
                        memcpy(c->client_id, q, (size_t)(qe - q));
                        c->client_id[qe - q] = 0;
                    }
                }
                if (!c->client_id[0]) { c->unparsed++; st.unparsed++; }
            } else if (memmem(b, c->body.len, "\"/meta/subscribe\",\"successful\":true",
                              strlen("\"/meta/subscribe\",\"successful\":true"))) {
                c->bayeux_subscribed = 1;
                sub_established(c);
            }
        } else if (cfg.server == SRV_NCHAN) {
            on_payload(c, b, c->body.len, t); /* one raw message per response */
        } else {
            /* {"messages":[{..,"data":"{\"seq\":..}"},...],"last_event_id":"X"}; Bayeux: [{..,"data":{"seq":..}},
             * .., {"channel":"/meta/connect",..,"clientId":"X"}] where a random clientId may hold the letters "seq":
             * there the key is matched with its quotes */
            const char *key = cfg.kind == K_BAYEUX ? "\"seq\":" : "seq";
            size_t kl = strlen(key);
            const char *s = b;
            while (s < e) {
                const char *k = memmem(s, (size_t)(e - s), key, kl);
                if (!k) break;
                const char *ne = memmem(k + kl, (size_t)(e - k - kl), key, kl);
                on_payload(c, k, (size_t)((ne ? ne : e) - k), t);
                s = ne ? ne : e;
            }
            const char *q = memmem(b, c->body.len, "\"last_event_id\"", 15);
            if (q) {
                q += 15;
                while (q < e && (*q == ' ' || *q == ':')) q++;
                if (q < e && *q == '"') {
                    q++;
                    const char *qe = memchr(q, '"', (size_t)(e - q));
                    if (qe && (size_t)(qe - q) < sizeof c->cursor) {
                        memcpy(c->cursor, q, (size_t)(qe - q));
                        c->cursor[qe - q] = 0;
                    }
                } else if (q < e && isdigit((unsigned char)*q)) {
                    size_t n = 0;
                    while (q < e && isdigit((unsigned char)*q) && n + 1 < sizeof c->cursor) c->cursor[n++] = *q++;
                    c->cursor[n] = 0;
                }
            }
        }
    }
    c->polls++;
}

/* A complete WebSocket message. Messages with a payload carry "seq" (Nchan: the raw payload; Pushpin: the
 * ws-message content; gateway: {"id":..,"channel":..,"data":"{\"seq\":..}"}); the gateway's control messages
 * ({"type":"subscribed",...}) have none and are counted, not parsed. */
static void on_ws_message(conn_t *c, const char *p, size_t len, uint64_t t) {
    if (!memmem(p, len, "seq", 3) && memmem(p, len, "\"type\"", 6)) { total_ws_control++; return; }
    on_payload(c, p, len, t);
}

/* WebSocket: consume complete frames from rbuf (after the 101 response).
 * Server frames are unmasked (RFC 6455 §5.1). Text and binary messages are
 * payloads; fragmented messages are reassembled in c->body; a ping is
 * answered with a masked pong; a close frame ends the subscription.
 * Returns -1 when the connection must be closed. */
static int process_ws_frames(conn_t *c, uint64_t t) {
    size_t off = 0;
    int rc = 0;
    while (c->rbuf.len - off >= 2) {
        const unsigned char *p = (const unsigned char *)c->rbuf.p + off;
        size_t avail = c->rbuf.len - off;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0f, masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            hl = 10;
        }
        if (masked || len > (1u << 24)) { rc = -1; break; } /* servers never mask */
        if (avail < hl + len) break;
        const char *payload = (const char *)p + hl;
        if (opcode == 0x8) { rc = -1; off += hl + len; break; }                 /* close */
        if (opcode == 0x9) { /* ping -> pong with the same application data, masked as a client must */
            if (len < 126) {
                static uint32_t rnd = 0x9e3779b9u;
                rnd ^= rnd << 13; rnd ^= rnd >> 17; rnd ^= rnd << 5; /* xorshift32: a non-zero mask key */
                unsigned char fr[6 + 125];
                fr[0] = 0x8a; /* FIN + pong */
                fr[1] = (unsigned char)(0x80 | len);
                memcpy(fr + 2, &rnd, 4);
                for (size_t i = 0; i < (size_t)len; i++) fr[6 + i] = (unsigned char)payload[i] ^ fr[2 + (i & 3)];
                buf_append(&c->wbuf, fr, 6 + (size_t)len);
                total_ws_pings++;
                if (conn_flush(c) < 0) { rc = -1; break; }
            }
        } else if (opcode == 0x1 || opcode == 0x2 || opcode == 0x0) {
            if (fin && opcode != 0x0 && c->body.len == 0) {
                on_ws_message(c, payload, (size_t)len, t);
            } else {
                buf_append(&c->body, payload, (size_t)len);
                if (fin) { on_ws_message(c, c->body.p, c->body.len, t); c->body.len = 0; }
            }
        }
        off += hl + (size_t)len;
    }
    buf_consume(&c->rbuf, off);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Event handlers                                                            */
/* ------------------------------------------------------------------------ */

static int pending_connects; /* subscribers connecting or awaiting headers */
static int established_subs;

static void clear_pending(conn_t *c) {
    if (c->pending) { c->pending = 0; pending_connects--; }
}

/* Open (or re-open) a subscriber connection; the request is sent once the
 * TCP connect completes. */
static void sub_open(conn_t *c) {
    c->t_start = now_ns();
    c->t_first = 0;
    if (conn_open(c, &cfg.sub_addrs[c->id % cfg.nsub_ports]) == 0) {
        c->pending = 1;
        pending_connects++;
        return;
    }
    c->state = S_IDLE;
    c->retries++;
    if (c->established) { c->established = 0; established_subs--; }
}

static void sub_established(conn_t *c) {
    clear_pending(c);
    if (!c->established) {
        c->established = 1;
        established_subs++;
    }
}

static void sub_failed(conn_t *c) {
    int was_est = c->established;
    clear_pending(c);
    conn_close(c);
    if (was_est) {
        c->established = 0;
        established_subs--;
        total_disconnects++;
        if (kind_is_poll() && !stop_flag) {
            /* long-poll is resumable: reconnect and poll with the cursor */
            total_reconnects++;
            sub_open(c);
        }
    } else {
        c->state = S_IDLE; /* retried by the connect scheduler */
        c->retries++;
        total_connect_fail++;
    }
}

static void handle_sub_readable(conn_t *c, uint64_t t) {
    for (int more = 1; more;) {
        buf_reserve(&c->rbuf, 16384);
        size_t room = c->rbuf.cap - c->rbuf.len;
        ssize_t n = recv(c->fd, c->rbuf.p + c->rbuf.len, room, 0);
        /* a short read means the socket is drained for now: skip the extra
         * recv() that would only return EAGAIN (epoll is level-triggered) */
        more = n == (ssize_t)room;
        if (n == 0) {
            /* EOF: for long-poll close-delimited bodies this completes one */
            if (kind_is_poll() && c->state == S_BODY && c->clen < 0 && !c->chunked) {
                process_poll_body(c, t);
            }
            sub_failed(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            sub_failed(c);
            return;
        }
        c->rbuf.len += (size_t)n;
        if (measuring_connects && !c->t_first) {
            c->t_first = t; /* the batch's time: the bytes were there when epoll returned */
            hist_add(&conn_first_hist, t > c->t_start ? (t - c->t_start) / 1000 : 0);
        }
        /* process what we have */
        for (;;) {
            if (c->state == S_HEAD) {
                int r = parse_head(c);
                if (r == 0) break;
                int expected = cfg.kind == K_WS ? 101 : 200;
                if (r < 0 || (c->status != expected && !(kind_is_poll() && (c->status == 304 || c->status == 408)))) {
                    static int logged;
                    if (c->status && logged++ < 5) logmsg("subscriber %d: HTTP %d", c->id, c->status);
                    sub_failed(c);
                    return;
                }
                c->state = S_BODY;
                if (measuring_connects && c->t_start) {
                    hist_add(&conn_head_hist, t > c->t_start ? (t - c->t_start) / 1000 : 0);
                    c->t_start = 0; /* once per connection */
                }
                if (!kind_is_poll()) sub_established(c);
            }
            if (c->state == S_BODY && cfg.kind == K_WS) {
                if (process_ws_frames(c, t) < 0) { sub_failed(c); return; }
                break;
            }
            if (c->state == S_BODY) {
                int done = pump_body(c);
                if (done < 0) { sub_failed(c); return; }
                if (!kind_is_poll()) {
                    if (cfg.kind == K_IFRAME) process_iframe_scripts(c, t);
                    else process_stream_lines(c, t);
                    if (done) { sub_failed(c); return; } /* stream ended */
                    break;
                }
                if (!done) break;
                process_poll_body(c, t);
                /* re-poll immediately with the new cursor */
                int close_it = c->conn_close;
                conn_reset_parse(c);
                if (stop_flag) return;
                if (close_it) {
                    /* server closed the keep-alive connection: poll again
                     * on a new one (not counted as a disconnect) */
                    conn_close(c);
                    total_reconnects++;
                    sub_open(c);
                    return; /* the request is sent once connected */
                }
                c->state = S_HEAD;
                build_sub_request(c);
                if (conn_flush(c) < 0) { sub_failed(c); return; }
                continue;
            }
            break;
        }
    }
}

static void pub_failed(conn_t *c) {
    st.pub_err += (uint64_t)c->pq_n;
    c->pq_n = 0;
    conn_close(c);
    conn_open(c, &cfg.pub_addr); /* reconnect; requests resume once connected */
}

static void handle_pub_readable(conn_t *c) {
    for (;;) {
        buf_reserve(&c->rbuf, 16384);
        ssize_t n = recv(c->fd, c->rbuf.p + c->rbuf.len, c->rbuf.cap - c->rbuf.len, 0);
        if (n == 0) { pub_failed(c); return; }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            pub_failed(c);
            return;
        }
        c->rbuf.len += (size_t)n;
        for (;;) {
            if (c->state == S_HEAD) {
                int r = parse_head(c);
                if (r == 0) break;
                if (r < 0) { pub_failed(c); return; }
                c->state = S_BODY;
            }
            if (c->state == S_BODY) {
                int done = c->clen == 0 ? 1 : pump_body(c);
                if (!done) break;
                if (c->pq_n > 0) {
                    int ch = c->pq[c->pq_head];
                    c->pq_head = (c->pq_head + 1) % PIPE_MAX;
                    c->pq_n--;
                    if (c->status >= 200 && c->status < 300) {
                        st.pub_ok++;
                        chan_acked[ch]++;
                        st.expected += (uint64_t)subs_per_chan[ch];
                    } else {
                        st.pub_fail++;
                        if (st.pub_fail <= 5) logmsg("publish: HTTP %d: %.*s", c->status, (int)(c->body.len > 200 ? 200 : c->body.len), c->body.p);
                    }
                }
                int close_it = c->conn_close;
                conn_reset_parse(c);
                c->state = S_HEAD;
                if (close_it) { pub_failed(c); return; }
                continue;
            }
            break;
        }
    }
}

static void handle_event(conn_t *c, uint32_t ev, uint64_t t) {
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            if (c->role == R_SUB) sub_failed(c);
            else { conn_close(c); c->state = S_IDLE; }
            return;
        }
        if (!(ev & EPOLLOUT)) return;
        c->state = S_HEAD;
        if (c->role == R_SUB) {
            build_sub_request(c);
            /* request in place (a Bayeux client once its subscribe reply came) */
            if (kind_is_poll() && (cfg.kind != K_BAYEUX || c->bayeux_subscribed)) sub_established(c);
        }
        if (conn_flush(c) < 0) {
            if (c->role == R_SUB) sub_failed(c);
            else pub_failed(c);
            return;
        }
        return;
    }
    if (c->state == S_CLOSED || c->fd < 0) return;
    if (ev & EPOLLOUT) {
        if (conn_flush(c) < 0) {
            if (c->role == R_SUB) sub_failed(c);
            else pub_failed(c);
            return;
        }
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (c->role == R_SUB) handle_sub_readable(c, t);
        else handle_pub_readable(c);
    }
}

/* One pass of the event loop, waiting at most timeout_ns. Uses
 * epoll_pwait2 (ns timeout) so that paced publishing at sub-millisecond
 * intervals sleeps instead of spinning; falls back to epoll_wait. */
static int have_pwait2 = 1;
static void poll_once_ns(uint64_t timeout_ns) {
    struct epoll_event evs[256];
    int n;
    if (have_pwait2) {
        struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000ull),
                              .tv_nsec = (long)(timeout_ns % 1000000000ull)};
        n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS) { have_pwait2 = 0; n = epoll_wait(epfd, evs, 256, (int)(timeout_ns / 1000000)); }
    } else {
        n = epoll_wait(epfd, evs, 256, (int)(timeout_ns / 1000000));
    }
    if (n <= 0) return;
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++) handle_event(evs[i].data.ptr, evs[i].events, t);
}
static void poll_once(int timeout_ms) { poll_once_ns((uint64_t)timeout_ms * 1000000ull); }

static int deadline_passed(void) { return now_ns() >= run_deadline_ns || stop_flag; }

/* ------------------------------------------------------------------------ */
/* Phases                                                                    */
/* ------------------------------------------------------------------------ */

/* Connect all subscribers with at most cfg.connect_conc in flight. Returns
 * the elapsed seconds; stops at cfg.connect_timeout. */
static double connect_subscribers(void) {
    uint64_t t0 = now_ns(), limit = t0 + (uint64_t)(cfg.connect_timeout * 1e9);
    int next = 0;
    uint64_t last_report = t0;
    while (established_subs < cfg.subs) {
        uint64_t t = now_ns();
        if (t >= limit || deadline_passed()) break;
        /* start new connections within the concurrency bound */
        int eligible = 0;
        for (int scans = 0; pending_connects < cfg.connect_conc && scans < cfg.subs; scans++) {
            conn_t *c = &subs[next];
            next = (next + 1) % cfg.subs;
            if (c->state != S_IDLE || c->established) continue;
            if (c->retries > 20) continue;
            eligible++;
            sub_open(c);
            if (c->state == S_IDLE) break; /* out of sockets for now */
        }
        if (!eligible && pending_connects == 0) {
            /* every subscriber not connected has used up its retries (the server refuses them): stop here */
            int left = 0;
            for (int i = 0; i < cfg.subs && !left; i++) left = !subs[i].established && subs[i].retries <= 20;
            if (!left) { logmsg("giving up: %d subscribers refused 21 times each", cfg.subs - established_subs); break; }
        }
        poll_once(5);
        if (t - last_report > 2000000000ull) {
            logmsg("connected %d/%d (in flight %d, failures %" PRIu64 ")", established_subs, cfg.subs,
                   pending_connects, total_connect_fail);
            last_report = t;
        }
    }
    return (double)(now_ns() - t0) / 1e9;
}

/* Run the event loop for `secs` seconds (or until stop). */
static void idle_for(double secs) {
    uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
    while (!deadline_passed() && now_ns() < end) poll_once(20);
}

static void connect_publishers(void) {
    for (int i = 0; i < cfg.pub_conns; i++) {
        pubs[i].id = cfg.subs + i;
        if (conn_open(&pubs[i], &cfg.pub_addr) < 0) die("cannot open publisher connection");
    }
    uint64_t end = now_ns() + 5000000000ull;
    for (;;) {
        int ready = 0;
        for (int i = 0; i < cfg.pub_conns; i++) ready += pubs[i].state == S_HEAD;
        if (ready == cfg.pub_conns) return;
        if (now_ns() > end || deadline_passed()) die("publisher connections did not come up");
        poll_once(5);
    }
}

static int pub_rr;

/* Send one publish on a connection with room in its pipeline.
 * Ordering across different connections is undefined in HTTP, so by default
 * (--pub-order channel) a channel is always published on the same connection
 * (channel % K): per-channel order is then well defined and reordering
 * counts are meaningful. --pub-order any spreads requests over all
 * connections (publish-throughput mode). */
static int publish_one(uint64_t msgno) {
    if (!cfg.pub_any_order) {
        int ch = (int)(msgno % (uint64_t)cfg.channels);
        conn_t *c = &pubs[ch % cfg.pub_conns];
        if ((c->state != S_HEAD && c->state != S_BODY) || c->pq_n >= cfg.pipeline) return 0;
        uint64_t seq = ++chan_seq[ch];
        build_pub_request(c, ch, seq);
        c->pq[(c->pq_head + c->pq_n) % PIPE_MAX] = ch;
        c->pq_n++;
        st.pub_sent++;
        if (conn_flush(c) < 0) pub_failed(c);
        return 1;
    }
    for (int k = 0; k < cfg.pub_conns; k++) {
        conn_t *c = &pubs[(pub_rr + k) % cfg.pub_conns];
        if (c->state != S_HEAD && c->state != S_BODY) continue;
        if (c->pq_n >= cfg.pipeline) continue;
        pub_rr = (pub_rr + k + 1) % cfg.pub_conns;
        int ch = (int)(msgno % (uint64_t)cfg.channels);
        uint64_t seq = ++chan_seq[ch];
        build_pub_request(c, ch, seq);
        c->pq[(c->pq_head + c->pq_n) % PIPE_MAX] = ch;
        c->pq_n++;
        st.pub_sent++;
        if (conn_flush(c) < 0) pub_failed(c);
        return 1;
    }
    return 0;
}

static int outstanding_pubs(void) {
    int n = 0;
    for (int i = 0; i < cfg.pub_conns; i++) n += pubs[i].pq_n;
    return n;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct {
    double rate_target, rate_achieved, pub_secs, drain_secs, pub_max_lag_ms, loadgen_cpu_pct;
    uint64_t pub_late;
    uint64_t sent, ok, fail, err, deliveries, expected, lost, dups, reorders, late_prev, unparsed;
    uint64_t subs_with_loss;
    int subs_connected;
    double p50, p90, p99, p999, max, mean;
    double cpu_s, cpu_us_per_delivery, cpu_us_per_publish, aux_cpu_s, other_cpu_s;
    uint64_t rss_kb;
    uint64_t backlog_drops, tcp_retrans; /* kernel, machine-wide, over the step */
    int pass;
} step_result_t;

static void reset_step(void) {
    memset(&st, 0, sizeof st);
    for (int ch = 0; ch < cfg.channels; ch++) {
        chan_acked[ch] = 0;
        chan_step_base[ch] = chan_seq[ch] + 1;
    }
    for (int i = 0; i < cfg.subs; i++) subs[i].step_uniq = 0;
}

/* One publishing step: rate > 0 paced, rate == 0 as fast as possible. */
static step_result_t run_step(double rate) {
    step_result_t r = {0};
    reset_step();
    r.rate_target = rate;
    uint64_t cpu0 = server_cpu_ticks(), aux0 = aux_cpu_ticks(), busy0 = machine_busy_ticks();
    uint64_t drops0 = softnet_drops(), retrans0 = tcp_retrans_segs();
    double self0 = self_cpu_s();
    uint64_t t0 = now_ns();
    uint64_t end = t0 + (uint64_t)(cfg.duration * 1e9);
    uint64_t msgno = 0, late = 0, max_lag_ns = 0;
    double interval = rate > 0 ? 1e9 / rate : 0;
    while (!deadline_passed()) {
        uint64_t t = now_ns();
        if (t >= end) break;
        if (rate > 0) {
            /* send everything that is due; count how far behind we are */
            int blocked = 0;
            for (;;) {
                uint64_t due = t0 + (uint64_t)((double)msgno * interval);
                if (due > t || due >= end) break;
                if (!publish_one(msgno)) { blocked = 1; break; } /* connection busy */
                if (t - due > 5000000ull) late++; /* sent > 5 ms after due */
                if (t - due > max_lag_ns) max_lag_ns = t - due;
                msgno++;
            }
            uint64_t due = t0 + (uint64_t)((double)msgno * interval);
            uint64_t wait_ns = due > t ? due - t : 0;
            /* blocked on a busy connection: sleep until a response arrives
             * (or 1 ms) rather than spinning */
            if (blocked) wait_ns = 1000000ull;
            poll_once_ns(wait_ns > 10000000ull ? 10000000ull : wait_ns);
        } else {
            while (publish_one(msgno) && now_ns() < end) msgno++;
            poll_once(1);
        }
    }
    uint64_t t_pub_end = now_ns();
    /* drain: wait for outstanding publishes and in-flight deliveries */
    uint64_t dend = t_pub_end + (uint64_t)(cfg.drain * 1e9);
    while (!deadline_passed() && now_ns() < dend) {
        if (outstanding_pubs() == 0 && st.deliveries >= st.expected) break;
        poll_once(5);
    }
    uint64_t t_end = now_ns();
    uint64_t cpu1 = server_cpu_ticks(), aux1 = aux_cpu_ticks();
    r.backlog_drops = softnet_drops() - drops0;
    r.tcp_retrans = tcp_retrans_segs() - retrans0;
    r.aux_cpu_s = cfg.naux_pids ? (double)(aux1 - aux0) / (double)clk_tck : -1;
    /* our own CPU use over the step: near 100% means the client, not the
     * server, may be the bottleneck */
    double self_s = self_cpu_s() - self0;
    r.loadgen_cpu_pct = 100.0 * self_s / ((double)(t_end - t0) / 1e9);
    /* CPU used by anything else on the machine during the step (other
     * processes, kernel threads); large values mean the numbers are noisy */
    uint64_t busy1 = machine_busy_ticks();
    double other = (double)(busy1 - busy0) / (double)clk_tck - self_s - (double)(cpu1 - cpu0) / (double)clk_tck -
                   (double)(aux1 - aux0) / (double)clk_tck;
    r.other_cpu_s = cfg.npids ? (other > 0 ? other : 0) : -1;
    r.pub_secs = (double)(t_pub_end - t0) / 1e9;
    r.drain_secs = (double)(t_end - t_pub_end) / 1e9;
    r.sent = st.pub_sent;
    r.ok = st.pub_ok;
    r.fail = st.pub_fail;
    r.err = st.pub_err + (uint64_t)outstanding_pubs();
    r.rate_achieved = r.pub_secs > 0 ? (double)st.pub_ok / r.pub_secs : 0;
    r.deliveries = st.deliveries;
    r.expected = st.expected;
    for (int i = 0; i < cfg.subs; i++) {
        uint64_t exp = chan_acked[subs[i].chan];
        if (subs[i].step_uniq < exp) { r.lost += exp - subs[i].step_uniq; r.subs_with_loss++; }
    }
    r.dups = st.dups;
    r.reorders = st.reorders;
    r.late_prev = st.late_prev;
    r.unparsed = st.unparsed;
    r.subs_connected = established_subs;
    r.p50 = hist_pct_ms(&st.hist, 50);
    r.p90 = hist_pct_ms(&st.hist, 90);
    r.p99 = hist_pct_ms(&st.hist, 99);
    r.p999 = hist_pct_ms(&st.hist, 99.9);
    r.max = st.hist.n ? (double)st.hist.max / 1000.0 : -1;
    r.mean = st.hist.n ? (double)st.hist.sum / (double)st.hist.n / 1000.0 : -1;
    r.cpu_s = cfg.npids ? (double)(cpu1 - cpu0) / (double)clk_tck : -1;
    r.cpu_us_per_delivery = (cfg.npids && r.deliveries) ? r.cpu_s * 1e6 / (double)r.deliveries : -1;
    r.cpu_us_per_publish = (cfg.npids && r.ok) ? r.cpu_s * 1e6 / (double)r.ok : -1;
    r.rss_kb = server_rss_kb();
    /* pass criterion for the fan-out sweep */
    r.pass = r.lost == 0 && r.dups == 0 && r.ok > 0 && r.fail == 0 && r.err == 0 && r.p99 >= 0 &&
             r.p99 < cfg.p99_limit_ms && (rate <= 0 || r.rate_achieved >= 0.95 * rate) &&
             r.subs_connected == cfg.subs;
    r.pub_late = late;
    r.pub_max_lag_ms = (double)max_lag_ns / 1e6;
    if (late && rate > 0)
        logmsg("%" PRIu64 " publishes went out > 5 ms late (max lag %.1f ms)", late, r.pub_max_lag_ms);
    return r;
}

/* ------------------------------------------------------------------------ */
/* JSON output                                                               */
/* ------------------------------------------------------------------------ */

static void jnum(const char *k, double v, int last) {
    if (v < 0 || isnan(v)) printf("\"%s\":null%s", k, last ? "" : ",");
    else printf("\"%s\":%.6g%s", k, v, last ? "" : ",");
}

static void print_step(const step_result_t *r) {
    printf("{");
    jnum("rate_target", r->rate_target, 0);
    jnum("rate_achieved", r->rate_achieved, 0);
    jnum("pub_secs", r->pub_secs, 0);
    jnum("drain_secs", r->drain_secs, 0);
    jnum("pub_max_lag_ms", r->pub_max_lag_ms, 0);
    jnum("loadgen_cpu_pct", r->loadgen_cpu_pct, 0);
    printf("\"pub_late\":%" PRIu64 ",", r->pub_late);
    printf("\"published\":%" PRIu64 ",\"pub_ok\":%" PRIu64 ",\"pub_fail\":%" PRIu64 ",\"pub_err\":%" PRIu64 ",",
           r->sent, r->ok, r->fail, r->err);
    printf("\"deliveries\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"subs_with_loss\":%" PRIu64
           ",\"dups\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"late_from_prev_step\":%" PRIu64 ",\"unparsed\":%" PRIu64
           ",\"subs_connected\":%d,",
           r->deliveries, r->expected, r->lost, r->subs_with_loss, r->dups, r->reorders, r->late_prev, r->unparsed,
           r->subs_connected);
    printf("\"latency_ms\":{");
    jnum("p50", r->p50, 0);
    jnum("p90", r->p90, 0);
    jnum("p99", r->p99, 0);
    jnum("p999", r->p999, 0);
    jnum("max", r->max, 0);
    jnum("mean", r->mean, 1);
    printf("},");
    jnum("server_cpu_s", r->cpu_s, 0);
    jnum("cpu_us_per_delivery", r->cpu_us_per_delivery, 0);
    jnum("cpu_us_per_publish", r->cpu_us_per_publish, 0);
    jnum("aux_cpu_s", r->aux_cpu_s, 0);
    jnum("other_cpu_s", r->other_cpu_s, 0);
    printf("\"kernel_backlog_drops\":%" PRIu64 ",\"tcp_retrans_segs\":%" PRIu64 ",", r->backlog_drops, r->tcp_retrans);
    printf("\"server_rss_kb\":%" PRIu64 ",\"pass\":%s}", r->rss_kb, r->pass ? "true" : "false");
}

static void print_header(void) {
    printf("{\"label\":\"%s\",\"mode\":\"%s\",\"server\":\"%s\",\"kind\":\"%s\",\"subs\":%d,\"channels\":%d,"
           "\"payload_bytes\":%d,\"pub_conns\":%d,\"pipeline\":%d,\"pub_order\":\"%s\",",
           cfg.label, mode_names[cfg.mode], server_names[cfg.server], kind_names[cfg.kind], cfg.subs, cfg.channels,
           cfg.size, cfg.pub_conns, cfg.pipeline, cfg.pub_any_order ? "any" : "channel");
}

/* ------------------------------------------------------------------------ */
/* Connect mode: a connect storm at a fixed rate, then a reconnect storm     */
/* ------------------------------------------------------------------------ */

typedef struct {
    double rate_target; /* connects/s; 0: all at once */
    int attempted, connected, failed, timed_out;
    double secs, rate_achieved, max_start_lag_ms, loadgen_cpu_pct;
    double first[6], head[6]; /* p50 p90 p99 p99.9 max mean (ms) */
    uint64_t nfirst, nhead;
    double cpu_s, cpu_us_per_conn, aux_cpu_s, other_cpu_s;
    uint64_t rss_before, rss_after;
    uint64_t backlog_drops, tcp_retrans, listen_overflows; /* kernel, machine-wide, over the storm */
    int with_cursor;
} storm_t;

static uint64_t storm_k0[3];

typedef struct {
    uint64_t t, cpu, aux, busy, rss;
    double self;
} sample_t;

static sample_t take_sample(void) {
    sample_t a = {.t = now_ns(), .cpu = server_cpu_ticks(), .aux = aux_cpu_ticks(), .busy = machine_busy_ticks(),
                  .rss = server_rss_kb(), .self = self_cpu_s()};
    return a;
}

static void hist_summary(const hist_t *h, double *o) {
    o[0] = hist_pct_ms(h, 50);
    o[1] = hist_pct_ms(h, 90);
    o[2] = hist_pct_ms(h, 99);
    o[3] = hist_pct_ms(h, 99.9);
    o[4] = h->n ? (double)h->max / 1000.0 : -1;
    o[5] = h->n ? (double)h->sum / (double)h->n / 1000.0 : -1;
}

/* Open subscribers: rate > 0 paces connect i at t0 + i/rate; rate == 0 opens them all at once, cfg.reconnect_batch
 * between two event-loop passes (so responses are timestamped while the rest are still being opened). Waits until
 * every one is answered or failed, at most cfg.connect_timeout after the last was opened; the CPU window ends
 * 0.2 s later (work a server defers past the response head). */
static void run_storm(storm_t *r, double rate) {
    memset(&conn_first_hist, 0, sizeof conn_first_hist);
    memset(&conn_head_hist, 0, sizeof conn_head_hist);
    r->rate_target = rate;
    measuring_connects = 1;
    storm_k0[0] = softnet_drops();
    storm_k0[1] = tcp_retrans_segs();
    storm_k0[2] = listen_overflows();
    sample_t a = take_sample();
    double interval = rate > 0 ? 1e9 / rate : 0;
    uint64_t t0 = a.t, max_lag = 0, limit = 0, t_done = 0;
    int next = 0;
    while (!deadline_passed()) {
        uint64_t t = now_ns();
        if (rate > 0) {
            while (next < cfg.subs) {
                uint64_t due = t0 + (uint64_t)((double)next * interval);
                if (due > t) break;
                if (t - due > max_lag) max_lag = t - due;
                sub_open(&subs[next++]);
            }
        } else {
            for (int k = 0; k < cfg.reconnect_batch && next < cfg.subs; k++) sub_open(&subs[next++]);
        }
        if (next == cfg.subs) {
            if (!limit) limit = now_ns() + (uint64_t)(cfg.connect_timeout * 1e9);
            if (pending_connects == 0 || now_ns() >= limit) { t_done = now_ns(); break; }
        }
        uint64_t wait = 1000000ull;
        if (next < cfg.subs) {
            if (rate > 0) {
                uint64_t due = t0 + (uint64_t)((double)next * interval);
                t = now_ns();
                wait = due > t ? due - t : 0;
                if (wait > 1000000ull) wait = 1000000ull;
            } else {
                wait = 0;
            }
        }
        poll_once_ns(wait);
    }
    if (!t_done) t_done = now_ns();
    r->timed_out = pending_connects;
    for (int i = 0; i < cfg.subs; i++) /* unanswered at the bound: given up */
        if (subs[i].pending) { clear_pending(&subs[i]); conn_close(&subs[i]); subs[i].state = S_IDLE; }
    measuring_connects = 0;
    r->attempted = next;
    r->connected = established_subs;
    r->failed = r->attempted - r->connected - r->timed_out;
    if (r->failed < 0) r->failed = 0;
    r->secs = (double)(t_done - t0) / 1e9;
    r->rate_achieved = r->secs > 0 ? (double)r->connected / r->secs : 0;
    r->max_start_lag_ms = (double)max_lag / 1e6;
    hist_summary(&conn_first_hist, r->first);
    hist_summary(&conn_head_hist, r->head);
    r->nfirst = conn_first_hist.n;
    r->nhead = conn_head_hist.n;
    idle_for(0.2);
    sample_t b = take_sample();
    double wall = (double)(b.t - a.t) / 1e9, self = b.self - a.self;
    r->loadgen_cpu_pct = 100.0 * self / wall;
    r->cpu_s = cfg.npids ? (double)(b.cpu - a.cpu) / (double)clk_tck : -1;
    r->cpu_us_per_conn = (cfg.npids && r->connected) ? r->cpu_s * 1e6 / r->connected : -1;
    r->aux_cpu_s = cfg.naux_pids ? (double)(b.aux - a.aux) / (double)clk_tck : -1;
    double other = (double)(b.busy - a.busy) / (double)clk_tck - self - (double)(b.cpu - a.cpu) / (double)clk_tck -
                   (double)(b.aux - a.aux) / (double)clk_tck;
    r->other_cpu_s = cfg.npids ? (other > 0 ? other : 0) : -1;
    r->rss_before = a.rss;
    r->rss_after = b.rss;
    r->backlog_drops = softnet_drops() - storm_k0[0];
    r->tcp_retrans = tcp_retrans_segs() - storm_k0[1];
    r->listen_overflows = listen_overflows() - storm_k0[2];
    logmsg("%s: %d/%d connected in %.2fs (%d failed, %d timed out); first byte p50=%.2fms p99=%.2fms max=%.2fms; "
           "server cpu/conn=%.1fus loadgen-cpu=%.0f%%",
           rate > 0 ? "connect storm" : "reconnect storm", r->connected, cfg.subs, r->secs, r->failed, r->timed_out,
           r->first[0], r->first[2], r->first[4], r->cpu_us_per_conn, r->loadgen_cpu_pct);
}

/* Publish nmsgs messages (one every 20 ms, channel = n mod channels) and wait until every subscriber has them, at
 * most `timeout` seconds. */
static void publish_and_wait(int nmsgs, double timeout, uint64_t *ok, uint64_t *deliv, uint64_t *expected) {
    reset_step();
    uint64_t end = now_ns() + (uint64_t)(timeout * 1e9), next_t = 0;
    int sent = 0;
    while (!deadline_passed() && now_ns() < end) {
        uint64_t t = now_ns();
        if (sent < nmsgs && t >= next_t && publish_one((uint64_t)sent)) { sent++; next_t = t + 20000000ull; }
        if (sent == nmsgs && outstanding_pubs() == 0 && st.deliveries >= st.expected) break;
        poll_once(2);
    }
    *ok = st.pub_ok;
    *deliv = st.deliveries;
    *expected = st.expected;
}

static void print_hist6(const char *k, const double *v) {
    printf("\"%s\":{", k);
    jnum("p50", v[0], 0);
    jnum("p90", v[1], 0);
    jnum("p99", v[2], 0);
    jnum("p999", v[3], 0);
    jnum("max", v[4], 0);
    jnum("mean", v[5], 1);
    printf("},");
}

static void print_storm(const char *k, const storm_t *r) {
    printf("\"%s\":{", k);
    if (r->rate_target > 0) jnum("rate_target", r->rate_target, 0);
    else printf("\"rate_target\":\"all at once\",");
    printf("\"attempted\":%d,\"connected\":%d,\"failed\":%d,\"timed_out\":%d,\"with_last_event_id\":%d,", r->attempted,
           r->connected, r->failed, r->timed_out, r->with_cursor);
    jnum("secs", r->secs, 0);
    jnum("rate_achieved", r->rate_achieved, 0);
    jnum("max_start_lag_ms", r->max_start_lag_ms, 0);
    print_hist6("first_byte_ms", r->first);
    print_hist6("head_ms", r->head);
    jnum("server_cpu_s", r->cpu_s, 0);
    jnum("cpu_us_per_conn", r->cpu_us_per_conn, 0);
    jnum("aux_cpu_s", r->aux_cpu_s, 0);
    jnum("other_cpu_s", r->other_cpu_s, 0);
    jnum("loadgen_cpu_pct", r->loadgen_cpu_pct, 0);
    printf("\"kernel_backlog_drops\":%" PRIu64 ",\"tcp_retrans_segs\":%" PRIu64 ",\"listen_overflows\":%" PRIu64 ",",
           r->backlog_drops, r->tcp_retrans, r->listen_overflows);
    printf("\"server_rss_kb_before\":%" PRIu64 ",\"server_rss_kb_after\":%" PRIu64 "}", r->rss_before, r->rss_after);
}

static uint64_t sum_sub(size_t field_off) {
    uint64_t n = 0;
    for (int i = 0; i < cfg.subs; i++) n += *(uint64_t *)((char *)&subs[i] + field_off);
    return n;
}

/* --mode connect: the connect storm (cfg.subs SSE subscribers at cfg.connect_rate/s), cfg.prime_msgs messages so
 * that every subscriber has a last event id, then the reconnect storm (all closed, all reopened at once with
 * ?last_event_id=), and one message that every reconnected subscriber must get. */
static int run_connect_mode(void) {
    connect_publishers();
    idle_for(cfg.settle);
    storm_t s1 = {0}, s2 = {0};
    run_storm(&s1, cfg.connect_rate);
    idle_for(0.3);
    uint64_t p_ok = 0, p_deliv = 0, p_exp = 0;
    if (cfg.prime_msgs > 0) publish_and_wait(cfg.prime_msgs, 10, &p_ok, &p_deliv, &p_exp);
    logmsg("primed: %" PRIu64 " publishes, %" PRIu64 "/%" PRIu64 " deliveries", p_ok, p_deliv, p_exp);
    idle_for(0.3);
    uint64_t rx0 = sum_sub(offsetof(conn_t, rx)), dup0 = sum_sub(offsetof(conn_t, dup));
    uint64_t disc0 = total_disconnects;
    for (int i = 0; i < cfg.subs; i++) {
        conn_t *c = &subs[i];
        if (c->cursor[0]) s2.with_cursor++;
        clear_pending(c);
        if (c->established) { c->established = 0; established_subs--; }
        conn_close(c); /* abortive (RST), as a client whose network dropped */
        c->state = S_IDLE;
        c->body.len = 0;
    }
    run_storm(&s2, 0);
    idle_for(0.3);
    uint64_t rx_between = sum_sub(offsetof(conn_t, rx)) - rx0, dup_between = sum_sub(offsetof(conn_t, dup)) - dup0;
    uint64_t a_ok = 0, a_deliv = 0, a_exp = 0;
    publish_and_wait(1, 5, &a_ok, &a_deliv, &a_exp);
    logmsg("after the reconnect storm: %" PRIu64 " messages re-delivered, 1 publish -> %" PRIu64 "/%" PRIu64
           " deliveries", rx_between, a_deliv, a_exp);

    print_header();
    printf("\"connect_rate\":%g,\"prime_msgs\":%d,\"reconnect_batch\":%d,", cfg.connect_rate, cfg.prime_msgs,
           cfg.reconnect_batch);
    print_storm("storm", &s1);
    printf(",\"primed\":{\"published\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"expected\":%" PRIu64 "},", p_ok, p_deliv,
           p_exp);
    print_storm("reconnect", &s2);
    printf(",\"after_reconnect\":{\"redelivered\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"published\":%" PRIu64
           ",\"deliveries\":%" PRIu64 ",\"expected\":%" PRIu64 "},",
           rx_between, dup_between, a_ok, a_deliv, a_exp);
    printf("\"disconnects\":%" PRIu64 ",\"disconnects_after_reconnect\":%" PRIu64 ",\"unparsed\":%" PRIu64 "}\n",
           total_disconnects, total_disconnects - disc0, sum_sub(offsetof(conn_t, unparsed)));
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --mode fanout|pubtput|capacity|connect --server gateway|nchan|pushpin|floor [options]\n"
            "  --kind sse|stream|longpoll|ws|iframe|jsonp|bayeux   subscriber kind (default sse; iframe and jsonp:\n"
            "                               the gateway's ?transport=iframe / ?transport=jsonp, callback cb;\n"
            "                               bayeux: long-polling on the gateway's /cometd)\n"
            "  --host 127.0.0.1             target (loopback only)\n"
            "  --sub-port P --pub-port P    subscriber / publisher ports\n"
            "  --sub-ports P1,P2,..         subscribers spread round-robin over several nodes' ports (up to 8)\n"
            "  --origin-port P              pushpin GRIP origin (long-poll publishes go through it)\n"
            "  --subs N --channels C        subscribers, spread round-robin over C channels\n"
            "  --channel-prefix S           channel name prefix (default bench)\n"
            "  --rates R1,R2,..             fanout: publish rates (msg/s), one step each\n"
            "  --duration S                 seconds per step (pubtput: test length)\n"
            "  --size B                     payload size in bytes (default 128)\n"
            "  --pub-conns K --pipeline P   publisher connections / pipelining depth\n"
            "  --connect-conc X             max subscriber connects in flight (default 256)\n"
            "  --src-ips N                  spread source addresses over 127.0.0.1..N (default 4)\n"
            "  --hold S                     capacity: hold seconds (or until SIGTERM)\n"
            "  --settle S --drain S         pause before publishing / max wait after a step\n"
            "  --connect-timeout S          bound on the connect phase (default 120)\n"
            "  --deadline S                 hard bound on the whole run (default 900)\n"
            "  --pids a,b,c                 server pids for CPU/RSS sampling\n"
            "  --aux-pids a,b               helper pids (e.g. GRIP origin), CPU reported separately\n"
            "  --ready-file F               written when all subscribers are connected\n"
            "  --stop-after-fail N          fanout: stop after N consecutive failing steps (default 2)\n"
            "  --p99-limit-ms X             fanout pass criterion (default 100)\n"
            "  --pub-order channel|any      channel: a channel always uses the same publisher\n"
            "                               connection (default); any: round-robin\n"
            "  --label S                    free-form label copied to the output\n"
            "  --grip                       sse: through GRIP stream holds; the gateway's subscribers GET /grip/CH\n"
            "                               (proxied to the GRIP origin) and publishes go to its /publish/ as EPCP\n"
            "                               http-stream items, as Pushpin's always do\n"
            "  connect mode (SSE): --subs N subscribers connect at --connect-rate R/s (default 5000), then\n"
            "  --prime-msgs M messages (default 3) give each a last event id, then all disconnect and reconnect\n"
            "  at once with ?last_event_id= (--reconnect-batch B opens between event-loop passes, default 64);\n"
            "  --connect-timeout bounds each storm after its last connect\n");
    exit(2);
}

static void parse_args(int argc, char **argv) {
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = K_SSE;
    strcpy(cfg.host, "127.0.0.1");
    strcpy(cfg.chan_prefix, "bench");
    cfg.channels = 1;
    cfg.duration = 5;
    cfg.size = 128;
    cfg.pub_conns = 4;
    cfg.pipeline = 1;
    cfg.connect_conc = 256;
    cfg.src_ips = 4;
    cfg.hold = 0;
    cfg.drain = 3;
    cfg.settle = 1;
    cfg.connect_timeout = 120;
    cfg.deadline = 900;
    cfg.max_fds = 19500;
    cfg.stop_after_fail = 2;
    cfg.p99_limit_ms = 100;
    cfg.connect_rate = 5000;
    cfg.prime_msgs = 3;
    cfg.reconnect_batch = 64;
    int mode_set = 0, server_set = 0;
    static struct option opts[] = {
        {"mode", 1, 0, 'm'},         {"server", 1, 0, 'S'},       {"kind", 1, 0, 'k'},
        {"host", 1, 0, 'h'},         {"sub-port", 1, 0, 'p'},     {"pub-port", 1, 0, 'P'},
        {"origin-port", 1, 0, 'O'},  {"subs", 1, 0, 'n'},         {"channels", 1, 0, 'c'},
        {"channel-prefix", 1, 0, 'x'}, {"rates", 1, 0, 'r'},      {"duration", 1, 0, 'd'},
        {"size", 1, 0, 's'},         {"pub-conns", 1, 0, 'K'},    {"pipeline", 1, 0, 'L'},
        {"connect-conc", 1, 0, 'C'}, {"src-ips", 1, 0, 'I'},      {"hold", 1, 0, 'H'},
        {"settle", 1, 0, 'T'},       {"drain", 1, 0, 'D'},        {"connect-timeout", 1, 0, 'W'},
        {"deadline", 1, 0, 'Z'},     {"pids", 1, 0, 'Q'},         {"ready-file", 1, 0, 'R'},
        {"stop-after-fail", 1, 0, 'F'}, {"p99-limit-ms", 1, 0, 'X'}, {"label", 1, 0, 'l'},
        {"max-fds", 1, 0, 'M'},      {"pub-order", 1, 0, 'o'},    {"aux-pids", 1, 0, 'A'},
        {"connect-rate", 1, 0, 'y'}, {"prime-msgs", 1, 0, 'u'},   {"reconnect-batch", 1, 0, 'b'},
        {"grip", 0, 0, 'g'},         {"sub-ports", 1, 0, 'q'},    {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            mode_set = 1;
            if (!strcmp(optarg, "fanout")) cfg.mode = M_FANOUT;
            else if (!strcmp(optarg, "pubtput")) cfg.mode = M_PUBTPUT;
            else if (!strcmp(optarg, "capacity")) cfg.mode = M_CAPACITY;
            else if (!strcmp(optarg, "connect")) cfg.mode = M_CONNECT;
            else usage();
            break;
        case 'S':
            server_set = 1;
            if (!strcmp(optarg, "gateway")) cfg.server = SRV_GATEWAY;
            else if (!strcmp(optarg, "nchan")) cfg.server = SRV_NCHAN;
            else if (!strcmp(optarg, "pushpin")) cfg.server = SRV_PUSHPIN;
            else if (!strcmp(optarg, "floor")) cfg.server = SRV_FLOOR;
            else usage();
            break;
        case 'k':
            if (!strcmp(optarg, "sse")) cfg.kind = K_SSE;
            else if (!strcmp(optarg, "stream")) cfg.kind = K_STREAM;
            else if (!strcmp(optarg, "longpoll")) cfg.kind = K_LONGPOLL;
            else if (!strcmp(optarg, "ws")) cfg.kind = K_WS;
            else if (!strcmp(optarg, "iframe")) cfg.kind = K_IFRAME;
            else if (!strcmp(optarg, "jsonp")) cfg.kind = K_JSONP;
            else if (!strcmp(optarg, "bayeux")) cfg.kind = K_BAYEUX;
            else usage();
            break;
        case 'h': snprintf(cfg.host, sizeof cfg.host, "%s", optarg); break;
        case 'p': cfg.sub_port = atoi(optarg); break;
        case 'q': {
            char *s = optarg, *tok;
            while ((tok = strsep(&s, ",")) && cfg.nsub_ports < 8)
                if (*tok) cfg.sub_ports[cfg.nsub_ports++] = atoi(tok);
            if (cfg.nsub_ports) cfg.sub_port = cfg.sub_ports[0];
            break;
        }
        case 'P': cfg.pub_port = atoi(optarg); break;
        case 'O': cfg.origin_port = atoi(optarg); break;
        case 'n': cfg.subs = atoi(optarg); break;
        case 'c': cfg.channels = atoi(optarg); break;
        case 'x': snprintf(cfg.chan_prefix, sizeof cfg.chan_prefix, "%s", optarg); break;
        case 'r': {
            char *s = optarg, *tok;
            while ((tok = strsep(&s, ",")) && cfg.nrates < 32)
                if (*tok) cfg.rates[cfg.nrates++] = atof(tok);
            break;
        }
        case 'd': cfg.duration = atof(optarg); break;
        case 's': cfg.size = atoi(optarg); break;
        case 'K': cfg.pub_conns = atoi(optarg); break;
        case 'L': cfg.pipeline = atoi(optarg); break;
        case 'g': cfg.grip = 1; break;
        case 'C': cfg.connect_conc = atoi(optarg); break;
        case 'I': cfg.src_ips = atoi(optarg); break;
        case 'H': cfg.hold = atof(optarg); break;
        case 'T': cfg.settle = atof(optarg); break;
        case 'D': cfg.drain = atof(optarg); break;
        case 'W': cfg.connect_timeout = atof(optarg); break;
        case 'Z': cfg.deadline = atof(optarg); break;
        case 'Q': {
            char *s = optarg, *tok;
            while ((tok = strsep(&s, ",")) && cfg.npids < 64)
                if (*tok) cfg.pids[cfg.npids++] = atoi(tok);
            break;
        }
        case 'R': snprintf(cfg.ready_file, sizeof cfg.ready_file, "%s", optarg); break;
        case 'F': cfg.stop_after_fail = atoi(optarg); break;
        case 'X': cfg.p99_limit_ms = atof(optarg); break;
        case 'l': snprintf(cfg.label, sizeof cfg.label, "%s", optarg); break;
        case 'M': cfg.max_fds = atoi(optarg); break;
        case 'y': cfg.connect_rate = atof(optarg); break;
        case 'u': cfg.prime_msgs = atoi(optarg); break;
        case 'b': cfg.reconnect_batch = atoi(optarg); break;
        case 'A': {
            char *s = optarg, *tok;
            while ((tok = strsep(&s, ",")) && cfg.naux_pids < 16)
                if (*tok) cfg.aux_pids[cfg.naux_pids++] = atoi(tok);
            break;
        }
        case 'o':
            if (!strcmp(optarg, "any")) cfg.pub_any_order = 1;
            else if (!strcmp(optarg, "channel")) cfg.pub_any_order = 0;
            else usage();
            break;
        default: usage();
        }
    }
    if (!mode_set || !server_set || !cfg.sub_port) usage();
    if (!cfg.pub_port) cfg.pub_port = cfg.sub_port;
    if (cfg.channels < 1) cfg.channels = 1;
    if (cfg.pipeline < 1) cfg.pipeline = 1;
    if (cfg.pipeline > PIPE_MAX) cfg.pipeline = PIPE_MAX;
    if (cfg.pub_conns < 1) cfg.pub_conns = 1;
    if (cfg.size < 48) cfg.size = 48;
    if (cfg.size > 60000) cfg.size = 60000;
    if (cfg.src_ips < 1) cfg.src_ips = 1;
    if (cfg.src_ips > 250) cfg.src_ips = 250;
    if (cfg.mode == M_CAPACITY || cfg.mode == M_CONNECT) cfg.kind = K_SSE;
    if (cfg.connect_rate <= 0) cfg.connect_rate = 5000;
    if (cfg.reconnect_batch < 1) cfg.reconnect_batch = 1;
    if (cfg.prime_msgs < 0) cfg.prime_msgs = 0;
    if ((cfg.kind == K_IFRAME || cfg.kind == K_JSONP || cfg.kind == K_BAYEUX) && cfg.server != SRV_GATEWAY)
        logmsg("warning: --kind %s is a gateway transport; %s will likely refuse it", kind_names[cfg.kind],
               server_names[cfg.server]);
    /* Pushpin's HTTP publish endpoint answers "Connection: close": requests
     * pipelined behind the first would be dropped, so never pipeline there. */
    if (cfg.server == SRV_PUSHPIN && cfg.kind != K_LONGPOLL) cfg.pipeline = 1;
    if (cfg.mode == M_FANOUT && cfg.nrates == 0) cfg.rates[cfg.nrates++] = 100;
    /* loopback only */
    struct in_addr a;
    if (inet_pton(AF_INET, cfg.host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
        die("only 127.0.0.0/8 targets are allowed (got %s)", cfg.host);
    cfg.sub_addr.sin_family = AF_INET;
    cfg.sub_addr.sin_addr = a;
    cfg.sub_addr.sin_port = htons((uint16_t)cfg.sub_port);
    cfg.pub_addr = cfg.sub_addr;
    if (cfg.nsub_ports == 0) cfg.sub_ports[cfg.nsub_ports++] = cfg.sub_port;
    for (int i = 0; i < cfg.nsub_ports; i++) {
        cfg.sub_addrs[i] = cfg.sub_addr;
        cfg.sub_addrs[i].sin_port = htons((uint16_t)cfg.sub_ports[i]);
    }
    int pport = cfg.pub_port;
    if (cfg.server == SRV_PUSHPIN && cfg.kind == K_LONGPOLL) {
        if (!cfg.origin_port) die("--origin-port is required for pushpin long-poll");
        pport = cfg.origin_port;
    }
    cfg.pub_addr.sin_port = htons((uint16_t)pport);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    clk_tck = sysconf(_SC_CLK_TCK);
    memset(payload_pad, 'x', sizeof payload_pad);

    /* raise RLIMIT_NOFILE to the hard limit and stay well below it */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    int fd_room = (int)(rl.rlim_cur > 100000 ? 100000 : rl.rlim_cur) - 64;
    if (cfg.max_fds > fd_room) cfg.max_fds = fd_room;
    int needed = cfg.subs + (cfg.mode == M_CAPACITY ? 0 : cfg.pub_conns);
    if (needed > cfg.max_fds)
        die("%d sockets needed but only %d allowed per process (use several loadgen processes)", needed, cfg.max_fds);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    run_deadline_ns = now_ns() + (uint64_t)(cfg.deadline * 1e9);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    subs = calloc((size_t)(cfg.subs ? cfg.subs : 1), sizeof *subs);
    pubs = calloc((size_t)cfg.pub_conns, sizeof *pubs);
    subs_per_chan = calloc((size_t)cfg.channels, sizeof *subs_per_chan);
    chan_seq = calloc((size_t)cfg.channels, sizeof *chan_seq);
    chan_acked = calloc((size_t)cfg.channels, sizeof *chan_acked);
    chan_step_base = calloc((size_t)cfg.channels, sizeof *chan_step_base);
    for (int i = 0; i < cfg.subs; i++) {
        subs[i].fd = -1;
        subs[i].id = i;
        subs[i].role = R_SUB;
        subs[i].state = S_IDLE;
        subs[i].chan = i % cfg.channels;
        subs_per_chan[subs[i].chan]++;
    }
    for (int i = 0; i < cfg.pub_conns; i++) {
        pubs[i].fd = -1;
        pubs[i].role = R_PUB;
        pubs[i].state = S_IDLE;
    }

    if (cfg.mode == M_CONNECT) return run_connect_mode();

    uint64_t rss0 = server_rss_kb();
    double connect_s = 0;
    if (cfg.subs > 0) {
        connect_s = connect_subscribers();
        logmsg("%d/%d subscribers connected in %.2fs", established_subs, cfg.subs, connect_s);
    }
    uint64_t rss1 = server_rss_kb();
    int connected = established_subs;
    if (cfg.ready_file[0]) {
        FILE *f = fopen(cfg.ready_file, "w");
        if (f) { fprintf(f, "%d %.3f\n", connected, connect_s); fclose(f); }
    }

    print_header();
    printf("\"connected\":%d,\"connect_secs\":%.3f,\"connect_failures\":%" PRIu64 ",", connected, connect_s,
           total_connect_fail);

    if (cfg.mode == M_CAPACITY) {
        /* hold the idle subscribers open */
        uint64_t t0 = now_ns();
        while (!deadline_passed() && (cfg.hold <= 0 || now_ns() - t0 < (uint64_t)(cfg.hold * 1e9))) poll_once(100);
        printf("\"server_rss_kb_before\":%" PRIu64 ",\"server_rss_kb_after\":%" PRIu64 ",", rss0, rss1);
        printf("\"held_secs\":%.3f,\"still_connected\":%d,\"disconnects\":%" PRIu64 "}\n", (double)(now_ns() - t0) / 1e9,
               established_subs, total_disconnects);
        fflush(stdout);
        return 0;
    }

    connect_publishers();
    idle_for(cfg.settle); /* let servers finish registering subscriptions */

    if (cfg.mode == M_PUBTPUT) {
        step_result_t r = run_step(0);
        printf("\"result\":");
        print_step(&r);
    } else {
        printf("\"steps\":[");
        int fails = 0;
        double best = -1;
        for (int i = 0; i < cfg.nrates && !deadline_passed(); i++) {
            logmsg("step %d: %g msg/s for %gs to %d subscribers", i + 1, cfg.rates[i], cfg.duration, established_subs);
            step_result_t r = run_step(cfg.rates[i]);
            logmsg("  ok=%" PRIu64 " (%.0f/s) deliveries=%" PRIu64 "/%" PRIu64 " lost=%" PRIu64
                   " p50=%.2fms p99=%.2fms cpu/deliv=%.2fus loadgen-cpu=%.0f%% %s",
                   r.ok, r.rate_achieved, r.deliveries, r.expected, r.lost, r.p50, r.p99, r.cpu_us_per_delivery,
                   r.loadgen_cpu_pct, r.pass ? "PASS" : "FAIL");
            if (i) printf(",");
            print_step(&r);
            fflush(stdout);
            if (r.pass) { fails = 0; if (cfg.rates[i] > best) best = cfg.rates[i]; }
            else if (++fails >= cfg.stop_after_fail) break;
            if (i + 1 < cfg.nrates) idle_for(0.5);
        }
        printf("],");
        jnum("max_passing_rate", best, 1);
    }
    printf(",\"disconnects\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"polls\":%" PRIu64, total_disconnects,
           total_reconnects, sum_sub(offsetof(conn_t, polls)));
    if (cfg.kind == K_WS)
        printf(",\"ws_control_messages\":%" PRIu64 ",\"ws_pings_answered\":%" PRIu64, total_ws_control, total_ws_pings);
    printf("}\n");
    fflush(stdout);
    return 0;
}
