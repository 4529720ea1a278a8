// cmd_table: the RTL command subset as a table (golden model:
// bms_emu.protocol.opcodes.COMMANDS / decode_opcode, restricted to the commands below).
//
// Combinational. An 11-bit opcode (CMD0[2:0], CMD1) matches an entry when it equals the
// entry's base opcode outside the entry's parameter bits (the model's submask table); the
// caller checks CMD0[7:3] == 0. Kinds, counter rules and data lengths are the model's.
// Parameter values are plain opcode bits (ADCV: RD 8, CONT 7, DCP 4, RSTF 2, OW 1..0; ADSV:
// CONT 7, DCP 4, OW 1..0; RDSTATC: ERR 6) and are taken from the opcode by the caller.
//
// Outputs for a hit:
//   kind   0 action, 1 write, 2 read, 3 poll
//   code   action / write / poll / read-group number (the A_*, W_*, P_*, G_* lists below;
//          afe_regfile and cmd_decoder use the same numbers)
//   offset byte offset of a result group inside its 16-code bank (0, 6, ..., 30)
//   len    data bytes per device (6, or 32 for the *ALL reads)
//   inc_cc / rst_cc: the command increments / resets the 6-bit command counter.
// Commands outside the subset (AUX, filtered results, PWM, COMM, SRST, EIS, ...) are
// unknown here: the RTL ignores them like a bad opcode (rtl_models/README.md).
module cmd_table (
    input  logic [10:0] opcode,
    output logic        hit,
    output logic [1:0]  kind,
    output logic [3:0]  code,
    output logic [4:0]  offset,
    output logic [5:0]  len,
    output logic        inc_cc,
    output logic        rst_cc
);
    localparam logic [1:0] K_ACT = 2'd0, K_WR = 2'd1, K_RD = 2'd2, K_POLL = 2'd3;
    // action codes
    localparam logic [3:0] A_ADCV = 4'd1, A_ADSV = 4'd2, A_CLRCELL = 4'd3, A_CLRSPIN = 4'd4,
                           A_CLOVUV = 4'd5, A_MUTE = 4'd6, A_UNMUTE = 4'd7, A_RSTCC = 4'd8,
                           A_SNAP = 4'd9, A_UNSNAP = 4'd10;
    // write codes
    localparam logic [3:0] W_CFGA = 4'd1, W_CFGB = 4'd2, W_CLRFLAG = 4'd3;
    // poll codes: which converters a poll waits for (PLADC: C or S)
    localparam logic [3:0] P_ADC = 4'd1, P_CADC = 4'd2, P_SADC = 4'd3;
    // read groups
    localparam logic [3:0] G_CFGA = 4'd1, G_CFGB = 4'd2, G_CV = 4'd3, G_SV = 4'd4, G_AC = 4'd5,
                           G_STATC = 4'd6, G_STATD = 4'd7, G_STATE = 4'd8, G_SID = 4'd9;

    // Entry layout, MSB first: base[10:0], pmask[10:0], kind[1:0], code[3:0], offset[4:0],
    // len[5:0], inc, rst (41 bits).
    localparam int ENTRY_W = 41;
    localparam int N = 43;

    // (base, parameter mask, kind, code, offset, len, inc, rst) per entry; opcodes:
    // docs/protocol.md "Opcode table" (REF, FOX, ADI-LIB). Parameter masks: ADCV
    // RD|CONT|DCP|RSTF|OW = 0x197, ADSV CONT|DCP|OW = 0x093, RDSTATC ERR = 0x040. A case ROM
    // rather than a parameter array of structs, so Icarus 11 reads it too.
    function automatic logic [ENTRY_W-1:0] entry(input int i);
        case (i)
             0: entry = {11'h260, 11'h197, K_ACT,  A_ADCV,    5'd0,  6'd0,  1'b1, 1'b0};  // ADCV
             1: entry = {11'h168, 11'h093, K_ACT,  A_ADSV,    5'd0,  6'd0,  1'b1, 1'b0};  // ADSV
             2: entry = {11'h711, 11'h000, K_ACT,  A_CLRCELL, 5'd0,  6'd0,  1'b1, 1'b0};  // CLRCELL
             3: entry = {11'h716, 11'h000, K_ACT,  A_CLRSPIN, 5'd0,  6'd0,  1'b1, 1'b0};  // CLRSPIN
             4: entry = {11'h715, 11'h000, K_ACT,  A_CLOVUV,  5'd0,  6'd0,  1'b1, 1'b0};  // CLOVUV
             5: entry = {11'h028, 11'h000, K_ACT,  A_MUTE,    5'd0,  6'd0,  1'b1, 1'b0};  // MUTE
             6: entry = {11'h029, 11'h000, K_ACT,  A_UNMUTE,  5'd0,  6'd0,  1'b1, 1'b0};  // UNMUTE
             7: entry = {11'h02E, 11'h000, K_ACT,  A_RSTCC,   5'd0,  6'd0,  1'b0, 1'b1};  // RSTCC
             8: entry = {11'h001, 11'h000, K_WR,   W_CFGA,    5'd0,  6'd6,  1'b1, 1'b0};  // WRCFGA
             9: entry = {11'h024, 11'h000, K_WR,   W_CFGB,    5'd0,  6'd6,  1'b1, 1'b0};  // WRCFGB
            10: entry = {11'h717, 11'h000, K_WR,   W_CLRFLAG, 5'd0,  6'd6,  1'b1, 1'b0};  // CLRFLAG
            11: entry = {11'h718, 11'h000, K_POLL, P_ADC,     5'd0,  6'd0,  1'b0, 1'b0};  // PLADC
            12: entry = {11'h71C, 11'h000, K_POLL, P_CADC,    5'd0,  6'd0,  1'b0, 1'b0};  // PLCADC
            13: entry = {11'h71D, 11'h000, K_POLL, P_SADC,    5'd0,  6'd0,  1'b0, 1'b0};  // PLSADC
            14: entry = {11'h002, 11'h000, K_RD,   G_CFGA,    5'd0,  6'd6,  1'b0, 1'b0};  // RDCFGA
            15: entry = {11'h026, 11'h000, K_RD,   G_CFGB,    5'd0,  6'd6,  1'b0, 1'b0};  // RDCFGB
            16: entry = {11'h004, 11'h000, K_RD,   G_CV,      5'd0,  6'd6,  1'b0, 1'b0};  // RDCVA
            17: entry = {11'h006, 11'h000, K_RD,   G_CV,      5'd6,  6'd6,  1'b0, 1'b0};  // RDCVB
            18: entry = {11'h008, 11'h000, K_RD,   G_CV,      5'd12, 6'd6,  1'b0, 1'b0};  // RDCVC
            19: entry = {11'h00A, 11'h000, K_RD,   G_CV,      5'd18, 6'd6,  1'b0, 1'b0};  // RDCVD
            20: entry = {11'h009, 11'h000, K_RD,   G_CV,      5'd24, 6'd6,  1'b0, 1'b0};  // RDCVE
            21: entry = {11'h00B, 11'h000, K_RD,   G_CV,      5'd30, 6'd6,  1'b0, 1'b0};  // RDCVF
            22: entry = {11'h00C, 11'h000, K_RD,   G_CV,      5'd0,  6'd32, 1'b0, 1'b0};  // RDCVALL
            23: entry = {11'h003, 11'h000, K_RD,   G_SV,      5'd0,  6'd6,  1'b0, 1'b0};  // RDSVA
            24: entry = {11'h005, 11'h000, K_RD,   G_SV,      5'd6,  6'd6,  1'b0, 1'b0};  // RDSVB
            25: entry = {11'h007, 11'h000, K_RD,   G_SV,      5'd12, 6'd6,  1'b0, 1'b0};  // RDSVC
            26: entry = {11'h00D, 11'h000, K_RD,   G_SV,      5'd18, 6'd6,  1'b0, 1'b0};  // RDSVD
            27: entry = {11'h00E, 11'h000, K_RD,   G_SV,      5'd24, 6'd6,  1'b0, 1'b0};  // RDSVE
            28: entry = {11'h00F, 11'h000, K_RD,   G_SV,      5'd30, 6'd6,  1'b0, 1'b0};  // RDSVF
            29: entry = {11'h010, 11'h000, K_RD,   G_SV,      5'd0,  6'd32, 1'b0, 1'b0};  // RDSVALL
            30: entry = {11'h044, 11'h000, K_RD,   G_AC,      5'd0,  6'd6,  1'b0, 1'b0};  // RDACA
            31: entry = {11'h046, 11'h000, K_RD,   G_AC,      5'd6,  6'd6,  1'b0, 1'b0};  // RDACB
            32: entry = {11'h048, 11'h000, K_RD,   G_AC,      5'd12, 6'd6,  1'b0, 1'b0};  // RDACC
            33: entry = {11'h04A, 11'h000, K_RD,   G_AC,      5'd18, 6'd6,  1'b0, 1'b0};  // RDACD
            34: entry = {11'h049, 11'h000, K_RD,   G_AC,      5'd24, 6'd6,  1'b0, 1'b0};  // RDACE
            35: entry = {11'h04B, 11'h000, K_RD,   G_AC,      5'd30, 6'd6,  1'b0, 1'b0};  // RDACF
            36: entry = {11'h04C, 11'h000, K_RD,   G_AC,      5'd0,  6'd32, 1'b0, 1'b0};  // RDACALL
            37: entry = {11'h032, 11'h040, K_RD,   G_STATC,   5'd0,  6'd6,  1'b0, 1'b0};  // RDSTATC (ERR)
            38: entry = {11'h033, 11'h000, K_RD,   G_STATD,   5'd0,  6'd6,  1'b0, 1'b0};  // RDSTATD
            39: entry = {11'h034, 11'h000, K_RD,   G_STATE,   5'd0,  6'd6,  1'b0, 1'b0};  // RDSTATE
            40: entry = {11'h02C, 11'h000, K_RD,   G_SID,     5'd0,  6'd6,  1'b0, 1'b0};  // RDSID
            41: entry = {11'h02D, 11'h000, K_ACT,  A_SNAP,    5'd0,  6'd0,  1'b1, 1'b0};  // SNAP
            42: entry = {11'h02F, 11'h000, K_ACT,  A_UNSNAP,  5'd0,  6'd0,  1'b1, 1'b0};  // UNSNAP
            default: entry = '0;
        endcase
    endfunction

    logic [ENTRY_W-1:0] e, t;

    // At most one entry matches (the model's decode table has no collisions); OR-reduce.
    always_comb begin
        e   = '0;
        hit = 1'b0;
        for (int i = 0; i < N; i++) begin
            t = entry(i);
            if ((opcode & ~t[29:19]) == t[40:30]) begin
                e   = e | t;
                hit = 1'b1;
            end
        end
    end

    assign kind   = e[18:17];
    assign code   = e[16:13];
    assign offset = e[12:8];
    assign len    = e[7:2];
    assign inc_cc = e[1];
    assign rst_cc = e[0];
endmodule
