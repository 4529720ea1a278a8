// afe_regfile: register-file subset of the ADBMS6830-class device (golden model:
// bms_emu.device.device.Device: its writable masks, power-on values, flag rules and the
// bytes each read returns; layouts: bms_emu.protocol.registers.LAYOUTS).
//
// Held here: CFGA, CFGB; the C, S and averaged (AC) result banks (16 signed 16-bit codes
// each) and their SNAP copies (SNAP freezes what reads return while results keep landing;
// UNSNAP shows the latest; clears reach both, as in the model); the sticky STATC flags (CSxFLT and bytes 4-5), the 13-bit conversion counter
// CT:CTS, the STATD cell OV/UV bits. Read-only views: STATD OC_CNTR, STATE (GPI = GPO
// read-back, REV), SID.
//
// SPI side (from cmd_decoder; codes as in cmd_table):
//   wr_en + wr_code + wr_data   write command accepted (W_CFGA 1, W_CFGB 2, W_CLRFLAG 3);
//   act_en + act_code           action accepted (A_CLRCELL 3, A_CLRSPIN 4, A_CLOVUV 5,
//                               A_MUTE 6, A_UNMUTE 7, A_SNAP 9, A_UNSNAP 10; other codes are
//                               not register actions);
//   rd_group, rd_offset -> rd_data (combinational): up to 32 bytes, byte k at [8k +: 8]
//                               (G_CFGA 1, G_CFGB 2, G_CV 3, G_SV 4, G_AC 5, G_STATC 6,
//                               G_STATD 7, G_STATE 8, G_SID 9); a result group is the 36-byte
//                               bank view (16 codes little-endian, then 0xFFFF 0xFFFF: group F's
//                               unused slots) from byte rd_offset on;
//   rd_strobe                   a read of rd_group was accepted: STATC/STATD reads latch the
//                               monitor flags (the model samples its monitors on those reads).
// Datapath side (result-load port, one clk pulse per conversion result):
//   c_load + c_codes            C results (code of channel i at [16i +: 16]); CT:CTS += 1, the
//                               OV/UV bits are recomputed against CFGB VUV/VOV, monitor flags
//                               latched;
//   ac_load + ac_codes          averaged results (every 8th C result of a run);
//   s_load + s_codes            S results; csflt_set (C-vs-S mismatches of this compare) and
//                               comp_set (comparator fault) are ORed into the sticky flags;
//   mon_flags                   live analog monitors in STATC byte 4-5 bit order (bit k =
//                               STATC bit 32 + k: SMED SED CMED CED VD_UV VD_OV VA_UV VA_OV
//                               OSCCHK TMODCHK THSD SLEEP SPIFLT COMP VDEL VDE).
// Outputs: the configuration words and the fields the datapath needs (cth, fc, refon, dcc,
// mute) and the sticky CSxFLT bits. In a cycle with both an SPI clear and a load, the
// clear wins for the result banks; flag sets and clears are combined bit by bit.
//
// Clock / reset: rising edge of clk; rst_n synchronous, active low: power-on values (results
// 0x7FFF, CFGA GPO = 0x3FF, everything else 0).
module afe_regfile #(
    parameter logic [47:0] SID = 48'h0,
    parameter logic [3:0]  REV = 4'h0
) (
    input  logic         clk,
    input  logic         rst_n,
    // SPI side
    input  logic         wr_en,
    input  logic [3:0]   wr_code,
    input  logic [47:0]  wr_data,
    input  logic         act_en,
    input  logic [3:0]   act_code,
    input  logic [3:0]   rd_group,
    input  logic [4:0]   rd_offset,
    input  logic         rd_strobe,
    output logic [255:0] rd_data,
    // datapath side
    input  logic         c_load,
    input  logic [255:0] c_codes,
    input  logic         ac_load,
    input  logic [255:0] ac_codes,
    input  logic         s_load,
    input  logic [255:0] s_codes,
    input  logic [15:0]  csflt_set,
    input  logic         comp_set,
    input  logic [15:0]  mon_flags,
    output logic [47:0]  cfga,
    output logic [47:0]  cfgb,
    output logic [2:0]   cth,
    output logic [2:0]   fc,
    output logic         refon,
    output logic [15:0]  dcc,
    output logic         mute,
    output logic [15:0]  csflt
);
    localparam logic [3:0] W_CFGA = 4'd1, W_CFGB = 4'd2, W_CLRFLAG = 4'd3;
    localparam logic [3:0] A_CLRCELL = 4'd3, A_CLRSPIN = 4'd4, A_CLOVUV = 4'd5,
                           A_MUTE = 4'd6, A_UNMUTE = 4'd7, A_SNAP = 4'd9, A_UNSNAP = 4'd10;
    localparam logic [3:0] G_CFGA = 4'd1, G_CFGB = 4'd2, G_CV = 4'd3, G_SV = 4'd4, G_AC = 4'd5,
                           G_STATC = 4'd6, G_STATD = 4'd7, G_STATE = 4'd8, G_SID = 4'd9;
    // Writable CFGA bits: every CFGA field but MUTE_ST/SNAP_ST (read-only status), i.e. CTH
    // 0-2, REFON 7, FLAG_D 8-15, OWA 19-21, OWRNG 22, SOAKON 23, GPO 24-33, FC 40-42, COMM_BK
    // 43 (registers.LAYOUTS["CFGA"]; device._WRITE_MASK). CFGB: every bit is a field.
    localparam logic [47:0] CFGA_MASK = 48'h0F03_FFF8_FF87;
    localparam logic [47:0] CFGA_POR  = 48'h0003_FF00_0000;  // GPO = 0x3FF (device._POR_WORDS)
    // CLRFLAG data clears these flag bits (STATC byte 4-5 order); COMP (bit 5 of byte 5) is
    // not clearable (registers.LAYOUTS["CLRFLAG"]).
    localparam logic [15:0] CLR_FLAG_MASK = 16'hDFFF;
    localparam logic [15:0] POR_CODE = 16'h7FFF, CLEARED_CODE = 16'h8000;  // registers.py
    // STATC byte 4-5 bit numbers (registers._STATC4/_STATC5)
    localparam int SMED = 0, SED = 1, CMED = 2, CED = 3, VD_UV = 4, VD_OV = 5, VA_UV = 6,
                   VA_OV = 7, OSCCHK = 8, TMODCHK = 9, THSD = 10, COMP = 13;
    // STATD OC_CNTR: nominal 61, FLAG_D bit 0 / bit 1 force fast / slow (device._oc_counter)
    localparam logic [7:0] OC_NOM = 8'd61, OC_FAST = 8'd80, OC_SLOW = 8'd40;

    logic [47:0]  cfga_q, cfgb_q;
    logic [255:0] cv_q, sv_q, ac_q;      // live results
    logic [255:0] cv_fz, sv_fz, ac_fz;   // what reads return while snapped
    logic         snap_q;
    logic [15:0]  csflt_q, flg_q;
    logic [12:0]  ct_q;
    logic [31:0]  ovuv_q, ovuv_new;
    logic         mute_q;
    logic [15:0]  forced, forced_wr, mon_now;

    // STATC bits forced by CFGA FLAG_D (device._forced_flags), for the current and for a
    // just-written CFGA.
    function automatic logic [15:0] forced_flags(input logic [7:0] d);
        logic [15:0] m;
        m = '0;
        if (d[1:0] != 2'b00) m[OSCCHK] = 1'b1;
        if (d[2]) begin
            if (d[3]) begin m[VA_OV] = 1'b1; m[VD_OV] = 1'b1; end
            else      begin m[VA_UV] = 1'b1; m[VD_UV] = 1'b1; end
        end
        if (d[4]) m[THSD] = 1'b1;
        if (d[5]) begin m[CED] = 1'b1; m[SED] = 1'b1; end
        if (d[6]) begin m[CMED] = 1'b1; m[SMED] = 1'b1; end
        if (d[7]) m[TMODCHK] = 1'b1;
        return m;
    endfunction

    assign forced    = forced_flags(cfga_q[15:8]);
    assign forced_wr = forced_flags(wr_data[15:8]);
    assign mon_now   = mon_flags | forced;

    // Cell OV/UV against the 12-bit signed thresholds x 16 (device._update_ovuv): bit 2i UV
    // (code < VUV*16), bit 2i+1 OV (code > VOV*16).
    always_comb begin
        logic signed [15:0] uv, ov, code;
        uv = {cfgb_q[11:0], 4'b0000};
        ov = {cfgb_q[23:12], 4'b0000};
        for (int i = 0; i < 16; i++) begin
            code = c_codes[16 * i +: 16];
            ovuv_new[2 * i]     = code < uv;
            ovuv_new[2 * i + 1] = code > ov;
        end
    end

    logic wr_cfga, wr_cfgb, wr_clr, do_clrcell, do_clrspin, do_clovuv, rd_mon;
    assign wr_cfga    = wr_en && wr_code == W_CFGA;
    assign wr_cfgb    = wr_en && wr_code == W_CFGB;
    assign wr_clr     = wr_en && wr_code == W_CLRFLAG;
    assign do_clrcell = act_en && act_code == A_CLRCELL;
    assign do_clrspin = act_en && act_code == A_CLRSPIN;
    assign do_clovuv  = act_en && act_code == A_CLOVUV;
    assign rd_mon     = rd_strobe && (rd_group == G_STATC || rd_group == G_STATD);

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            cfga_q  <= CFGA_POR;
            cfgb_q  <= '0;
            cv_q    <= {16{POR_CODE}};
            sv_q    <= {16{POR_CODE}};
            ac_q    <= {16{POR_CODE}};
            csflt_q <= '0;
            flg_q   <= '0;
            ct_q    <= '0;
            ovuv_q  <= '0;
            mute_q  <= 1'b0;
            snap_q  <= 1'b0;
            cv_fz   <= {16{POR_CODE}};
            sv_fz   <= {16{POR_CODE}};
            ac_fz   <= {16{POR_CODE}};
        end else begin
            // configuration
            if (wr_cfga) cfga_q <= wr_data & CFGA_MASK;
            if (wr_cfgb) cfgb_q <= wr_data;
            if (act_en && act_code == A_MUTE)   mute_q <= 1'b1;
            if (act_en && act_code == A_UNMUTE) mute_q <= 1'b0;
            // result banks: loads, then clears
            if (c_load)  cv_q <= c_codes;
            if (ac_load) ac_q <= ac_codes;
            if (s_load)  sv_q <= s_codes;
            if (do_clrcell) begin
                cv_q <= {16{CLEARED_CODE}};
                ac_q <= {16{CLEARED_CODE}};
            end
            if (do_clrspin) sv_q <= {16{CLEARED_CODE}};
            // SNAP: freeze the visible results (a second SNAP keeps the first freeze)
            if (act_en && act_code == A_SNAP && !snap_q) begin
                snap_q <= 1'b1;
                cv_fz  <= cv_q;
                sv_fz  <= sv_q;
                ac_fz  <= ac_q;
            end
            if (act_en && act_code == A_UNSNAP) snap_q <= 1'b0;
            if (do_clrcell) begin  // the model's clears write the visible registers too
                cv_fz <= {16{CLEARED_CODE}};
                ac_fz <= {16{CLEARED_CODE}};
            end
            if (do_clrspin) sv_fz <= {16{CLEARED_CODE}};
            if (c_load) ct_q <= ct_q + 13'd1;  // wraps at 13 bits like the model's & 0x1FFF
            if (do_clovuv)   ovuv_q <= '0;
            else if (c_load) ovuv_q <= ovuv_new;
            // sticky flags: sets from loads / monitors / forced bits, clears from CLRFLAG
            begin
                logic [15:0] cs, fl;
                cs = csflt_q;
                fl = flg_q;
                if (c_load || rd_mon) fl = fl | mon_now;
                if (s_load) begin
                    cs = cs | csflt_set;
                    if (comp_set) fl[COMP] = 1'b1;
                end
                if (wr_cfga) fl = fl | forced_wr;
                if (wr_clr) begin
                    cs = cs & ~wr_data[15:0];
                    fl = (fl & ~(wr_data[47:32] & CLR_FLAG_MASK)) | forced;
                end
                csflt_q <= cs;
                flg_q   <= fl;
            end
        end
    end

    // Read views (48-bit words are little-endian groups: byte k = bits [8k +: 8]).
    logic [287:0] bank;
    logic [47:0]  statc_w, statd_w, state_w;
    logic [7:0]   oc_cntr;
    logic [47:0]  cfga_rd;

    // CFGA as read: MUTE_ST (bit 44) and SNAP_ST (45) from the mute / snap state; both are 0 in
    // cfga_q (CFGA_MASK).
    assign cfga_rd = cfga_q | {2'b00, snap_q, mute_q, 44'h0};

    always_comb begin
        case (rd_group)
            G_SV:    bank = {32'hFFFF_FFFF, snap_q ? sv_fz : sv_q};
            G_AC:    bank = {32'hFFFF_FFFF, snap_q ? ac_fz : ac_q};
            default: bank = {32'hFFFF_FFFF, snap_q ? cv_fz : cv_q};
        endcase
    end

    // STATC: CSFLT bytes 0-1; CT[10:6] = ct[12:8] at 2.0-4; CTS = ct[1:0] at 3.0-1, CT[5:0] =
    // ct[7:2] at 3.2-7; flags bytes 4-5 (monitors as sampled by this read).
    assign statc_w = {flg_q | mon_now, ct_q[7:2], ct_q[1:0], 3'b000, ct_q[12:8], csflt_q};
    assign oc_cntr = cfga_q[8] ? OC_FAST : (cfga_q[9] ? OC_SLOW : OC_NOM);
    assign statd_w = {oc_cntr, 8'h00, ovuv_q};
    assign state_w = {REV, 2'b00, cfga_q[33:24], 32'h0};  // GPI reads back GPO

    always_comb begin
        rd_data = '1;
        case (rd_group)
            G_CFGA:  rd_data[47:0] = cfga_rd;
            G_CFGB:  rd_data[47:0] = cfgb_q;
            G_CV, G_SV, G_AC: rd_data = 256'(bank >> (8 * rd_offset));
            G_STATC: rd_data[47:0] = statc_w;
            G_STATD: rd_data[47:0] = statd_w;
            G_STATE: rd_data[47:0] = state_w;
            G_SID:   rd_data[47:0] = SID;
            default: ;
        endcase
    end

    assign cfga  = cfga_rd;
    assign cfgb  = cfgb_q;
    assign cth   = cfga_q[2:0];
    assign refon = cfga_q[7];
    assign fc    = cfga_q[42:40];
    assign dcc   = cfgb_q[47:32];
    assign mute  = mute_q;
    assign csflt = csflt_q;
endmodule
