/*
 * example_read_cells: a minimal host-side AFE driver on top of bms_emu_spi.
 *
 * Wakes the chain, resets the command counters (RSTCC), writes CFGA with REFON, starts one
 * C-ADC conversion (ADCV), waits, reads RDCVA..RDCVF from every device, checks PEC15 (its
 * own command frames), PEC10 and the command counter of every reply, and prints one line per
 * cell:  "cell DEV CH VOLTS"  (DEV 0 = nearest the host, CH 1..16), then "ok".
 *
 * The PECs are implemented here bit by bit from their generator polynomials, independently of
 * the emulator's table-driven Python code, so the two check each other.
 *
 * usage: example_read_cells HOST PORT        exit status 0 on success, 1 on any error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bms_emu_spi.h"

#define MAX_DEVICES 64
#define GROUP_BYTES 6
#define BLOCK_BYTES (GROUP_BYTES + 2)
#define T_WAKE_US 500u
#define T_REFUP_US 5000u
#define T_CONV_US 2000u

/* x^15 + x^14 + x^10 + x^8 + x^7 + x^4 + x^3 + 1, x^15 implied; seed 0x0010; sent << 1. */
static uint16_t pec15(const uint8_t *data, size_t n) {
    uint16_t crc = 0x0010;
    for (size_t i = 0; i < n; i++) {
        for (int b = 7; b >= 0; b--) {
            unsigned in = ((data[i] >> b) & 1u) ^ ((crc >> 14) & 1u);
            crc = (uint16_t)((crc << 1) & 0x7FFF);
            if (in) crc ^= 0x4599;
        }
    }
    return (uint16_t)(crc << 1);
}

/* x^10 + x^7 + x^3 + x^2 + x + 1; seed 0x0010; data bits then the 6 counter bits, MSB first. */
static uint16_t pec10(const uint8_t *data, size_t n, unsigned cc) {
    uint16_t crc = 0x0010;
    for (size_t i = 0; i < n + 1; i++) {
        unsigned byte = i < n ? data[i] : (cc & 0x3Fu) << 2; /* counter: top 6 bits of a byte */
        int last = i < n ? 0 : 2;
        for (int b = 7; b >= last; b--) {
            unsigned in = ((byte >> b) & 1u) ^ ((crc >> 9) & 1u);
            crc = (uint16_t)((crc << 1) & 0x3FF);
            if (in) crc ^= 0x08F;
        }
    }
    return crc;
}

static int h = -1;
static int lockstep;

static void die(const char *what, int r) {
    const char *msg = "";
    if (h >= 0 && r == BMS_EMU_SPI_E_SERVER) bms_emu_spi_last_error(h, &msg);
    fprintf(stderr, "example_read_cells: %s failed (%d) %s\n", what, r, msg);
    if (h >= 0) bms_emu_spi_close(h);
    exit(1);
}

static void wait_us(uint32_t us) {
    if (lockstep) {
        int r = bms_emu_spi_advance_us(h, us);
        if (r) die("advance", r);
    } else {
        struct timespec ts = {0, (long)us * 1000L};
        nanosleep(&ts, NULL);
    }
}

static void put_cmd(uint8_t *frame, uint16_t opcode) {
    frame[0] = (uint8_t)(opcode >> 8);
    frame[1] = (uint8_t)opcode;
    uint16_t p = pec15(frame, 2);
    frame[2] = (uint8_t)(p >> 8);
    frame[3] = (uint8_t)p;
}

static void command(uint16_t opcode) {
    uint8_t tx[4], rx[4];
    put_cmd(tx, opcode);
    int r = bms_emu_spi_transfer(h, tx, rx, sizeof tx);
    if (r) die("command", r);
}

int main(int argc, char **argv) {
    static const uint8_t cmd_wrcfga[2] = {0x00, 0x01};
    static const uint16_t rdcv[6] = {0x004, 0x006, 0x008, 0x00A, 0x009, 0x00B}; /* A..F */
    uint8_t tx[4 + MAX_DEVICES * BLOCK_BYTES], rx[sizeof tx];
    double volts[MAX_DEVICES][18];

    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        return 1;
    }
    /* Self-check of the PEC15 against the published examples (REFERENCE.md 2.1). */
    if (pec15(cmd_wrcfga, 2) != 0x3D6E || pec15((const uint8_t *)"\x03\x60", 2) != 0xF46C) {
        fprintf(stderr, "example_read_cells: PEC15 self-check failed\n");
        return 1;
    }
    h = bms_emu_spi_open(argv[1], (uint16_t)atoi(argv[2]));
    if (h < 0) die("open", h);
    bms_emu_spi_info_t info;
    int r = bms_emu_spi_info(h, &info);
    if (r) die("info", r);
    unsigned n = info.n_devices;
    if (n < 1 || n > MAX_DEVICES) die("chain length", BMS_EMU_SPI_E_PROTO);
    lockstep = info.lockstep;
    printf("devices %u pace %s\n", n, lockstep ? "lockstep" : "wall");

    /* Wake-up: one dummy byte per device, t_WAKE apart (each device passes it on when awake). */
    for (unsigned i = 0; i < n; i++) {
        tx[0] = 0xFF;
        r = bms_emu_spi_transfer(h, tx, rx, 1);
        if (r) die("wake-up", r);
        wait_us(T_WAKE_US);
    }
    command(0x02E); /* RSTCC: counters to 0 */
    unsigned cc = 0;

    /* WRCFGA, REFON = 1 for every device; blocks go farthest device first (all equal here). */
    put_cmd(tx, 0x001);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *blk = tx + 4 + i * BLOCK_BYTES;
        memset(blk, 0, GROUP_BYTES);
        blk[0] = 0x80; /* REFON */
        uint16_t p = pec10(blk, GROUP_BYTES, 0);
        blk[6] = (uint8_t)(p >> 8);
        blk[7] = (uint8_t)p;
    }
    r = bms_emu_spi_transfer(h, tx, rx, 4 + n * BLOCK_BYTES);
    if (r) die("WRCFGA", r);
    cc++;
    wait_us(T_REFUP_US);
    command(0x260); /* ADCV: single C-ADC conversion of all cells */
    cc++;
    wait_us(T_CONV_US);

    for (unsigned g = 0; g < 6; g++) {
        size_t len = 4 + n * BLOCK_BYTES;
        memset(tx, 0xFF, len);
        put_cmd(tx, rdcv[g]);
        r = bms_emu_spi_transfer(h, tx, rx, len);
        if (r) die("RDCV", r);
        for (unsigned d = 0; d < n; d++) { /* device 0 (nearest) answers first */
            const uint8_t *blk = rx + 4 + d * BLOCK_BYTES;
            unsigned got_cc = blk[6] >> 2;
            unsigned got_pec = ((blk[6] & 0x03u) << 8) | blk[7];
            if (pec10(blk, GROUP_BYTES, got_cc) != got_pec) {
                fprintf(stderr, "example_read_cells: PEC10 error, group %u device %u\n", g, d);
                bms_emu_spi_close(h);
                return 1;
            }
            if (got_cc != cc) {
                fprintf(stderr, "example_read_cells: device %u command counter %u, expected %u\n",
                        d, got_cc, cc);
                bms_emu_spi_close(h);
                return 1;
            }
            for (unsigned k = 0; k < 3; k++) {
                int16_t code = (int16_t)(uint16_t)(blk[2 * k] | (blk[2 * k + 1] << 8));
                volts[d][3 * g + k] = 1.5 + code * 150e-6;
            }
        }
    }
    for (unsigned d = 0; d < n; d++) {
        for (unsigned c = 0; c < 16; c++) printf("cell %u %u %.6f\n", d, c + 1, volts[d][c]);
    }
    printf("counter %u ok\n", cc);
    bms_emu_spi_close(h);
    return 0;
}
