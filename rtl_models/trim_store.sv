// trim_store: the trim memory as flops (the power-up copy of the OTP/fuse array), loaded
// through a write port, decoded through SECDED to the trim codes of the C and S paths
// (golden model: bms_emu.afe.trim.read_trim_image on each half of the image, as
// bms_emu.device.chip_analog reads it: words 0-4 C path, 5-9 S path).
//
// Per path, words: 0 header (scheme, format version, board_valid), 1 gain, 2 tempco,
// 3 offset, 4 board (16-bit two's complement each, SECDED (22,16) coded, secded22_decode).
// A path with any uncorrectable word uses all-zero codes (read_trim_image); single errors are
// corrected. corrected / uncorrectable: some word of the memory has that status now
// (combinational; the datapath latches them into sticky alarm flags).
//
// Write port: wr_en, wr_addr (0..9), wr_data (a 22-bit code word, stored as given: the
// encoder is the programmer's). Out-of-range addresses are ignored.
// Clock / reset: rising edge of clk; rst_n synchronous, active low, clears the memory to
// all-zero words (code word 0 encodes data 0: a valid, untrimmed image).
module trim_store #(
    localparam int N_PATH = 2,
    localparam int N_WORD = 5,                   // words per path (trim.IMAGE_WORDS)
    localparam int N_ALL  = N_PATH * N_WORD
) (
    input  logic                    clk,
    input  logic                    rst_n,
    input  logic                    wr_en,
    input  logic [3:0]              wr_addr,
    input  logic [21:0]             wr_data,
    output logic signed [15:0]      c_gain,
    output logic signed [15:0]      c_tempco,
    output logic signed [15:0]      c_offset,
    output logic signed [15:0]      c_board,
    output logic signed [15:0]      s_gain,
    output logic signed [15:0]      s_tempco,
    output logic signed [15:0]      s_offset,
    output logic signed [15:0]      s_board,
    output logic [15:0]             c_header,
    output logic [15:0]             s_header,
    output logic                    corrected,
    output logic                    uncorrectable
);
    logic [N_ALL*22-1:0] mem_q;                  // word w at [w*22 +: 22]

    always_ff @(posedge clk) begin
        if (!rst_n) mem_q <= '0;
        else if (wr_en && wr_addr < 4'(N_ALL)) mem_q[wr_addr*22 +: 22] <= wr_data;
    end

    logic [N_ALL*16-1:0] data;
    logic [N_ALL-1:0]    w_corr, w_bad;
    for (genvar w = 0; w < N_ALL; w++) begin : g_word
        logic [1:0] st;
        /* verilator lint_off UNUSEDSIGNAL */
        logic [21:0] fixed;                      // scrub value: no scrubbing here
        /* verilator lint_on UNUSEDSIGNAL */
        secded22_decode u_dec (.cw(mem_q[w*22 +: 22]), .data(data[w*16 +: 16]), .status(st),
                               .fixed);
        assign w_corr[w] = st == 2'd1;
        assign w_bad[w]  = st == 2'd2;
    end

    logic c_bad, s_bad;
    always_comb begin
        c_bad = |w_bad[N_WORD-1:0];
        s_bad = |w_bad[N_ALL-1:N_WORD];
        c_header = c_bad ? '0 : data[0*16 +: 16];
        c_gain   = c_bad ? '0 : data[1*16 +: 16];
        c_tempco = c_bad ? '0 : data[2*16 +: 16];
        c_offset = c_bad ? '0 : data[3*16 +: 16];
        c_board  = c_bad ? '0 : data[4*16 +: 16];
        s_header = s_bad ? '0 : data[5*16 +: 16];
        s_gain   = s_bad ? '0 : data[6*16 +: 16];
        s_tempco = s_bad ? '0 : data[7*16 +: 16];
        s_offset = s_bad ? '0 : data[8*16 +: 16];
        s_board  = s_bad ? '0 : data[9*16 +: 16];
        corrected     = |w_corr;
        uncorrectable = c_bad | s_bad;
    end
endmodule
