// trim_correct: bit-true fixed-point trim correction of a raw conversion result (golden model:
// bms_emu.afe.trim.correct_code, widths from its docstring table / TrimFormat.widths).
//
//   corrected = raw * (1 + (gain + board) 2^-GAIN_FRAC + tempco 2^-TEMPCO_FRAC (d - d_ref)
//               2^-DT_FRAC) + offset 2^-OFFSET_FRAC
//
// Datapath with F = TEMPCO_FRAC + DT_FRAC (28) fraction bits; default widths in brackets:
//   raw        s RAW_BITS [24]      raw LSB (9.375 uV)
//   gain,board s CODE_BITS [16]     2^-19
//   tempco     s CODE_BITS [16]     2^-24 /C
//   offset     s CODE_BITS [16]     2^-2 raw LSB
//   die_temp   s DIE_TEMP_BITS [16] 2^-4 C, code 0 = 0 C; T_REF_CODE = d_ref (400 = 25 C)
//   dT  = die_temp - T_REF_CODE                   s DTW  [17]
//   p   = tempco * dT                             s PW   [33]  Q.28
//   m   = 2^F + (gain + board) << (F - 19) + p    s MW   [35]  Q.28 multiplier
//   acc = raw * m + offset << (F - 2)             s ACCW [60]  Q.28 raw LSB
//   out = sat_RAW_BITS((acc + 2^(F-1)) >>> F)     round half up, saturate to s24
// Every step before the final shift is exact; the widths are the worst case over all inputs
// (the same formulas as TrimFormat.widths), so nothing wraps.
//
// Timing: one vector per clock with in_valid; out/out_valid are registered (latency 1).
// Clock / reset: rising edge of clk; rst_n synchronous, active low, clears out and out_valid.
module trim_correct #(
    parameter int RAW_BITS      = 24,
    parameter int CODE_BITS     = 16,
    parameter int GAIN_FRAC     = 19,
    parameter int TEMPCO_FRAC   = 24,
    parameter int DT_FRAC       = 4,
    parameter int DIE_TEMP_BITS = 16,
    parameter int OFFSET_FRAC   = 2,
    parameter int T_REF_CODE    = 400
) (
    input  logic                            clk,
    input  logic                            rst_n,
    input  logic                            in_valid,
    input  logic signed [RAW_BITS-1:0]      raw,
    input  logic signed [CODE_BITS-1:0]     gain,
    input  logic signed [CODE_BITS-1:0]     board,
    input  logic signed [CODE_BITS-1:0]     tempco,
    input  logic signed [CODE_BITS-1:0]     offset,
    input  logic signed [DIE_TEMP_BITS-1:0] die_temp,
    output logic                            out_valid,
    output logic signed [RAW_BITS-1:0]      corrected
);
    localparam int F    = TEMPCO_FRAC + DT_FRAC;
    localparam int DTW  = DIE_TEMP_BITS + 1;
    localparam int PW   = CODE_BITS + DTW;
    localparam int GSW  = CODE_BITS + 1 + F - GAIN_FRAC;
    localparam int M0   = (PW > GSW) ? PW : GSW;
    localparam int MW   = ((M0 > F + 1) ? M0 : F + 1) + 2;
    localparam int PRW  = RAW_BITS + MW;
    localparam int OFW  = CODE_BITS + F - OFFSET_FRAC;
    localparam int ACCW = ((PRW > OFW) ? PRW : OFW) + 1;
    localparam int QW   = ACCW - F;                       // width after the final shift

    localparam logic signed [RAW_BITS-1:0] RAW_MAX = {1'b0, {(RAW_BITS - 1){1'b1}}};
    localparam logic signed [RAW_BITS-1:0] RAW_MIN = {1'b1, {(RAW_BITS - 1){1'b0}}};

    logic signed [DTW-1:0]       d_t;
    logic signed [PW-1:0]        p;
    logic signed [CODE_BITS:0]   g_sum;
    logic signed [MW-1:0]        m;
    logic signed [ACCW-1:0]      acc;
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [ACCW-1:0]      acc_rnd;                 // [F-1:0] dropped by the shift
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [QW-1:0]        q;
    logic signed [RAW_BITS-1:0]  q_sat;

    always_comb begin
        d_t     = DTW'(die_temp) - DTW'(T_REF_CODE);
        p       = PW'(tempco) * PW'(d_t);
        g_sum   = (CODE_BITS + 1)'(gain) + (CODE_BITS + 1)'(board);
        m       = (MW'(1) <<< F) + (MW'(g_sum) <<< (F - GAIN_FRAC)) + MW'(p);
        acc     = ACCW'(raw) * ACCW'(m) + (ACCW'(offset) <<< (F - OFFSET_FRAC));
        acc_rnd = acc + (ACCW'(1) <<< (F - 1));
        q       = acc_rnd[ACCW-1:F];
        if (q > QW'(RAW_MAX))      q_sat = RAW_MAX;
        else if (q < QW'(RAW_MIN)) q_sat = RAW_MIN;
        else                       q_sat = q[RAW_BITS-1:0];
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            out_valid <= 1'b0;
            corrected <= '0;
        end else begin
            out_valid <= in_valid;
            if (in_valid) corrected <= q_sat;
        end
    end
endmodule
