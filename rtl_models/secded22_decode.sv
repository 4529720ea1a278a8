// secded22_decode: SECDED (22,16) decoder of one trim-memory word, combinational (golden
// model: bms_emu.afe.ecc.decode; layout in that module's docstring).
//
//   code bit 0: overall parity; bits 1, 2, 4, 8, 16: Hamming parity p0..p4; the other bits
//   3, 5, 6, 7, 9 .. 15, 17 .. 21 hold data d0..d15 in that order.
//   s = syndrome (p_j = XOR of code bits i in 1..21 with bit j of i set), q = XOR of all bits:
//     q = 0, s = 0       -> OK
//     q = 1, s < 22      -> single error at bit s, flipped back -> CORRECTED
//     q = 1, s >= 22 or q = 0, s != 0 -> UNCORRECTABLE (data returned as received)
//
// Widths: cw 22 bits in; data 16 bits; status 2 bits (0 OK, 1 CORRECTED, 2 UNCORRECTABLE,
// the EccStatus values); fixed = the code word after correction (the scrub value).
module secded22_decode (
    input  logic [21:0] cw,
    output logic [15:0] data,
    output logic [1:0]  status,
    output logic [21:0] fixed
);
    // code-bit masks of p0..p4: positions 1..21 whose index has bit j set
    function automatic logic [21:0] pmask(input int j);
        logic [21:0] m;
        m = '0;
        for (int i = 1; i < 22; i++) m[i] = ((i >> j) & 1) != 0;
        return m;
    endfunction

    logic [4:0] syn;
    logic       odd, single;

    always_comb begin
        for (int j = 0; j < 5; j++) syn[j] = ^(cw & pmask(j));
        odd    = ^cw;
        single = odd && (syn < 5'd22);
        if (!odd && syn == 5'd0) status = 2'd0;
        else if (single)         status = 2'd1;
        else                     status = 2'd2;
        fixed = single ? (cw ^ (22'(1) << syn)) : cw;
    end

    // data bits sit at the code positions that are not powers of two
    // (a packed list, 5 bits per entry, data bit 0 lowest: Icarus 11 has no unpacked
    // array parameters)
    localparam logic [79:0] POS = {5'd21, 5'd20, 5'd19, 5'd18, 5'd17, 5'd15, 5'd14, 5'd13,
                                   5'd12, 5'd11, 5'd10, 5'd9, 5'd7, 5'd6, 5'd5, 5'd3};
    for (genvar k = 0; k < 16; k++) begin : g_data
        assign data[k] = fixed[POS[5*k +: 5]];
    end
endmodule
