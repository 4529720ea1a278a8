/*
 * bms_emu_spi: C client of the bms-emu SIL TCP protocol (docs/sil-protocol.md).
 *
 * Link a host build of an AFE driver against this file and point its SPI "transfer one
 * chip-select window" hook at bms_emu_spi_transfer(). POSIX sockets, no other dependency.
 * Not thread safe per handle: use one handle per thread.
 *
 * Every call that waits has a deadline: connect, send and each reply are bounded by the
 * handle's timeout (default BMS_EMU_SPI_DEFAULT_TIMEOUT_MS, see bms_emu_spi_set_timeout_ms).
 *
 * Return values: >= 0 success (a handle for _open), otherwise one of the BMS_EMU_SPI_E_* codes.
 */
#ifndef BMS_EMU_SPI_H
#define BMS_EMU_SPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BMS_EMU_SPI_OK 0
#define BMS_EMU_SPI_E_ARG (-1)      /* bad argument or handle, n == 0 or n > MAX_PAYLOAD */
#define BMS_EMU_SPI_E_CONNECT (-2)  /* name resolution or TCP connect failed */
#define BMS_EMU_SPI_E_TIMEOUT (-3)  /* no (complete) reply within the timeout */
#define BMS_EMU_SPI_E_IO (-4)       /* socket error or server closed the connection */
#define BMS_EMU_SPI_E_PROTO (-5)    /* reply malformed or not answering the request */
#define BMS_EMU_SPI_E_SERVER (-6)   /* server sent an ERROR frame: see bms_emu_spi_last_error */
#define BMS_EMU_SPI_E_MODE (-7)     /* ADVANCE_TIME refused: the server runs in wall pace */
#define BMS_EMU_SPI_E_HANDLES (-8)  /* all BMS_EMU_SPI_MAX_HANDLES handles in use */

#define BMS_EMU_SPI_MAX_HANDLES 16
#define BMS_EMU_SPI_MAX_PAYLOAD 8192u
#define BMS_EMU_SPI_DEFAULT_TIMEOUT_MS 5000u

/* INFO reply. */
typedef struct {
    uint8_t version;    /* protocol version (1) */
    uint8_t lockstep;   /* 1: lock-step pace, 0: wall-clock pace */
    uint16_t n_devices; /* devices on the daisy chain */
    uint32_t f_spi_hz;  /* SPI bit rate used for window durations */
    uint64_t t_ns;      /* emulated time */
} bms_emu_spi_info_t;

/* Connect to a server (host name or address, TCP port). Returns a handle >= 0 or an error. */
int bms_emu_spi_open(const char *host, uint16_t port);

/* One chip-select window: clock out tx[0..n-1], receive rx[0..n-1] (full duplex). */
int bms_emu_spi_transfer(int h, const uint8_t *tx, uint8_t *rx, size_t n);

/* Lock-step pace: let `us` microseconds of emulated time pass. BMS_EMU_SPI_E_MODE in wall
 * pace (sleep instead). */
int bms_emu_spi_advance_us(int h, uint64_t us);

/* Ask the server to wake the chain (one dummy byte per device, t_WAKE apart). */
int bms_emu_spi_wakeup(int h);

/* Server information (chain length, pace, emulated time). */
int bms_emu_spi_info(int h, bms_emu_spi_info_t *info);

/* Deadline for every later call on this handle, in ms (> 0). */
int bms_emu_spi_set_timeout_ms(int h, uint32_t ms);

/* Last ERROR frame from the server: its SIL error code (0 if none) and message (NUL-terminated,
 * may be NULL). Valid until the next call on the handle. */
int bms_emu_spi_last_error(int h, const char **message);

/* Close the connection; the handle becomes free. Unknown handles are ignored. */
void bms_emu_spi_close(int h);

#ifdef __cplusplus
}
#endif

#endif /* BMS_EMU_SPI_H */
