// eis_lockin: EIS lock-in of one channel (golden model: bms_emu.afe.lockin.lockin_accumulate,
// record length bms_emu.afe.lockin.record_samples). The model's docstring derives every width.
//
// Arithmetic (P = PHASE_BITS, L = 12 LUT address bits, A = 32767):
//   phase  acc[n] = n * FTW mod 2**P (cleared by start; sample 0 sees phase 0)
//   index  m = ((acc + 2**(P-L-1)) >> (P-L)) mod 2**L          nearest LUT point, half up
//   sin    quarter fold of eis_sin_rom (T[k] = floor(A sin(2 pi k/4096) + 1/2), k = 0..1024):
//          quadrant q = m[L-1:L-2], r = m[L-3:0]: T[r], T[1024-r], -T[r], -T[1024-r]
//   cos    the same at m + 1024 (a quarter turn later)
//   MAC    d = x - x_offset (CODE_BITS+1), acc_i += d*cos, acc_q += d*sin
//          products CODE_BITS + 16 bits, accumulators ACC_BITS = CODE_BITS + 16 + COUNT_BITS:
//          |d * lut| < 2**(CODE_BITS+15) and a record has < 2**COUNT_BITS samples, so the
//          accumulators cannot overflow.
//   drift  sum_d += d (S0_BITS = CODE_BITS + COUNT_BITS + 1), sum_nd += n * d with n the
//          sample's index in the record (S1_BITS = CODE_BITS + 2 COUNT_BITS: |sum n d| <=
//          (2**CODE_BITS - 1) N (N-1)/2); the host removes a linear drift with them
//          (bms_emu.afe.lockin.drift_corrected_phasor).
//   record ends with the sample whose phase update carries out of P bits for the
//          n_periods-th time: N = ceil(n_periods 2**P / FTW) samples.
//
// Control: start (one clock) clears the accumulators, the phase and the counters and latches
// ftw, n_periods and x_offset; busy rises (an x_valid in the start clock is ignored). Each
// x_valid clock while busy accumulates one sample. After the record's last sample: busy
// falls, done pulses for one clock, the outputs hold until the next start. err (held until the next start, busy low) flags settings the
// model rejects: ftw = 0, ftw >= 2**(P-1) (at or above f_odr/2), n_periods = 0, or a record
// that would pass 2**COUNT_BITS - 1 samples (the record stops there, unfinished).
//
// Clock / reset: rising edge of clk; rst_n synchronous, active low: idle, outputs 0.
module eis_lockin #(
    parameter int CODE_BITS = 16,
    parameter int COUNT_BITS = 25,
    parameter int PHASE_BITS = 48,
    parameter int PERIOD_BITS = 8,
    localparam int LUT_BITS = 16,                          // eis_sin_rom: 15-bit magnitudes
    localparam int ACC_BITS = CODE_BITS + LUT_BITS + COUNT_BITS,
    localparam int S0_BITS = CODE_BITS + COUNT_BITS + 1,
    localparam int S1_BITS = CODE_BITS + 2 * COUNT_BITS
) (
    input  logic                         clk,
    input  logic                         rst_n,
    input  logic                         start,
    input  logic [PHASE_BITS-1:0]        ftw,
    input  logic [PERIOD_BITS-1:0]       n_periods,
    input  logic signed [CODE_BITS-1:0]  x_offset,
    input  logic                         x_valid,
    input  logic signed [CODE_BITS-1:0]  x,
    output logic                         busy,
    output logic                         done,
    output logic                         err,
    output logic signed [ACC_BITS-1:0]   acc_i,
    output logic signed [ACC_BITS-1:0]   acc_q,
    output logic signed [S0_BITS-1:0]    sum_d,
    output logic signed [S1_BITS-1:0]    sum_nd,
    output logic [COUNT_BITS-1:0]        n_samples,
    output logic [PERIOD_BITS-1:0]       periods
);
    localparam int L = 12;                                 // LUT points per turn: 2**L
    localparam int SH = PHASE_BITS - L;                    // phase bits below the index
    localparam int DW = CODE_BITS + 1;                     // d = x - x_offset
    localparam int PW = CODE_BITS + LUT_BITS;              // products
    localparam logic [L-1:0] QUARTER = L'(1 << (L - 2));
    localparam logic [COUNT_BITS-1:0] COUNT_MAX = '1;      // 2**COUNT_BITS - 1

    // parameter check: an elaboration-time error; Icarus 11 lacks elaboration tasks, so
    // there it is a time-0 fatal instead (as sinc3_decimator)
`ifndef __ICARUS__
    if (PHASE_BITS <= L + 1 || PHASE_BITS > 62 || CODE_BITS < 2) begin : g_bad_param
        $error("eis_lockin: need 14 <= PHASE_BITS <= 62 and CODE_BITS >= 2");
    end
`else
    initial if (PHASE_BITS <= L + 1 || PHASE_BITS > 62 || CODE_BITS < 2)
        $fatal(1, "eis_lockin: need 14 <= PHASE_BITS <= 62 and CODE_BITS >= 2");
`endif

    logic [PHASE_BITS-1:0]       phase, ftw_q;
    logic [PERIOD_BITS-1:0]      nper_q;
    logic signed [CODE_BITS-1:0] off_q;

    // ---- NCO: rounded LUT index, quarter-wave fold ----
    logic [PHASE_BITS-1:0] phase_rnd;
    logic [L-1:0]          m_sin, m_cos;
    logic [L-2:0]          a_sin, a_cos;                   // ROM addresses 0..2**(L-2)
    logic [LUT_BITS-2:0]   mag_sin, mag_cos;
    logic signed [LUT_BITS-1:0] lut_sin, lut_cos;

    function automatic logic [L-2:0] fold_addr(input logic [L-1:0] m);
        logic [L-2:0] r;
        r = {1'b0, m[L-3:0]};
        return m[L-2] ? (L-1)'(QUARTER) - r : r;           // quadrants 1, 3 run backwards
    endfunction

    function automatic logic signed [LUT_BITS-1:0] fold_sign(input logic [L-1:0] m,
                                                             input logic [LUT_BITS-2:0] mag);
        return m[L-1] ? -$signed({1'b0, mag}) : $signed({1'b0, mag});   // quadrants 2, 3
    endfunction

    always_comb begin
        phase_rnd = phase + (PHASE_BITS'(1) << (SH - 1));
        m_sin = phase_rnd[PHASE_BITS-1:SH];
        m_cos = m_sin + QUARTER;
        a_sin = fold_addr(m_sin);
        a_cos = fold_addr(m_cos);
    end

    eis_sin_rom u_rom_sin (.addr(a_sin), .mag(mag_sin));
    eis_sin_rom u_rom_cos (.addr(a_cos), .mag(mag_cos));

    // ---- MAC ----
    logic signed [DW-1:0] d;
    logic signed [PW-1:0] p_i, p_q;
    logic signed [COUNT_BITS+DW-1:0] p_nd;                 // n * d, n < 2**COUNT_BITS
    logic [PHASE_BITS:0]  phase_next;                      // carry = one more NCO turn
    logic                 last_period, counter_full;

    always_comb begin
        lut_sin = fold_sign(m_sin, mag_sin);
        lut_cos = fold_sign(m_cos, mag_cos);
        d = DW'(x) - DW'(off_q);
        p_i = PW'(d) * PW'(lut_cos);
        p_q = PW'(d) * PW'(lut_sin);
        p_nd = (COUNT_BITS + DW)'($signed({1'b0, n_samples})) * (COUNT_BITS + DW)'(d);
        phase_next = {1'b0, phase} + {1'b0, ftw_q};
        last_period = phase_next[PHASE_BITS] && (periods + 1'b1 == nper_q);
        counter_full = (n_samples + 1'b1 == COUNT_MAX);
    end

    /* verilator lint_off UNUSEDSIGNAL */
    logic unused_low;                                      // phase bits below the index
    assign unused_low = ^phase_rnd[SH-1:0];
    /* verilator lint_on UNUSEDSIGNAL */

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            phase <= '0; ftw_q <= '0; nper_q <= '0; off_q <= '0;
            busy <= 1'b0; done <= 1'b0; err <= 1'b0;
            acc_i <= '0; acc_q <= '0; n_samples <= '0; periods <= '0;
            sum_d <= '0; sum_nd <= '0;
        end else begin
            done <= 1'b0;
            if (start) begin
                phase <= '0;
                ftw_q <= ftw;
                nper_q <= n_periods;
                off_q <= x_offset;
                acc_i <= '0; acc_q <= '0; n_samples <= '0; periods <= '0;
                sum_d <= '0; sum_nd <= '0;
                if (ftw == '0 || ftw[PHASE_BITS-1] || n_periods == '0) begin
                    busy <= 1'b0;
                    err <= 1'b1;
                end else begin
                    busy <= 1'b1;
                    err <= 1'b0;
                end
            end else if (busy && x_valid) begin
                acc_i <= acc_i + ACC_BITS'(p_i);
                acc_q <= acc_q + ACC_BITS'(p_q);
                sum_d <= sum_d + S0_BITS'(d);
                sum_nd <= sum_nd + S1_BITS'(p_nd);
                n_samples <= n_samples + 1'b1;
                phase <= phase_next[PHASE_BITS-1:0];
                if (phase_next[PHASE_BITS]) periods <= periods + 1'b1;
                if (last_period) begin
                    busy <= 1'b0;
                    done <= 1'b1;
                end else if (counter_full) begin
                    busy <= 1'b0;
                    err <= 1'b1;
                end
            end
        end
    end
endmodule
