// afe_digital_top: the AFE digital core: afe_spi_core (SPI target, command decoder, register
// file) + afe_datapath (C/S decimation, trim, lockstep, C-vs-S) + the conversion sequencer
// that joins them (golden model: one bms_emu.device.device.Device behind a DaisyChain for the
// protocol side, the cycle-mode chain sinc3 -> raw -> trim -> code for the results).
//
// The analog stays outside: modulator bits (c_bits / s_bits, one bit per channel per clock
// when mod_valid; C and S bits come from one modulator clock), the die-temperature code, the
// trim-memory write port (fuse/OTP load) and the analog monitors (ana_flags, STATC byte 4-5
// bit order) are ports; balancing (dcc), mute and refon go out.
//
// Conversions (the datapath restarts on every ADCV / ADSV; its sinc3 outputs 0 and 1 after a
// start are partial, so the first results of a job are not published):
//   ADCV RD=0  C results from the C_SETTLE-th on are loaded (single shot: one result);
//   ADCV RD=1  C results from N_AVG*S_SETTLE on, S results from S_SETTLE on: the first S
//              result published is compared with the 8 C results published before it (the
//              model's single shot: 8 C + 1 S result, CT += 8); CONT=1 keeps going;
//   ADSV       S results only (no compare; the C path stops, unlike the model's C job);
//   AC         every N_AVG-th published C result of a job loads the average of the last N_AVG
//              (c_average_codes: rint of the mean, half to even);
//   OW != 0    no C-vs-S flags (the model skips the compare during open-wire tests).
// Busy (polls): C single shot until its last result, continuous until the first; S single
// shot until its result (Device.busy).
//
// Flags into STATC (the model's comparable faults, bms_emu.device.device._sample_monitors):
//   datapath mismatch (per compare)   -> csflt_set (CSxFLT), through the result-load port
//   ecc_corr_flt (trim SECDED single) -> CED, SED  (model monitor trim_ecc_corrected)
//   ecc_unc_flt  (trim SECDED double) -> CMED, SMED (trim_ecc_uncorrectable)
//   dup_flt | par_flt (C lockstep, result parity) -> COMP (comparison logic fault: survives
//                                        CLRFLAG, like the model's comp_logic; held here until
//                                        reset)
// The datapath flags are sticky and reach mon_flags, which the register file latches on C
// results and STATC/STATD reads; a CLRFLAG with any of CED/SED/CMED/SMED clears the
// datapath's sticky flags (an error still in the trim memory is flagged again a clock later;
// COMP stays, from comp_q).
//
// Left out: the IIR (FC results) and the EIS lock-in: the SPI subset (cmd_table) has no
// command that reads them, so they would be unobservable here.
//
// Channels: N_CH <= 16 measured channels (cells 1..N_CH); the register file always holds 16,
// cells N_CH+1..16 read PAD_CODE (0x8000, the "cleared" code) and never set CSxFLT.
// Clock / reset: rising edge of clk; rst_n synchronous, active low (power-on state).
module afe_digital_top #(
    parameter int          N_CH          = 16,
    parameter int          R_C           = 1024,
    parameter logic [47:0] SID           = 48'h0,
    parameter logic [3:0]  REV           = 4'h0,
    parameter bit          DUP_C         = 1'b1,
    parameter bit          RES_PAR       = 1'b1,
    localparam int N_AVG = 8,                    // C results per S result (Device c_per_s)
    localparam int C_SETTLE = 2,                 // partial sinc3 outputs after a start
    localparam int S_SETTLE = 2,
    localparam int CB = 16,
    localparam int SW = CB + $clog2(N_AVG)
) (
    input  logic              clk,
    input  logic              rst_n,
    // SPI
    input  logic              csb,
    input  logic              sck,
    input  logic              mosi,
    output logic              miso,
    // analog side
    input  logic              mod_valid,
    input  logic [N_CH-1:0]   c_bits,
    input  logic [N_CH-1:0]   s_bits,
    input  logic signed [15:0] die_temp,
    input  logic              trim_wr_en,
    input  logic [3:0]        trim_wr_addr,
    input  logic [21:0]       trim_wr_data,
    input  logic [15:0]       ana_flags,
    output logic [15:0]       dcc,
    output logic              mute,
    output logic              refon,
    // observation
    output logic              c_busy,
    output logic              s_busy,
    output logic [5:0]        cc
);
    localparam logic [CB-1:0] PAD_CODE = 16'h8000;
    localparam int CNT_MAX = N_AVG * S_SETTLE;   // C results to skip with RD=1
    localparam int CW = $clog2(CNT_MAX + 1);
`ifndef __ICARUS__
    if (N_CH < 1 || N_CH > 16) begin : g_bad_nch
        $error("afe_digital_top: N_CH = %0d must be 1..16 (the register map has 16 cells)", N_CH);
    end
`endif

    // ---- SPI core ----
    logic         adcv_start, adsv_start, conv_rd, conv_cont, conv_dcp, conv_rstf;
    logic [1:0]   conv_ow;
    logic         c_load, ac_load, s_load, comp_set;
    logic [255:0] c_codes16, ac_codes16, s_codes16;
    logic [15:0]  csflt_set, mon_flags;
    logic [2:0]   cth, fc;
    logic         clrflag;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [47:0]  clrflag_data;                  // bits 32-35 used: the trim-ECC flags
    logic [47:0]  cfga, cfgb;                    // whole groups: the fields used come apart
    logic [15:0]  csflt;
    /* verilator lint_on UNUSEDSIGNAL */

    afe_spi_core #(.SID(SID), .REV(REV)) u_spi (
        .clk, .rst_n, .csb, .sck, .mosi, .miso,
        .adcv_start, .adsv_start, .conv_rd, .conv_cont, .conv_dcp, .conv_rstf, .conv_ow,
        .c_busy, .s_busy,
        .c_load, .c_codes(c_codes16), .ac_load, .ac_codes(ac_codes16), .s_load,
        .s_codes(s_codes16), .csflt_set, .comp_set, .mon_flags,
        .cfga, .cfgb, .cth, .fc, .refon, .dcc, .mute, .csflt, .clrflag, .clrflag_data, .cc
    );

    // ---- datapath ----
    logic                 c_run_q, s_run_q, rd_q, cont_q;
    logic                 dp_start, dp_clr;
    logic [N_CH*CB-1:0]   dp_c, dp_s;
    logic [N_CH-1:0]      mismatch;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [N_CH-1:0]      dp_csflt;              // the sticky copy: CSxFLT lives in afe_regfile
    /* verilator lint_on UNUSEDSIGNAL */
    logic                 ecc_corr_flt, ecc_unc_flt, dup_flt, par_flt;
    logic                 c_strobe, s_strobe, cmp_strobe;

    assign dp_start = adcv_start || adsv_start;
    // CLRFLAG of any trim-ECC flag (STATC bits 32-35: SMED SED CMED CED)
    assign dp_clr = clrflag && |clrflag_data[35:32];

    afe_datapath #(.N_CH(N_CH), .R_C(R_C), .N_AVG(N_AVG), .DUP_C(DUP_C), .RES_PAR(RES_PAR)) u_dp (
        .clk, .rst_n, .trim_wr_en, .trim_wr_addr, .trim_wr_data, .start(dp_start),
        .c_bit_valid(mod_valid && c_run_q), .c_bits,
        .s_bit_valid(mod_valid && s_run_q), .s_bits,
        .die_temp, .cth, .clr(dp_clr),
        .c_codes(dp_c), .s_codes(dp_s), .csflt(dp_csflt), .ecc_corr_flt, .ecc_unc_flt,
        .dup_flt, .par_flt, .c_strobe, .s_strobe, .cmp_strobe, .mismatch
    );

    // ---- sequencer ----
    // c_new / s_new: the datapath's result registers show a new result (strobe + 1);
    // s_pub: one clock later, when the compare of that S result (if any) is in mismatch
    logic          c_new_q, s_new_q, s_pub_q, cmp_done_q, c_any_q, s_any_q;
    logic [CW-1:0] c_seen_q;                     // C results since start, saturating
    logic [1:0]    s_seen_q;                     // S results since start, saturating
    logic [2:0]    blk_q;                        // published C results in this AC block
    logic          c_pub, s_pub, c_ok, s_ok;
    logic [N_CH*SW-1:0] acc_q, acc_nxt;

    assign c_ok  = c_seen_q >= (rd_q ? CW'(CNT_MAX) : CW'(C_SETTLE));
    assign s_ok  = s_seen_q >= 2'(S_SETTLE);
    assign c_pub = c_new_q && c_run_q && c_ok;
    assign s_pub = s_pub_q;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            c_run_q <= 1'b0;
            s_run_q <= 1'b0;
            rd_q <= 1'b0;
            cont_q <= 1'b0;
            c_new_q <= 1'b0;
            s_new_q <= 1'b0;
            s_pub_q <= 1'b0;
            cmp_done_q <= 1'b0;
            c_seen_q <= '0;
            s_seen_q <= '0;
            blk_q <= '0;
            c_any_q <= 1'b0;
            s_any_q <= 1'b0;
            acc_q <= '0;
        end else if (dp_start) begin
            c_run_q <= adcv_start;
            s_run_q <= adsv_start || conv_rd;
            rd_q <= adcv_start && conv_rd;
            cont_q <= conv_cont;
            c_new_q <= 1'b0;
            s_new_q <= 1'b0;
            s_pub_q <= 1'b0;
            cmp_done_q <= 1'b0;
            c_seen_q <= '0;
            s_seen_q <= '0;
            blk_q <= '0;
            c_any_q <= 1'b0;
            s_any_q <= 1'b0;
            acc_q <= '0;
        end else begin
            c_new_q <= c_strobe;
            s_new_q <= s_strobe;
            cmp_done_q <= cmp_strobe;
            s_pub_q <= s_new_q && s_run_q && s_ok;
            if (c_new_q && c_seen_q != CW'(CNT_MAX)) c_seen_q <= c_seen_q + 1'b1;
            if (s_new_q && !s_ok) s_seen_q <= s_seen_q + 1'b1;
            if (c_pub) begin
                blk_q <= blk_q + 1'b1;           // N_AVG = 8: wraps after the 8th
                acc_q <= acc_nxt;
                c_any_q <= 1'b1;
                // single shot: one result (RD=0) or the N_AVG compared with the S result
                if (!cont_q && (!rd_q || blk_q == 3'(N_AVG - 1))) c_run_q <= 1'b0;
            end
            if (s_pub) begin
                s_any_q <= 1'b1;
                if (!cont_q) s_run_q <= 1'b0;
            end
        end
    end

    // AC: sum of the block's published C results, rint(sum / 8) half to even (cs_compare)
    logic [N_CH*CB-1:0] ac_n;
    for (genvar i = 0; i < N_CH; i++) begin : g_ac
        logic signed [SW-1:0] sum;
        logic signed [CB-1:0] q;
        logic                 up;
        always_comb begin
            sum = (blk_q == 3'd0 ? SW'(0) : $signed(acc_q[i*SW +: SW]))
                + SW'($signed(dp_c[i*CB +: CB]));
            acc_nxt[i*SW +: SW] = sum;
            q = sum[SW-1:3];
            up = (sum[2:0] > 3'd4) || (sum[2:0] == 3'd4 && q[0]);
            ac_n[i*CB +: CB] = q + CB'(up);
        end
    end

    // register-file side: 16 channels, the unused ones padded
    if (N_CH < 16) begin : g_pad
        assign c_codes16  = {{(16 - N_CH){PAD_CODE}}, dp_c};
        assign ac_codes16 = {{(16 - N_CH){PAD_CODE}}, ac_n};
        assign s_codes16  = {{(16 - N_CH){PAD_CODE}}, dp_s};
    end else begin : g_full
        assign c_codes16  = dp_c;
        assign ac_codes16 = ac_n;
        assign s_codes16  = dp_s;
    end

    assign c_load     = c_pub;
    assign ac_load    = c_pub && blk_q == 3'(N_AVG - 1);
    assign s_load     = s_pub;
    assign csflt_set  = (s_pub && cmp_done_q && conv_ow == 2'd0) ? 16'(mismatch) : '0;
    assign comp_set   = 1'b0;                    // COMP comes through mon_flags (comp_q)
    assign c_busy     = c_run_q && (!cont_q || !c_any_q);
    assign s_busy     = s_run_q && (!cont_q || !s_any_q);

    // ---- flags ----
    logic comp_q;                                // lockstep / parity fault seen since reset
    always_ff @(posedge clk) begin
        if (!rst_n) comp_q <= 1'b0;
        else        comp_q <= comp_q | dup_flt | par_flt;
    end
    // STATC byte 4-5 order: 0 SMED, 1 SED, 2 CMED, 3 CED, ..., 13 COMP (afe_regfile)
    assign mon_flags = ana_flags | {2'b00, comp_q, 9'b0, ecc_corr_flt, ecc_unc_flt,
                                    ecc_corr_flt, ecc_unc_flt};

    /* verilator lint_off UNUSEDSIGNAL */
    logic unused_ok;                             // options the RTL datapath does not use
    /* verilator lint_on UNUSEDSIGNAL */
    assign unused_ok = ^{conv_dcp, conv_rstf, fc};
endmodule
