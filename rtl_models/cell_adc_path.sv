// cell_adc_path: the digital conversion chain of one cell channel, modulator bit to register
// code (golden model: bms_emu's sinc3 -> raw_code_from_sinc3 -> trim.correct_code ->
// cell_code_from_raw, the chain bms_emu.device.chip_analog uses):
//
//   bit_in -> sinc3_decimator (R) -> raw_code_map -> trim_correct -> cell_code_map -> code
//
// Widths: sinc3 W = 1 + 3 log2 R (31); raw and corrected signed RAW_BITS (24, LSB 9.375 uV);
// trim codes and die temperature as trim_correct (s16); code signed CODE_BITS (16,
// V = 1.5 V + code * 150 uV).
//
// Timing: one modulator bit per clock with bit_valid. The sinc3 output register feeds the
// trim stage (registered), so res_valid pulses two clocks after the R-th bit of a period; raw,
// corrected and code are valid with res_valid and hold until the next result. The trim codes
// and die_temp are sampled the clock before res_valid (hold them steady around a period end).
// Clock / reset: rising edge of clk; rst_n synchronous, active low (resets the decimator and
// the trim stage).
module cell_adc_path #(
    parameter int R             = 1024,
    parameter int RAW_PER_U     = 960000,
    parameter int RAW_BITS      = 24,
    parameter int CODE_BITS     = 16,
    parameter int GAIN_FRAC     = 19,
    parameter int TEMPCO_FRAC   = 24,
    parameter int DT_FRAC       = 4,
    parameter int DIE_TEMP_BITS = 16,
    parameter int OFFSET_FRAC   = 2,
    parameter int T_REF_CODE    = 400,
    parameter int TRIM_BITS     = 16,
    parameter int RAW_CODE_ZERO = 160000,
    parameter int CODE_FRAC     = 4
) (
    input  logic                            clk,
    input  logic                            rst_n,
    input  logic                            bit_valid,
    input  logic                            bit_in,
    input  logic signed [TRIM_BITS-1:0]     gain,
    input  logic signed [TRIM_BITS-1:0]     board,
    input  logic signed [TRIM_BITS-1:0]     tempco,
    input  logic signed [TRIM_BITS-1:0]     offset,
    input  logic signed [DIE_TEMP_BITS-1:0] die_temp,
    output logic                            res_valid,
    output logic signed [RAW_BITS-1:0]      raw,
    output logic signed [RAW_BITS-1:0]      corrected,
    output logic signed [CODE_BITS-1:0]     code
);
    localparam int W = 1 + 3 * $clog2(R);

    logic         d_valid;
    logic [W-1:0] d;

    sinc3_decimator #(.R(R)) u_sinc3 (
        .clk, .rst_n, .bit_valid, .bit_in, .out_valid(d_valid), .out_code(d)
    );

    raw_code_map #(.R(R), .RAW_PER_U(RAW_PER_U), .RAW_BITS(RAW_BITS)) u_raw (.d, .raw);

    trim_correct #(
        .RAW_BITS(RAW_BITS), .CODE_BITS(TRIM_BITS), .GAIN_FRAC(GAIN_FRAC),
        .TEMPCO_FRAC(TEMPCO_FRAC), .DT_FRAC(DT_FRAC), .DIE_TEMP_BITS(DIE_TEMP_BITS),
        .OFFSET_FRAC(OFFSET_FRAC), .T_REF_CODE(T_REF_CODE)
    ) u_trim (
        .clk, .rst_n, .in_valid(d_valid), .raw, .gain, .board, .tempco, .offset, .die_temp,
        .out_valid(res_valid), .corrected
    );

    cell_code_map #(
        .RAW_BITS(RAW_BITS), .CODE_BITS(CODE_BITS), .RAW_CODE_ZERO(RAW_CODE_ZERO),
        .FRAC(CODE_FRAC)
    ) u_code (.raw(corrected), .code);
endmodule
