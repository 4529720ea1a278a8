/* bms_emu_spi: C client of the bms-emu SIL TCP protocol. See bms_emu_spi.h. */
#define _POSIX_C_SOURCE 200809L

#include "bms_emu_spi.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 12u
#define T_TRANSFER 0x01u
#define T_ADVANCE 0x02u
#define T_WAKEUP 0x03u
#define T_INFO 0x04u
#define T_REPLY 0x80u
#define T_ERROR 0x7Fu
#define SIL_E_MODE 9u

typedef struct {
    int fd; /* -1: free slot */
    uint32_t seq;
    uint32_t timeout_ms;
    uint16_t last_error;
    char last_message[256];
    uint8_t buf[HDR_LEN + BMS_EMU_SPI_MAX_PAYLOAD];
} conn_t;

static conn_t conns[BMS_EMU_SPI_MAX_HANDLES];
static int conns_ready;

static void init_table(void) {
    if (!conns_ready) {
        for (int i = 0; i < BMS_EMU_SPI_MAX_HANDLES; i++) conns[i].fd = -1;
        conns_ready = 1;
    }
}

static conn_t *get(int h) {
    init_table();
    if (h < 0 || h >= BMS_EMU_SPI_MAX_HANDLES || conns[h].fd < 0) return NULL;
    return &conns[h];
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_u64(const uint8_t *p) {
    return ((uint64_t)get_u32(p) << 32) | get_u32(p + 4);
}

/* Wait until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, uint64_t deadline_ms) {
    for (;;) {
        uint64_t t = now_ms();
        if (t >= deadline_ms) return BMS_EMU_SPI_E_TIMEOUT;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)(deadline_ms - t));
        if (r > 0) return BMS_EMU_SPI_OK;
        if (r == 0) return BMS_EMU_SPI_E_TIMEOUT;
        if (errno != EINTR) return BMS_EMU_SPI_E_IO;
    }
}

static int send_all(conn_t *c, const uint8_t *p, size_t n, uint64_t deadline_ms) {
    while (n) {
        int r = wait_fd(c->fd, POLLOUT, deadline_ms);
        if (r) return r;
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return BMS_EMU_SPI_E_IO;
        }
        p += k;
        n -= (size_t)k;
    }
    return BMS_EMU_SPI_OK;
}

static int recv_all(conn_t *c, uint8_t *p, size_t n, uint64_t deadline_ms) {
    while (n) {
        int r = wait_fd(c->fd, POLLIN, deadline_ms);
        if (r) return r;
        ssize_t k = recv(c->fd, p, n, 0);
        if (k == 0) return BMS_EMU_SPI_E_IO; /* server closed */
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return BMS_EMU_SPI_E_IO;
        }
        p += k;
        n -= (size_t)k;
    }
    return BMS_EMU_SPI_OK;
}

/* One request/reply. On success the reply payload is in c->buf + HDR_LEN, its length in *len. */
static int request(conn_t *c, uint8_t type, const uint8_t *payload, size_t n, size_t *len) {
    if (n > BMS_EMU_SPI_MAX_PAYLOAD) return BMS_EMU_SPI_E_ARG;
    uint64_t deadline = now_ms() + c->timeout_ms;
    uint32_t seq = ++c->seq;
    uint8_t *b = c->buf;
    b[0] = 'B'; b[1] = 'E'; b[2] = 1; b[3] = type;
    put_u32(b + 4, seq);
    put_u32(b + 8, (uint32_t)n);
    if (n) memcpy(b + HDR_LEN, payload, n);
    int r = send_all(c, b, HDR_LEN + n, deadline);
    if (r) return r;
    r = recv_all(c, b, HDR_LEN, deadline);
    if (r) return r;
    uint32_t rlen = get_u32(b + 8);
    if (b[0] != 'B' || b[1] != 'E' || b[2] != 1 || rlen > BMS_EMU_SPI_MAX_PAYLOAD)
        return BMS_EMU_SPI_E_PROTO;
    uint8_t rtype = b[3];
    uint32_t rseq = get_u32(b + 4);
    r = recv_all(c, b + HDR_LEN, rlen, deadline);
    if (r) return r;
    if (rtype == T_ERROR) {
        c->last_error = rlen >= 2 ? (uint16_t)((b[HDR_LEN] << 8) | b[HDR_LEN + 1]) : 0xFFFFu;
        size_t m = rlen > 2 ? rlen - 2 : 0;
        if (m >= sizeof c->last_message) m = sizeof c->last_message - 1;
        memcpy(c->last_message, b + HDR_LEN + 2, m);
        c->last_message[m] = '\0';
        return c->last_error == SIL_E_MODE ? BMS_EMU_SPI_E_MODE : BMS_EMU_SPI_E_SERVER;
    }
    if (rtype != (type | T_REPLY) || rseq != seq) return BMS_EMU_SPI_E_PROTO;
    *len = rlen;
    return BMS_EMU_SPI_OK;
}

int bms_emu_spi_open(const char *host, uint16_t port) {
    init_table();
    if (!host) return BMS_EMU_SPI_E_ARG;
    int h = -1;
    for (int i = 0; i < BMS_EMU_SPI_MAX_HANDLES; i++) {
        if (conns[i].fd < 0) { h = i; break; }
    }
    if (h < 0) return BMS_EMU_SPI_E_HANDLES;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res) return BMS_EMU_SPI_E_CONNECT;
    int fd = -1;
    uint64_t deadline = now_ms() + BMS_EMU_SPI_DEFAULT_TIMEOUT_MS;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        /* Non-blocking connect so the connect wait has the same deadline as everything else. */
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != BMS_EMU_SPI_OK ||
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return BMS_EMU_SPI_E_CONNECT;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* one window = one packet */
    conn_t *c = &conns[h];
    c->fd = fd;
    c->seq = 0;
    c->timeout_ms = BMS_EMU_SPI_DEFAULT_TIMEOUT_MS;
    c->last_error = 0;
    c->last_message[0] = '\0';
    return h;
}

int bms_emu_spi_transfer(int h, const uint8_t *tx, uint8_t *rx, size_t n) {
    conn_t *c = get(h);
    if (!c || !tx || !rx || n == 0 || n > BMS_EMU_SPI_MAX_PAYLOAD) return BMS_EMU_SPI_E_ARG;
    size_t len = 0;
    int r = request(c, T_TRANSFER, tx, n, &len);
    if (r) return r;
    if (len != n) return BMS_EMU_SPI_E_PROTO;
    memcpy(rx, c->buf + HDR_LEN, n);
    return BMS_EMU_SPI_OK;
}

int bms_emu_spi_advance_us(int h, uint64_t us) {
    conn_t *c = get(h);
    if (!c) return BMS_EMU_SPI_E_ARG;
    uint8_t p[8];
    put_u32(p, (uint32_t)(us >> 32));
    put_u32(p + 4, (uint32_t)us);
    size_t len = 0;
    int r = request(c, T_ADVANCE, p, sizeof p, &len);
    if (r) return r;
    return len == 8 ? BMS_EMU_SPI_OK : BMS_EMU_SPI_E_PROTO;
}

int bms_emu_spi_wakeup(int h) {
    conn_t *c = get(h);
    if (!c) return BMS_EMU_SPI_E_ARG;
    size_t len = 0;
    return request(c, T_WAKEUP, NULL, 0, &len);
}

int bms_emu_spi_info(int h, bms_emu_spi_info_t *info) {
    conn_t *c = get(h);
    if (!c || !info) return BMS_EMU_SPI_E_ARG;
    size_t len = 0;
    int r = request(c, T_INFO, NULL, 0, &len);
    if (r) return r;
    if (len != 16) return BMS_EMU_SPI_E_PROTO;
    const uint8_t *p = c->buf + HDR_LEN;
    info->version = p[0];
    info->lockstep = p[1];
    info->n_devices = (uint16_t)((p[2] << 8) | p[3]);
    info->f_spi_hz = get_u32(p + 4);
    info->t_ns = get_u64(p + 8);
    return BMS_EMU_SPI_OK;
}

int bms_emu_spi_set_timeout_ms(int h, uint32_t ms) {
    conn_t *c = get(h);
    if (!c || ms == 0) return BMS_EMU_SPI_E_ARG;
    c->timeout_ms = ms;
    return BMS_EMU_SPI_OK;
}

int bms_emu_spi_last_error(int h, const char **message) {
    conn_t *c = get(h);
    if (!c) return BMS_EMU_SPI_E_ARG;
    if (message) *message = c->last_message;
    return c->last_error;
}

void bms_emu_spi_close(int h) {
    conn_t *c = get(h);
    if (!c) return;
    close(c->fd);
    c->fd = -1;
}
