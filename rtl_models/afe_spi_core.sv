// afe_spi_core: the SPI side of the AFE digital core: spi_target + cmd_decoder + afe_regfile
// (golden model: one bms_emu.device.device.Device behind bms_emu.device.chain.DaisyChain,
// restricted to the cmd_table subset; see rtl_models/README.md for what is left out).
//
// SPI pins: csb, sck, mosi in (asynchronous), miso out; mode 3, clk >= 8x SCK (spi_target).
//
// Datapath-facing ports (for afe_digital_top; all synchronous to clk):
//   conversion starts   adcv_start / adsv_start: one-clk pulses when ADCV / ADSV is accepted
//                       (at the end of its 4th command byte), with conv_rd, conv_cont,
//                       conv_dcp, conv_rstf (ADCV only), conv_ow[1:0] valid in the same cycle
//                       and held until the next ADCV / ADSV (0 after reset);
//   busy flags in       c_busy / s_busy: a C / S conversion job has no result yet (polls);
//   result loads in     c_load + c_codes, ac_load + ac_codes, s_load + s_codes + csflt_set +
//                       comp_set: 16 signed 16-bit codes, channel i at [16i +: 16], one pulse
//                       per conversion result (afe_regfile); mon_flags: live analog monitors in
//                       STATC byte 4-5 bit order;
//   configuration out   cfga / cfgb (the 6-byte groups as read), cth, fc, refon, dcc, mute, and
//                       the sticky csflt bits;
//   flag clears out     clrflag: one-clk pulse when a CLRFLAG write is applied, with
//                       clrflag_data (its 6 data bytes, CLRFLAG layout: CSxFLT bits 0-15, STATC
//                       byte 4-5 flags at 32-47), so sticky flags kept in the datapath can be
//                       cleared bit by bit like the register file's. Feed csflt_set with the
//                       per-compare mismatch mask, not with a sticky copy: re-ORing a sticky
//                       mask would undo a CLRFLAG.
//   observation         cc: the 6-bit command counter.
//
// Parameters: SID (48-bit serial ID read by RDSID), REV (STATE revision nibble).
// Clock / reset: rising edge of clk; rst_n synchronous, active low (power-on state).
module afe_spi_core #(
    parameter logic [47:0] SID = 48'h0,
    parameter logic [3:0]  REV = 4'h0
) (
    input  logic         clk,
    input  logic         rst_n,
    // SPI
    input  logic         csb,
    input  logic         sck,
    input  logic         mosi,
    output logic         miso,
    // conversion control
    output logic         adcv_start,
    output logic         adsv_start,
    output logic         conv_rd,
    output logic         conv_cont,
    output logic         conv_dcp,
    output logic         conv_rstf,
    output logic [1:0]   conv_ow,
    input  logic         c_busy,
    input  logic         s_busy,
    // result loads
    input  logic         c_load,
    input  logic [255:0] c_codes,
    input  logic         ac_load,
    input  logic [255:0] ac_codes,
    input  logic         s_load,
    input  logic [255:0] s_codes,
    input  logic [15:0]  csflt_set,
    input  logic         comp_set,
    input  logic [15:0]  mon_flags,
    // configuration
    output logic [47:0]  cfga,
    output logic [47:0]  cfgb,
    output logic [2:0]   cth,
    output logic [2:0]   fc,
    output logic         refon,
    output logic [15:0]  dcc,
    output logic         mute,
    output logic [15:0]  csflt,
    output logic         clrflag,
    output logic [47:0]  clrflag_data,
    output logic [5:0]   cc
);
    localparam logic [3:0] W_CLRFLAG = 4'd3;  // cmd_table write code
    logic         start, stop, partial, rx_valid, tx_load;
    logic [7:0]   rx_byte, tx_byte;
    logic         wr_en, act_en, rd_strobe;
    logic [3:0]   wr_code, act_code, rd_group;
    logic [4:0]   rd_offset;
    logic [47:0]  wr_data;
    logic [255:0] rd_data;

    assign clrflag      = wr_en && wr_code == W_CLRFLAG;
    assign clrflag_data = wr_data;

    spi_target u_spi (
        .clk, .rst_n, .csb, .sck, .mosi, .miso,
        .start, .stop, .partial, .rx_valid, .rx_byte, .tx_byte, .tx_load
    );

    cmd_decoder u_dec (
        .clk, .rst_n,
        .start, .stop, .partial, .rx_valid, .rx_byte, .tx_load, .tx_byte,
        .wr_en, .wr_code, .wr_data, .act_en, .act_code,
        .rd_group, .rd_offset, .rd_strobe, .rd_data,
        .adcv_start, .adsv_start, .conv_rd, .conv_cont, .conv_dcp, .conv_rstf, .conv_ow,
        .c_busy, .s_busy, .cc
    );

    afe_regfile #(.SID(SID), .REV(REV)) u_regs (
        .clk, .rst_n,
        .wr_en, .wr_code, .wr_data, .act_en, .act_code,
        .rd_group, .rd_offset, .rd_strobe, .rd_data,
        .c_load, .c_codes, .ac_load, .ac_codes, .s_load, .s_codes, .csflt_set, .comp_set,
        .mon_flags,
        .cfga, .cfgb, .cth, .fc, .refon, .dcc, .mute, .csflt
    );
endmodule
