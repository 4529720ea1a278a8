// afe_datapath_player: test harness of the fault campaign (not part of the design). It plays
// a stored modulator bit pattern into rtl_models/afe_datapath (instance u_dut) so the
// simulation runs without the testbench touching every clock: the campaign then wakes only
// to read results, flip a bit or read the flags.
//
// pat_c / pat_s: N_BITS clocks x N_CH channels, bit m of channel i at [m*N_CH + i]. A play
// pulse (given with start) makes the next N_BITS clocks present bits 0..N_BITS-1 with
// c_bit_valid = s_bit_valid = 1, exactly as datapath_workload.run drives them.
module afe_datapath_player #(
    parameter int N_CH    = 2,
    parameter int R_C     = 16,
    parameter int N_BITS  = 384,
    parameter bit DUP_C   = 1'b1,
    parameter bit RES_PAR = 1'b1
) (
    input  logic                     clk,
    input  logic                     rst_n,
    input  logic                     trim_wr_en,
    input  logic [3:0]               trim_wr_addr,
    input  logic [21:0]              trim_wr_data,
    input  logic                     start,
    input  logic                     play,
    input  logic signed [15:0]       die_temp,
    input  logic [2:0]               cth,
    input  logic                     clr,
    input  logic [N_BITS*N_CH-1:0]   pat_c,
    input  logic [N_BITS*N_CH-1:0]   pat_s,
    output logic [N_CH*16-1:0]       c_codes,
    output logic [N_CH*16-1:0]       s_codes,
    output logic [N_CH-1:0]          csflt,
    output logic                     ecc_corr_flt,
    output logic                     ecc_unc_flt,
    output logic                     dup_flt,
    output logic                     par_flt,
    output logic                     any_flag      // one read per result for an early stop
);
    localparam int CW = $clog2(N_BITS + 1);
    logic          playing;
    logic [CW-1:0] cnt;
    logic [N_CH-1:0] c_bits, s_bits;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            playing <= 1'b0;
            cnt <= '0;
        end else if (play) begin
            playing <= 1'b1;
            cnt <= '0;
        end else if (playing) begin
            if (cnt == CW'(N_BITS - 1)) playing <= 1'b0;
            cnt <= cnt + 1'b1;
        end
    end

    always_comb begin
        c_bits = '0;
        s_bits = '0;
        if (playing) begin
            c_bits = pat_c[cnt*N_CH +: N_CH];
            s_bits = pat_s[cnt*N_CH +: N_CH];
        end
    end

    afe_datapath #(.N_CH(N_CH), .R_C(R_C), .DUP_C(DUP_C), .RES_PAR(RES_PAR)) u_dut (
        .clk, .rst_n, .trim_wr_en, .trim_wr_addr, .trim_wr_data, .start,
        .c_bit_valid(playing), .c_bits, .s_bit_valid(playing), .s_bits, .die_temp, .cth, .clr,
        .c_codes, .s_codes, .csflt, .ecc_corr_flt, .ecc_unc_flt, .dup_flt, .par_flt,
        // strobes and the per-compare mask are for afe_digital_top's register file: the
        // block-level campaign observes the result registers and the sticky flags
        .c_strobe(), .s_strobe(), .cmp_strobe(), .mismatch()
    );
    assign any_flag = |{csflt, ecc_corr_flt, ecc_unc_flt, dup_flt, par_flt};
endmodule
