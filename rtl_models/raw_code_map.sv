// raw_code_map: sinc3 output D -> signed raw code (golden model:
// bms_emu.afe.adc_params.raw_code_from_sinc3), combinational.
//
//   raw = sat_RAW_BITS(round_half_up((2 D - R**3) * RAW_PER_U / R**3))
//       = sat_RAW_BITS(((2 D - R**3) * RAW_PER_U + 2**(SH-1)) >>> SH),   SH = 3 log2 R
//
// Widths: D unsigned W = 1 + 3 log2 R (31 for R = 1024); x = 2 D - R**3 signed W + 1 (32);
// RAW_PER_U = 960000 raw codes per unit of u (raw LSB 150 uV / 16 = 9.375 uV, full scale
// 9 V cell-referred), 21 bits signed; product signed W + 1 + 21 (53; the model's bound is 52);
// raw signed RAW_BITS (24), saturating (|raw| <= RAW_PER_U, so only a narrow RAW_BITS ever
// saturates). R must be a power of two >= 2.
module raw_code_map #(
    parameter int R         = 1024,
    parameter int RAW_PER_U = 960000,
    parameter int RAW_BITS  = 24,
    localparam int LOG2R = $clog2(R),
    localparam int W     = 1 + 3 * LOG2R
) (
    input  logic [W-1:0]               d,
    output logic signed [RAW_BITS-1:0] raw
);
    localparam int SH = 3 * LOG2R;
    localparam int KW = $clog2(RAW_PER_U + 1) + 1;          // signed width of the constant
    localparam int PX = W + 1 + KW;                         // exact product width
    // at least RAW_BITS + 1 bits after the final shift, so the saturation sees the sign
    localparam int PW = (PX > SH + RAW_BITS + 1) ? PX : SH + RAW_BITS + 1;
    localparam int QW = PW - SH;
    localparam logic signed [RAW_BITS-1:0] RAW_MAX = {1'b0, {(RAW_BITS - 1){1'b1}}};
    localparam logic signed [RAW_BITS-1:0] RAW_MIN = {1'b1, {(RAW_BITS - 1){1'b0}}};

    // parameter check: an elaboration-time error; Icarus 11 lacks elaboration tasks, so
    // there it is a time-0 fatal instead
`ifndef __ICARUS__
    if (R < 2 || (1 << LOG2R) != R) begin : g_bad_r
        $error("raw_code_map: R = %0d must be a power of two >= 2", R);
    end
`else
    initial if (R < 2 || (1 << LOG2R) != R)
        $fatal(1, "raw_code_map: R = %0d must be a power of two >= 2", R);
`endif

    logic signed [W:0]    x;
    logic signed [PW-1:0] prod;
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [PW-1:0] rnd;                              // [SH-1:0] dropped by the shift
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [QW-1:0] q;

    always_comb begin
        x    = $signed({d, 1'b0}) - $signed((W + 1)'(1) << SH);
        prod = PW'(x) * PW'(RAW_PER_U);
        rnd  = prod + (PW'(1) <<< (SH - 1));
        q    = rnd[PW-1:SH];
        if (q > QW'(RAW_MAX))      raw = RAW_MAX;
        else if (q < QW'(RAW_MIN)) raw = RAW_MIN;
        else                       raw = q[RAW_BITS-1:0];
    end
endmodule
