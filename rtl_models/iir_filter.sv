// iir_filter: first-order IIR post-filter of the 16-bit cell codes (golden model:
// bms_emu.afe.iir.iir_filter), y[n] = y[n-1] + k (x[n] - y[n-1]).
//
// Formats (as the model's docstring):
//   x      signed CODE_BITS (16) cell code
//   k      Q0.16 power of two K / 2**16 per FC: 1/2, 1/4, 1/8, 1/16, 1/32, 1/128, 1/256
//          for FC = 1..7 (bms_emu.afe.iir.IIR_K_Q16), i.e. a right shift by S = 1,2,3,4,5,7,8
//   y      state, signed Q16.16 (CODE_BITS + FRAC_BITS = 32 bits)
//   update d = (x << 16) - y (33 bits signed);
//          y += (d * K + 2**15) >>> 16            (model: 49-bit product, round half up)
//             = (d + 2**(S-1)) >>> S              (identical for K = 2**(16-S): the shifter
//                                                  used here; no multiplier)
//   output (y + 2**15) >>> 16 (round half up), saturated to [-32767, 32767]
//   FC = 0 bypass: output = x unchanged (no saturation) and y = x << 16, so enabling the
//          filter later starts from the last result.
//
// Timing: one sample per clock with x_valid; y_out is registered, y_valid pulses the clock
// after x_valid. fc is sampled together with x (a setting change applies from that sample).
//
// Clock / reset: rising edge of clk; rst_n synchronous, active low: y = 0 (the model's
// IirState.from_codes(0)), outputs 0.
module iir_filter #(
    parameter int CODE_BITS = 16,
    parameter int FRAC_BITS = 16
) (
    input  logic                        clk,
    input  logic                        rst_n,
    input  logic [2:0]                  fc,
    input  logic                        x_valid,
    input  logic signed [CODE_BITS-1:0] x,
    output logic                        y_valid,
    output logic signed [CODE_BITS-1:0] y_out
);
    localparam int YW = CODE_BITS + FRAC_BITS;          // state width (Q16.16: 32)
    localparam int DW = YW + 1;                         // difference width (33)
    localparam logic signed [CODE_BITS-1:0] CODE_MAX = (CODE_BITS)'((1 << (CODE_BITS - 1)) - 1);
    localparam logic signed [CODE_BITS-1:0] CODE_MIN = -CODE_MAX;

    logic signed [YW-1:0] y_q;
    logic signed [YW-1:0] x_q;                          // x << FRAC_BITS
    logic signed [DW-1:0] d, d_rnd, inc;
    logic signed [YW-1:0] y_new;
    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [DW-1:0] y_sum;                        // [DW-1] unused: y stays in 32 bits
    logic signed [DW-1:0] y_rnd;                        // [FRAC_BITS-1:0] dropped by rounding
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [DW-FRAC_BITS-1:0] y_int;              // rounded code before saturation
    logic signed [CODE_BITS-1:0] y_sat;
    logic [3:0] s;                                      // shift S of the FC setting

    always_comb begin
        unique case (fc)
            3'd1:    s = 4'd1;
            3'd2:    s = 4'd2;
            3'd3:    s = 4'd3;
            3'd4:    s = 4'd4;
            3'd5:    s = 4'd5;
            3'd6:    s = 4'd7;
            3'd7:    s = 4'd8;
            default: s = 4'd1;                          // FC = 0: bypass, s unused
        endcase
        x_q   = {x, {FRAC_BITS{1'b0}}};
        d     = DW'(x_q) - DW'(y_q);
        d_rnd = d + (DW'(1) <<< (s - 4'd1));
        inc   = d_rnd >>> s;
        y_sum = DW'(y_q) + inc;
        y_new = y_sum[YW-1:0];                          // stays within the inputs' range
        y_rnd = DW'(y_new) + (DW'(1) <<< (FRAC_BITS - 1));
        y_int = y_rnd[DW-1:FRAC_BITS];
        if (y_int > (DW - FRAC_BITS)'(CODE_MAX))      y_sat = CODE_MAX;
        else if (y_int < (DW - FRAC_BITS)'(CODE_MIN)) y_sat = CODE_MIN;
        else                                          y_sat = y_int[CODE_BITS-1:0];
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            y_q <= '0;
            y_valid <= 1'b0;
            y_out <= '0;
        end else begin
            y_valid <= x_valid;
            if (x_valid) begin
                if (fc == 3'd0) begin
                    y_q <= x_q;
                    y_out <= x;
                end else begin
                    y_q <= y_new;
                    y_out <= y_sat;
                end
            end
        end
    end
endmodule
