// afe_datapath: the cell-measurement datapath of the chip, N_CH channels (golden model: the
// chain of cell_adc_path per path, bms_emu.afe.trim.read_trim_image for the trim memory,
// bms_emu.device.device.c_average_codes / cs_mismatch_mask for the C-vs-S comparison).
//
// Per channel i:
//   C path   c_bits[i] -> cell_adc_path (R_C, C trim codes) -> result register c_codes[i]
//   C shadow the same path a second time on the same bits (lockstep); any difference in
//            res_valid or code sets the sticky dup_flt (covers the decimator and trim flops)
//   S path   s_bits[i] -> cell_adc_path (R_S = N_AVG R_C, S trim codes) -> s_codes[i]
//   C ring   the last N_AVG C results; their sum feeds cs_compare with the S result
// Shared: trim_store (10 SECDED words, C and S trim codes), cs_compare (CTH, sticky CSxFLT),
// a parity bit per result register (par_flt, sticky), sticky ECC flags.
//
// Why the shadow path and the parities: the fault-injection campaign
// (tests/rtl/fault_campaign.py, DUP_C = RES_PAR = 0) found upsets and stuck-at faults in the
// C decimator, trim-stage and result flops that change reported C codes by more than 1 mV
// but move the average of N_AVG results by less than the CTH threshold: with C-vs-S and ECC
// alone SPFM was 87 % (1.0 residual FIT at 16 channels). The lockstep closes the decimator
// and trim-stage gap, the parity the result registers: SPFM 100 % on the same campaign.
//
// Sequencing: start restarts both paths (decimator phase, filter state), the ring and the
// counters, as a conversion start. One modulator bit per clock per path (c_bit_valid,
// s_bit_valid). The S result of a period is compared with the C ring one clock after it is
// registered, when the ring is full (N_AVG C results since start, the model's rule) and at
// least S_SETTLE S results came before it (sinc3 outputs 0 and 1 after a start are partial).
// With aligned bits the S result and every N_AVG-th C result land in the same clock; that C
// result is in the ring the S result is compared with (the model's event order).
//
// Outputs: c_codes / s_codes signed 16 (V = 1.5 V + code 150 uV), channel i at [i*16 +: 16],
// loaded 3 clocks after the last bit of a period; csflt as cs_compare; ecc_corr_flt,
// ecc_unc_flt, dup_flt, par_flt sticky until clr (or rst_n). Strobes for a top level that
// copies results: c_strobe / s_strobe are high in the clock at whose end c_codes / s_codes take
// a new result, cmp_strobe in the clock at whose end mismatch (the bits of this one compare,
// not sticky) takes a new value (combinational: no extra flops for the fault campaign).
// Clock / reset: rising edge of clk; rst_n synchronous, active low.
module afe_datapath #(
    parameter int N_CH          = 16,
    parameter int R_C           = 1024,
    parameter int N_AVG         = 8,
    parameter int RAW_PER_U     = 960000,
    parameter int RAW_BITS      = 24,
    parameter int GAIN_FRAC     = 19,
    parameter int TEMPCO_FRAC   = 24,
    parameter int DT_FRAC       = 4,
    parameter int DIE_TEMP_BITS = 16,
    parameter int OFFSET_FRAC   = 2,
    parameter int T_REF_CODE    = 400,
    parameter int RAW_CODE_ZERO = 160000,
    parameter int CODE_FRAC     = 4,
    parameter bit DUP_C         = 1'b1,          // shadow C path (lockstep compare)
    parameter bit RES_PAR       = 1'b1,          // parity on the result registers
    localparam int CB = 16,                      // cell code and trim code width
    localparam int R_S = R_C * N_AVG,
    localparam int AW = $clog2(N_AVG),
    localparam int SW = CB + AW,                 // sum of N_AVG codes
    localparam int S_SETTLE = 2
) (
    input  logic                            clk,
    input  logic                            rst_n,
    input  logic                            trim_wr_en,
    input  logic [3:0]                      trim_wr_addr,
    input  logic [21:0]                     trim_wr_data,
    input  logic                            start,
    input  logic                            c_bit_valid,
    input  logic [N_CH-1:0]                 c_bits,
    input  logic                            s_bit_valid,
    input  logic [N_CH-1:0]                 s_bits,
    input  logic signed [DIE_TEMP_BITS-1:0] die_temp,
    input  logic [2:0]                      cth,
    input  logic                            clr,
    output logic [N_CH*CB-1:0]              c_codes,
    output logic [N_CH*CB-1:0]              s_codes,
    output logic [N_CH-1:0]                 csflt,
    output logic                            ecc_corr_flt,
    output logic                            ecc_unc_flt,
    output logic                            dup_flt,
    output logic                            par_flt,
    output logic                            c_strobe,
    output logic                            s_strobe,
    output logic                            cmp_strobe,
    output logic [N_CH-1:0]                 mismatch
);
    logic signed [CB-1:0] c_gain, c_tempco, c_offset, c_board;
    logic signed [CB-1:0] s_gain, s_tempco, s_offset, s_board;
    logic                 ecc_corr, ecc_unc;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [CB-1:0]        c_header, s_header;    // scheme / board_valid: not used by the path
    /* verilator lint_on UNUSEDSIGNAL */

    trim_store u_trim (
        .clk, .rst_n, .wr_en(trim_wr_en), .wr_addr(trim_wr_addr), .wr_data(trim_wr_data),
        .c_gain, .c_tempco, .c_offset, .c_board, .s_gain, .s_tempco, .s_offset, .s_board,
        .c_header, .s_header, .corrected(ecc_corr), .uncorrectable(ecc_unc)
    );

    logic path_rst_n;
    assign path_rst_n = rst_n && !start;

    logic [N_CH-1:0]    c_new, s_new, dup_bad, par_bad;
    logic [N_CH*CB-1:0] c_res_q, s_res_q;
    logic [N_CH*SW-1:0] c_sums;

    for (genvar i = 0; i < N_CH; i++) begin : g_ch
        logic signed [CB-1:0] c_code, c_code_d, s_code;
        logic                 c_valid_d;
        /* verilator lint_off UNUSEDSIGNAL */
        logic signed [RAW_BITS-1:0] c_raw, c_corr, c_raw_d, c_corr_d, s_raw, s_corr;
        /* verilator lint_on UNUSEDSIGNAL */
        logic [N_AVG*CB-1:0]  ring_q;            // newest C result at [0 +: CB]

        cell_adc_path #(
            .R(R_C), .RAW_PER_U(RAW_PER_U), .RAW_BITS(RAW_BITS), .CODE_BITS(CB),
            .GAIN_FRAC(GAIN_FRAC), .TEMPCO_FRAC(TEMPCO_FRAC), .DT_FRAC(DT_FRAC),
            .DIE_TEMP_BITS(DIE_TEMP_BITS), .OFFSET_FRAC(OFFSET_FRAC), .T_REF_CODE(T_REF_CODE),
            .TRIM_BITS(CB), .RAW_CODE_ZERO(RAW_CODE_ZERO), .CODE_FRAC(CODE_FRAC)
        ) u_c (
            .clk, .rst_n(path_rst_n), .bit_valid(c_bit_valid), .bit_in(c_bits[i]),
            .gain(c_gain), .board(c_board), .tempco(c_tempco), .offset(c_offset), .die_temp,
            .res_valid(c_new[i]), .raw(c_raw), .corrected(c_corr), .code(c_code)
        );

        if (DUP_C) begin : g_dup
            cell_adc_path #(
                .R(R_C), .RAW_PER_U(RAW_PER_U), .RAW_BITS(RAW_BITS), .CODE_BITS(CB),
                .GAIN_FRAC(GAIN_FRAC), .TEMPCO_FRAC(TEMPCO_FRAC), .DT_FRAC(DT_FRAC),
                .DIE_TEMP_BITS(DIE_TEMP_BITS), .OFFSET_FRAC(OFFSET_FRAC),
                .T_REF_CODE(T_REF_CODE), .TRIM_BITS(CB), .RAW_CODE_ZERO(RAW_CODE_ZERO),
                .CODE_FRAC(CODE_FRAC)
            ) u_c_dup (
                .clk, .rst_n(path_rst_n), .bit_valid(c_bit_valid), .bit_in(c_bits[i]),
                .gain(c_gain), .board(c_board), .tempco(c_tempco), .offset(c_offset), .die_temp,
                .res_valid(c_valid_d), .raw(c_raw_d), .corrected(c_corr_d), .code(c_code_d)
            );
        end else begin : g_no_dup
            assign c_valid_d = c_new[i];
            assign c_code_d = c_code;
            assign c_raw_d = c_raw;
            assign c_corr_d = c_corr;
        end

        cell_adc_path #(
            .R(R_S), .RAW_PER_U(RAW_PER_U), .RAW_BITS(RAW_BITS), .CODE_BITS(CB),
            .GAIN_FRAC(GAIN_FRAC), .TEMPCO_FRAC(TEMPCO_FRAC), .DT_FRAC(DT_FRAC),
            .DIE_TEMP_BITS(DIE_TEMP_BITS), .OFFSET_FRAC(OFFSET_FRAC), .T_REF_CODE(T_REF_CODE),
            .TRIM_BITS(CB), .RAW_CODE_ZERO(RAW_CODE_ZERO), .CODE_FRAC(CODE_FRAC)
        ) u_s (
            .clk, .rst_n(path_rst_n), .bit_valid(s_bit_valid), .bit_in(s_bits[i]),
            .gain(s_gain), .board(s_board), .tempco(s_tempco), .offset(s_offset), .die_temp,
            .res_valid(s_new[i]), .raw(s_raw), .corrected(s_corr), .code(s_code)
        );

        always_ff @(posedge clk) begin
            if (!path_rst_n) begin
                c_res_q[i*CB +: CB] <= '0;
                s_res_q[i*CB +: CB] <= '0;
                ring_q <= '0;
            end else begin
                if (c_new[i]) begin
                    c_res_q[i*CB +: CB] <= c_code;
                    ring_q <= {ring_q[0 +: (N_AVG - 1) * CB], c_code};
                end
                if (s_new[i]) s_res_q[i*CB +: CB] <= s_code;
            end
        end

        if (RES_PAR) begin : g_par
            logic c_par_q, s_par_q;              // even parity of c_res / s_res
            always_ff @(posedge clk) begin
                if (!path_rst_n) begin
                    c_par_q <= 1'b0;
                    s_par_q <= 1'b0;
                end else begin
                    if (c_new[i]) c_par_q <= ^c_code;
                    if (s_new[i]) s_par_q <= ^s_code;
                end
            end
            assign par_bad[i] = (^c_res_q[i*CB +: CB] != c_par_q)
                             || (^s_res_q[i*CB +: CB] != s_par_q);
        end else begin : g_no_par
            assign par_bad[i] = 1'b0;
        end

        always_comb begin
            logic signed [SW-1:0] sum;
            sum = '0;
            for (int k = 0; k < N_AVG; k++) sum = sum + SW'($signed(ring_q[k*CB +: CB]));
            c_sums[i*SW +: SW] = sum;
            dup_bad[i] = (c_new[i] != c_valid_d) || (c_new[i] && c_code != c_code_d);
        end
    end

    // sequencer: C results since start (saturating at N_AVG), S results since start
    // (saturating at S_SETTLE), compare strobe one clock after a settled S result
    logic [AW:0]                  c_cnt_q;
    logic [$clog2(S_SETTLE+1)-1:0] s_cnt_q;
    logic                         cmp_q;
    logic                         ring_full, s_settled;
    always_comb begin
        ring_full = c_cnt_q == (AW + 1)'(N_AVG)
                 || (c_new[0] && c_cnt_q == (AW + 1)'(N_AVG - 1));
        s_settled = s_cnt_q == ($clog2(S_SETTLE + 1))'(S_SETTLE);
    end
    always_ff @(posedge clk) begin
        if (!path_rst_n) begin
            c_cnt_q <= '0;
            s_cnt_q <= '0;
            cmp_q <= 1'b0;
        end else begin
            if (c_new[0] && c_cnt_q != (AW + 1)'(N_AVG)) c_cnt_q <= c_cnt_q + 1'b1;
            if (s_new[0] && !s_settled) s_cnt_q <= s_cnt_q + 1'b1;
            cmp_q <= s_new[0] && ring_full && s_settled;
        end
    end

    cs_compare #(.N_CH(N_CH), .CODE_BITS(CB), .N_AVG(N_AVG)) u_cs (
        .clk, .rst_n, .cmp_valid(cmp_q), .clr, .cth, .s_codes(s_res_q), .c_sums,
        .mismatch, .csflt
    );

    // sticky alarm flags (the chip's STAT bits): set by the monitors, cleared by CLRFLAG
    always_ff @(posedge clk) begin
        if (!rst_n || clr) begin
            ecc_corr_flt <= 1'b0;
            ecc_unc_flt <= 1'b0;
            dup_flt <= 1'b0;
            par_flt <= 1'b0;
        end else begin
            ecc_corr_flt <= ecc_corr_flt | ecc_corr;
            ecc_unc_flt <= ecc_unc_flt | ecc_unc;
            dup_flt <= dup_flt | (|dup_bad);
            par_flt <= par_flt | (|par_bad);
        end
    end

    assign c_codes = c_res_q;
    assign s_codes = s_res_q;
    assign c_strobe = c_new[0];
    assign s_strobe = s_new[0];
    assign cmp_strobe = cmp_q;
endmodule
