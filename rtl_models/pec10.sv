// pec10: byte-serial PEC10 of an ADBMS6830-class register group, including the 6-bit command
// counter (golden model: bms_emu.protocol.pec.pec10).
//
// CRC-10, generator x^10+x^7+x^3+x^2+x+1 (POLY = 10'h08F, the x^10 term implied), seed
// 10'h010, MSB first, direct shift register. The data bytes go in one per clock (data_valid),
// then the 6 command-counter bits, MSB first, in one clock (cc_valid; the host's write data uses
// cc = 0). The result is the 10-bit PEC; on the wire: [cc << 2 | pec[9:8], pec[7:0]].
//
// Clock / reset: rising edge of clk; rst_n is a synchronous active-low reset that loads the
// seed. init (synchronous) loads the seed; with data_valid in the same cycle the byte is
// processed from the seed. data_valid and cc_valid must not be high in the same cycle
// (cc_valid is ignored then). pec is valid from the cycle after cc_valid.
module pec10 #(
    parameter logic [9:0] POLY = 10'h08F,
    parameter logic [9:0] SEED = 10'h010
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       init,
    input  logic       data_valid,
    input  logic [7:0] data,
    input  logic       cc_valid,
    input  logic [5:0] cc,
    output logic [9:0] pec
);
    logic [9:0] crc_q;
    logic [9:0] start;
    logic [9:0] nxt_byte;
    logic [9:0] nxt_cc;

    assign start = init ? SEED : crc_q;

    always_comb begin
        nxt_byte = start;
        for (int i = 7; i >= 0; i--) begin
            if (nxt_byte[9] ^ data[i]) nxt_byte = {nxt_byte[8:0], 1'b0} ^ POLY;
            else                       nxt_byte = {nxt_byte[8:0], 1'b0};
        end
        nxt_cc = crc_q;
        for (int i = 5; i >= 0; i--) begin
            if (nxt_cc[9] ^ cc[i]) nxt_cc = {nxt_cc[8:0], 1'b0} ^ POLY;
            else                   nxt_cc = {nxt_cc[8:0], 1'b0};
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n)          crc_q <= SEED;
        else if (data_valid) crc_q <= nxt_byte;
        else if (cc_valid)   crc_q <= nxt_cc;
        else if (init)       crc_q <= SEED;
    end

    assign pec = crc_q;
endmodule
