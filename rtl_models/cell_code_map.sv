// cell_code_map: raw (or trim-corrected) code -> 16-bit cell register code (golden model:
// bms_emu.afe.adc_params.cell_code_from_raw), combinational.
//
//   code = sat((raw - RAW_CODE_ZERO + 2**(FRAC-1)) >>> FRAC)  to [-(2**15 - 1), 2**15 - 1]
//
// RAW_CODE_ZERO = 160000 raw codes (the 1.5 V code zero), FRAC = 4 (raw LSB = cell LSB / 16),
// round half up. Widths: raw signed RAW_BITS (24); difference signed RAW_BITS + 2; code signed
// CODE_BITS (16), saturating to +-32767 (-32768 is the "cleared" marker, never a result).
module cell_code_map #(
    parameter int RAW_BITS      = 24,
    parameter int CODE_BITS     = 16,
    parameter int RAW_CODE_ZERO = 160000,
    parameter int FRAC          = 4
) (
    input  logic signed [RAW_BITS-1:0]  raw,
    output logic signed [CODE_BITS-1:0] code
);
    localparam int XW = RAW_BITS + 2;
    localparam int QW = XW - FRAC;
    localparam logic signed [CODE_BITS-1:0] CODE_MAX = {1'b0, {(CODE_BITS - 1){1'b1}}};
    localparam logic signed [CODE_BITS-1:0] CODE_MIN = -CODE_MAX;

    /* verilator lint_off UNUSEDSIGNAL */
    logic signed [XW-1:0] x;                                // [FRAC-1:0] dropped by the shift
    /* verilator lint_on UNUSEDSIGNAL */
    logic signed [QW-1:0] q;

    always_comb begin
        x = XW'(raw) - XW'(RAW_CODE_ZERO) + (XW'(1) <<< (FRAC - 1));
        q = x[XW-1:FRAC];
        if (q > QW'(CODE_MAX))      code = CODE_MAX;
        else if (q < QW'(CODE_MIN)) code = CODE_MIN;
        else                        code = q[CODE_BITS-1:0];
    end
endmodule
