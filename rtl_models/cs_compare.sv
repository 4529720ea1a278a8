// cs_compare: C-ADC vs S-ADC comparison with the CTH threshold table, per-channel mismatch and
// sticky CSxFLT flags (golden model: bms_emu.device.device.c_average_codes and
// cs_mismatch_mask, used by Device._ev_s).
//
// Per channel i, on cmp_valid:
//   c_avg_i    = rint(c_sum_i / N_AVG)        round half to even (numpy rint of the exact mean)
//   mismatch_i = |s_i - c_avg_i| > THR[cth]   codes of 150 uV
//   csflt_i   |= mismatch_i                   sticky until clr (CLRFLAG)
// c_sum_i is the sum of the last N_AVG C results of the channel (signed CODE_BITS + log2 N_AVG
// bits; the running sum of the 8-deep C history lives with the result registers). The
// sequencer asserts cmp_valid only when the model compares: C-ADC running for at least N_AVG
// results, the C history full, no open-wire test on either ADC.
//
// THR[cth] (codes): 34, 54, 60, 67, 100, 133, 167, 300 = floor(CTH_TABLE_MV * 1e-3 / 150e-6)
// for CTH_TABLE_MV = 5.1, 8.1, 9.1, 10.05, 15, 19.95, 25.05, 45.05 mV
// (bms_emu.protocol.registers); for an integer difference, "> x" is "> floor(x)".
//
// Widths: s_codes signed CODE_BITS (16); c_avg CODE_BITS + 1; difference and its magnitude
// CODE_BITS + 2 (no overflow for any inputs). Channels packed: channel i at [i*W +: W].
//
// Timing: mismatch and csflt are registered, valid the clock after cmp_valid; clr has priority
// over a simultaneous compare (the flags of that compare are lost, as a clear after it).
// Clock / reset: rising edge of clk; rst_n synchronous, active low, clears mismatch and csflt.
module cs_compare #(
    parameter int N_CH      = 16,
    parameter int CODE_BITS = 16,
    parameter int N_AVG     = 8,
    localparam int AW = $clog2(N_AVG),
    localparam int SW = CODE_BITS + AW
) (
    input  logic                      clk,
    input  logic                      rst_n,
    input  logic                      cmp_valid,
    input  logic                      clr,
    input  logic [2:0]                cth,
    input  logic [N_CH*CODE_BITS-1:0] s_codes,
    input  logic [N_CH*SW-1:0]        c_sums,
    output logic [N_CH-1:0]           mismatch,
    output logic [N_CH-1:0]           csflt
);
    // parameter check: an elaboration-time error; Icarus 11 lacks elaboration tasks, so
    // there it is a time-0 fatal instead
`ifndef __ICARUS__
    if (N_AVG < 2 || (1 << AW) != N_AVG) begin : g_bad_navg
        $error("cs_compare: N_AVG = %0d must be a power of two >= 2", N_AVG);
    end
`else
    initial if (N_AVG < 2 || (1 << AW) != N_AVG)
        $fatal(1, "cs_compare: N_AVG = %0d must be a power of two >= 2", N_AVG);
`endif

    logic [CODE_BITS:0] thr;
    always_comb begin
        unique case (cth)
            3'd0: thr = (CODE_BITS + 1)'(34);
            3'd1: thr = (CODE_BITS + 1)'(54);
            3'd2: thr = (CODE_BITS + 1)'(60);
            3'd3: thr = (CODE_BITS + 1)'(67);
            3'd4: thr = (CODE_BITS + 1)'(100);
            3'd5: thr = (CODE_BITS + 1)'(133);
            3'd6: thr = (CODE_BITS + 1)'(167);
            3'd7: thr = (CODE_BITS + 1)'(300);
        endcase
    end

    logic [N_CH-1:0] bad;
    for (genvar i = 0; i < N_CH; i++) begin : g_ch
        logic signed [SW-1:0]        c_sum;
        logic signed [CODE_BITS-1:0] s;
        logic signed [SW-AW-1:0]     q;          // floor(c_sum / N_AVG)
        logic [AW-1:0]               r;          // remainder
        logic signed [SW-AW:0]       c_avg;      // rounded, one spare bit
        logic signed [CODE_BITS+1:0] diff;
        logic [CODE_BITS+1:0]        mag;
        logic                        up;
        always_comb begin
            c_sum = c_sums[i*SW +: SW];
            s     = s_codes[i*CODE_BITS +: CODE_BITS];
            q     = c_sum[SW-1:AW];
            r     = c_sum[AW-1:0];
            // half to even: up if the remainder is above one half, or exactly one half and q odd
            up    = (r > (AW)'(N_AVG / 2)) || (r == (AW)'(N_AVG / 2) && q[0]);
            c_avg = (SW - AW + 1)'(q) + (SW - AW + 1)'($signed({1'b0, up}));
            diff  = (CODE_BITS + 2)'(s) - (CODE_BITS + 2)'(c_avg);
            mag   = diff[CODE_BITS+1] ? -diff : diff;
            bad[i] = mag > (CODE_BITS + 2)'(thr);
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            mismatch <= '0;
            csflt <= '0;
        end else begin
            if (cmp_valid) mismatch <= bad;
            if (clr)            csflt <= '0;
            else if (cmp_valid) csflt <= csflt | bad;
        end
    end
endmodule
