// pec15: byte-serial PEC15 of the ADBMS6830-class command frame (golden model:
// bms_emu.protocol.pec.pec15).
//
// CRC-15, generator x^15+x^14+x^10+x^8+x^7+x^4+x^3+1 (POLY = 15'h4599 without the x^15 term),
// seed 15'h0010, MSB first, direct (non-augmented) shift register. One byte per clock; the
// 8 bit steps of a byte are unrolled combinationally.
//
// Clock / reset: rising edge of clk; rst_n is a synchronous active-low reset that loads the
// seed. init (synchronous) also loads the seed; if data_valid is high in the same cycle the byte
// is processed starting from the seed, so a frame's first byte may come with init.
//
// Output: pec = {crc[14:0], 1'b0}, the 16-bit value sent on the wire (high byte first),
// valid from the cycle after the last byte.
module pec15 #(
    parameter logic [14:0] POLY = 15'h4599,
    parameter logic [14:0] SEED = 15'h0010
) (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        init,
    input  logic        data_valid,
    input  logic [7:0]  data,
    output logic [15:0] pec
);
    logic [14:0] crc_q;
    logic [14:0] start;
    logic [14:0] nxt;

    assign start = init ? SEED : crc_q;

    always_comb begin
        nxt = start;
        for (int i = 7; i >= 0; i--) begin
            if (nxt[14] ^ data[i]) nxt = {nxt[13:0], 1'b0} ^ POLY;
            else                   nxt = {nxt[13:0], 1'b0};
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n)          crc_q <= SEED;
        else if (data_valid) crc_q <= nxt;
        else if (init)       crc_q <= SEED;
    end

    assign pec = {crc_q, 1'b0};
endmodule
