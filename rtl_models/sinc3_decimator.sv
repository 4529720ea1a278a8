// sinc3_decimator: one channel of the bit-true sinc3 (CIC, N = 3, M = 1) decimator
// (golden model: bms_emu.afe.sinc3.Sinc3Decimator / sinc3_block).
//
//   per modulator sample (bit_valid):  I1 += b ; I2 += I1 ; I3 += I2      (new values chain)
//   every R-th sample:                 C1 = I3 - z1 ; C2 = C1 - z2 ; D = C2 - z3
//                                      z1 = I3 ; z2 = C1 ; z3 = C2
//
// Widths: input 1 bit unsigned (b = 1 for the modulator's +1, 0 for -1). All six registers and
// the output are W = 1 + 3*log2(R) bits unsigned and wrap modulo 2**W (C-ADC R = 1024: W = 31;
// S-ADC R = 8192: W = 40). The output D lies in [0, R**3] and is exact despite the wrap.
// R must be a power of two >= 2 (checked at elaboration).
//
// Timing: the integrators update on every clock with bit_valid (a clock enable at the
// modulator rate). The R-th sample of each period (counted from reset) completes an output:
// out_code is registered and out_valid pulses for one clock, the clock after that sample.
// Outputs 0 and 1 after reset are partial (filter settling), as in the model.
//
// Clock / reset: rising edge of clk; rst_n synchronous, active low, clears every register and
// the decimation phase (the model's Sinc3Decimator.reset()).
module sinc3_decimator #(
    parameter int R = 1024,
    localparam int LOG2R = $clog2(R),
    localparam int W = 1 + 3 * LOG2R
) (
    input  logic         clk,
    input  logic         rst_n,
    input  logic         bit_valid,
    input  logic         bit_in,
    output logic         out_valid,
    output logic [W-1:0] out_code
);
    // parameter check: an elaboration-time error; Icarus 11 lacks elaboration tasks, so
    // there it is a time-0 fatal instead
`ifndef __ICARUS__
    if (R < 2 || (1 << LOG2R) != R) begin : g_bad_r
        $error("sinc3_decimator: R = %0d must be a power of two >= 2", R);
    end
`else
    initial if (R < 2 || (1 << LOG2R) != R)
        $fatal(1, "sinc3_decimator: R = %0d must be a power of two >= 2", R);
`endif

    logic [W-1:0] i1_q, i2_q, i3_q;           // integrators
    logic [W-1:0] z1_q, z2_q, z3_q;           // comb delays
    logic [LOG2R-1:0] phase_q;                // samples since the last output, mod R
    logic [W-1:0] i1_d, i2_d, i3_d, c1, c2, d;

    always_comb begin
        i1_d = i1_q + {{(W - 1){1'b0}}, bit_in};
        i2_d = i2_q + i1_d;
        i3_d = i3_q + i2_d;
        c1   = i3_d - z1_q;
        c2   = c1 - z2_q;
        d    = c2 - z3_q;
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            i1_q <= '0; i2_q <= '0; i3_q <= '0;
            z1_q <= '0; z2_q <= '0; z3_q <= '0;
            phase_q <= '0;
            out_valid <= 1'b0;
            out_code <= '0;
        end else begin
            out_valid <= 1'b0;
            if (bit_valid) begin
                i1_q <= i1_d;
                i2_q <= i2_d;
                i3_q <= i3_d;
                phase_q <= phase_q + 1'b1;    // wraps at R (power of two)
                if (phase_q == LOG2R'(R - 1)) begin
                    z1_q <= i3_d;
                    z2_q <= c1;
                    z3_q <= c2;
                    out_code <= d;
                    out_valid <= 1'b1;
                end
            end
        end
    end
endmodule
