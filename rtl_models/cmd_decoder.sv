// cmd_decoder: ADBMS6830-class command layer of one device (golden model:
// bms_emu.device.chain.DaisyChain.transfer with one bms_emu.device.device.Device).
//
// Per chip-select window (bytes from spi_target):
// * bytes 0-3 are CMD0 CMD1 PEC15: PEC15 over CMD0-1 (pec15), opcode = CMD0[2:0]:CMD1 with
//   CMD0[7:3] = 0, looked up in cmd_table. A bad PEC15 or an opcode outside the table: the
//   window is ignored (no state change, MISO 0xFF).
// * the command takes effect when its 4th byte arrives (the model's t_cmd): actions strobe
//   act_en (and adcv_start / adsv_start with their option bits; RSTCC clears the counter);
//   reads take a snapshot of the register group (rd_strobe) and reply, from byte 4 on, with
//   `len` data bytes, then [CC << 2 | PEC10[9:8], PEC10[7:0]] (pec10 over the data, then the
//   counter; RDSTATC with ERR = 1 inverts PEC bit 0), then 0xFF; polls reply 0x00 per byte
//   while a converter they wait for is busy (sampled when the byte starts; the model samples
//   at its end), else 0xFF.
// * writes: every byte after the command goes through a block shift register of
//   data_len + 2 = 8 bytes; at CS rising the block that ended last is applied (wr_en) if the
//   data phase is a non-zero whole number of blocks, no byte was cut short, and its PEC10
//   (over the 6 data bytes and the 6 counter bits the host sent) matches. Otherwise nothing
//   changes, including the counter (the model: a dropped write shows as a counter that did
//   not advance).
// * the 6-bit command counter counts accepted commands whose table entry says so (writes
//   and actions; reads and polls do not), wraps 63 -> 1, is reset by RSTCC and rst_n.
//
// Clock / reset: rising edge of clk; rst_n synchronous, active low. Timing: from rx_valid of
// byte 3 to tx_byte of byte 4 takes 2 cycles (decode and snapshot, then the reply mux).
module cmd_decoder (
    input  logic         clk,
    input  logic         rst_n,
    // spi_target byte interface
    input  logic         start,
    input  logic         stop,
    input  logic         partial,
    input  logic         rx_valid,
    input  logic [7:0]   rx_byte,
    input  logic         tx_load,
    output logic [7:0]   tx_byte,
    // afe_regfile
    output logic         wr_en,
    output logic [3:0]   wr_code,
    output logic [47:0]  wr_data,
    output logic         act_en,
    output logic [3:0]   act_code,
    output logic [3:0]   rd_group,
    output logic [4:0]   rd_offset,
    output logic         rd_strobe,
    input  logic [255:0] rd_data,
    // datapath: conversion starts (one clk pulse, options valid with it) and busy flags
    output logic         adcv_start,
    output logic         adsv_start,
    output logic         conv_rd,
    output logic         conv_cont,
    output logic         conv_dcp,
    output logic         conv_rstf,
    output logic [1:0]   conv_ow,
    input  logic         c_busy,
    input  logic         s_busy,
    // command counter (observation)
    output logic [5:0]   cc
);
    localparam logic [1:0] K_ACT = 2'd0, K_WR = 2'd1, K_RD = 2'd2, K_POLL = 2'd3;
    localparam logic [3:0] A_ADCV = 4'd1, A_ADSV = 4'd2;
    localparam logic [3:0] P_ADC = 4'd1, P_CADC = 4'd2, P_SADC = 4'd3;
    localparam logic [3:0] G_STATC = 4'd6;
    localparam int CMD_LEN = 4;   // CMD0 CMD1 PEC15hi PEC15lo
    localparam int BLOCK = 8;     // write block: 6 data bytes + 2 PEC bytes
    localparam logic [5:0] CC_MAX = 6'd63;

    // ---- window byte counter and command bytes
    logic [7:0]  n_rx;            // bytes received in this window (saturating)
    logic [7:0]  cmd0, cmd1, cmd2;
    logic [15:0] pec15_q;

    pec15 u_pec15 (
        .clk(clk), .rst_n(rst_n),
        .init(n_rx == 8'd0), .data_valid(rx_valid && n_rx < 8'd2), .data(rx_byte),
        .pec(pec15_q)
    );

    // ---- decode (the cycle byte 3 arrives)
    logic        t_hit, t_inc, t_rst;
    logic [1:0]  t_kind;
    logic [3:0]  t_code;
    logic [4:0]  t_off;
    logic [5:0]  t_len;
    logic [10:0] opcode;

    assign opcode = {cmd0[2:0], cmd1};

    cmd_table u_table (
        .opcode(opcode), .hit(t_hit), .kind(t_kind), .code(t_code), .offset(t_off),
        .len(t_len), .inc_cc(t_inc), .rst_cc(t_rst)
    );

    logic dec, ok;
    assign dec = rx_valid && n_rx == 8'(CMD_LEN - 1);
    assign ok  = dec && cmd0[7:3] == 5'd0 && t_hit && pec15_q == {cmd2, rx_byte};

    assign act_en    = ok && t_kind == K_ACT;
    assign act_code  = t_code;
    assign rd_strobe = ok && t_kind == K_RD;
    assign rd_group  = t_code;
    assign rd_offset = t_off;

    // ---- window state
    logic         rd_ok, rd_err, wr_armed, poll_armed;
    logic [5:0]   rd_len;
    logic [3:0]   wcode_q, pcode_q;
    logic [255:0] snap;
    logic [2:0]   blk_pos;        // position in the current 8-byte write block
    logic         have_data, blk_ok;
    logic [47:0]  blk_data;
    logic [1:0]   blk_pec_hi;
    logic [9:0]   pec_rx, pec_tx;
    logic         in_data;
    logic         wr_apply;

    assign in_data  = rx_valid && n_rx >= 8'(CMD_LEN);
    assign wr_apply = stop && wr_armed && !partial && have_data && blk_pos == 3'd0 && blk_ok;

    // write blocks: PEC10 over the 6 data bytes, then the 6 counter bits of the first PEC byte
    pec10 u_pec_rx (
        .clk(clk), .rst_n(rst_n),
        .init(blk_pos == 3'd0), .data_valid(in_data && blk_pos < 3'd6), .data(rx_byte),
        .cc_valid(in_data && blk_pos == 3'd6), .cc(rx_byte[7:2]),
        .pec(pec_rx)
    );

    // ---- command counter
    logic cc_inc;
    assign cc_inc = (ok && t_kind == K_ACT && t_inc) || wr_apply;

    always_ff @(posedge clk) begin
        if (!rst_n)                          cc <= '0;
        else if (ok && t_kind == K_ACT && t_rst) cc <= '0;
        else if (cc_inc)                     cc <= (cc >= CC_MAX) ? 6'd1 : cc + 6'd1;
    end

    always_ff @(posedge clk) begin
        if (!rst_n || start || stop) begin
            n_rx       <= '0;
            rd_ok      <= 1'b0;
            rd_err     <= 1'b0;
            wr_armed   <= 1'b0;
            poll_armed <= 1'b0;
            blk_pos    <= '0;
            have_data  <= 1'b0;
            blk_ok     <= 1'b0;
        end else if (rx_valid) begin
            if (n_rx != 8'hFF) n_rx <= n_rx + 8'd1;
            if (n_rx == 8'd0) cmd0 <= rx_byte;
            if (n_rx == 8'd1) cmd1 <= rx_byte;
            if (n_rx == 8'd2) cmd2 <= rx_byte;
            if (ok) begin
                rd_ok      <= t_kind == K_RD;
                rd_err     <= t_kind == K_RD && t_code == G_STATC && opcode[6];  // RDSTATC ERR
                rd_len     <= t_len;
                wr_armed   <= t_kind == K_WR;
                poll_armed <= t_kind == K_POLL;
                wcode_q    <= t_code;
                pcode_q    <= t_code;
                snap       <= rd_data;
            end
            if (in_data) begin
                blk_pos <= blk_pos + 3'd1;  // wraps every BLOCK = 8 bytes
                if (blk_pos < 3'd6) blk_data[8 * blk_pos +: 8] <= rx_byte;
                if (blk_pos == 3'd6) blk_pec_hi <= rx_byte[1:0];
                if (blk_pos == 3'(BLOCK - 1)) begin
                    have_data <= 1'b1;
                    blk_ok    <= pec_rx == {blk_pec_hi, rx_byte};
                end
            end
        end
    end

    // ---- register write (one cycle after CS rose) and conversion strobes
    logic conv_cmd;
    assign conv_cmd = ok && t_kind == K_ACT && (t_code == A_ADCV || t_code == A_ADSV);

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            wr_en      <= 1'b0;
            adcv_start <= 1'b0;
            adsv_start <= 1'b0;
            conv_rd    <= 1'b0;
            conv_cont  <= 1'b0;
            conv_dcp   <= 1'b0;
            conv_rstf  <= 1'b0;
            conv_ow    <= 2'd0;
        end else begin
            wr_en      <= wr_apply;
            adcv_start <= conv_cmd && t_code == A_ADCV;
            adsv_start <= conv_cmd && t_code == A_ADSV;
            if (conv_cmd) begin  // ADCV / ADSV option bits (docs/protocol.md opcode table)
                conv_rd   <= opcode[8] && t_code == A_ADCV;
                conv_cont <= opcode[7];
                conv_dcp  <= opcode[4];
                conv_rstf <= opcode[2] && t_code == A_ADCV;
                conv_ow   <= opcode[1:0];
            end
        end
        if (wr_apply) begin
            wr_code <= wcode_q;
            wr_data <= blk_data;
        end
    end

    // ---- read reply
    logic [7:0] j;                // reply byte index (byte n_rx of the window)
    logic       pend_cc;
    logic       busy;

    assign j = n_rx - 8'(CMD_LEN);

    always_comb begin
        case (pcode_q)
            P_ADC:   busy = c_busy || s_busy;
            P_CADC:  busy = c_busy;
            P_SADC:  busy = s_busy;
            default: busy = 1'b0;
        endcase
    end

    always_comb begin
        tx_byte = 8'hFF;
        if (rd_ok && n_rx >= 8'(CMD_LEN)) begin
            if (j < 8'(rd_len))              tx_byte = snap[8 * j[4:0] +: 8];
            else if (j == 8'(rd_len))        tx_byte = {cc, pec_tx[9:8]};
            else if (j == 8'(rd_len) + 8'd1) tx_byte = pec_tx[7:0] ^ {7'd0, rd_err};
        end else if (poll_armed && n_rx >= 8'(CMD_LEN)) begin
            tx_byte = busy ? 8'h00 : 8'hFF;
        end
    end

    // PEC10 of the reply: each data byte as it is loaded into the shifter, then the counter.
    logic tx_data;
    assign tx_data = tx_load && rd_ok && n_rx >= 8'(CMD_LEN) && j < 8'(rd_len);

    pec10 u_pec_tx (
        .clk(clk), .rst_n(rst_n),
        .init(tx_data && j == 8'd0), .data_valid(tx_data), .data(tx_byte),
        .cc_valid(pend_cc), .cc(cc),
        .pec(pec_tx)
    );

    always_ff @(posedge clk) begin
        if (!rst_n) pend_cc <= 1'b0;
        else        pend_cc <= tx_data && j == 8'(rd_len) - 8'd1;
    end
endmodule
