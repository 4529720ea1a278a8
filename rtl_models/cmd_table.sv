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
// Commands outside the subset (AUX, filtered results, PWM, COMM, SNAP, SRST, EIS, ...) are
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
                           A_CLOVUV = 4'd5, A_MUTE = 4'd6, A_UNMUTE = 4'd7, A_RSTCC = 4'd8;
    // write codes
    localparam logic [3:0] W_CFGA = 4'd1, W_CFGB = 4'd2, W_CLRFLAG = 4'd3;
    // poll codes: which converters a poll waits for (PLADC: C or S)
    localparam logic [3:0] P_ADC = 4'd1, P_CADC = 4'd2, P_SADC = 4'd3;
    // read groups
    localparam logic [3:0] G_CFGA = 4'd1, G_CFGB = 4'd2, G_CV = 4'd3, G_SV = 4'd4, G_AC = 4'd5,
                           G_STATC = 4'd6, G_STATD = 4'd7, G_STATE = 4'd8, G_SID = 4'd9;

    typedef struct packed {
        logic [10:0] base;
        logic [10:0] pmask;
        logic [1:0]  kind;
        logic [3:0]  code;
        logic [4:0]  offset;
        logic [5:0]  len;
        logic        inc;
        logic        rst;
    } entry_t;

    localparam int N = 41;
    // (base, parameter mask, kind, code, offset, len, inc, rst); opcodes: docs/protocol.md
    // "Opcode table" (REF, FOX, ADI-LIB). Parameter masks: ADCV RD|CONT|DCP|RSTF|OW = 0x197,
    // ADSV CONT|DCP|OW = 0x093, RDSTATC ERR = 0x040.
    localparam entry_t TABLE [N] = '{
        '{11'h260, 11'h197, K_ACT,  A_ADCV,    5'd0,  6'd0,  1'b1, 1'b0},  // ADCV
        '{11'h168, 11'h093, K_ACT,  A_ADSV,    5'd0,  6'd0,  1'b1, 1'b0},  // ADSV
        '{11'h711, 11'h000, K_ACT,  A_CLRCELL, 5'd0,  6'd0,  1'b1, 1'b0},  // CLRCELL
        '{11'h716, 11'h000, K_ACT,  A_CLRSPIN, 5'd0,  6'd0,  1'b1, 1'b0},  // CLRSPIN
        '{11'h715, 11'h000, K_ACT,  A_CLOVUV,  5'd0,  6'd0,  1'b1, 1'b0},  // CLOVUV
        '{11'h028, 11'h000, K_ACT,  A_MUTE,    5'd0,  6'd0,  1'b1, 1'b0},  // MUTE
        '{11'h029, 11'h000, K_ACT,  A_UNMUTE,  5'd0,  6'd0,  1'b1, 1'b0},  // UNMUTE
        '{11'h02E, 11'h000, K_ACT,  A_RSTCC,   5'd0,  6'd0,  1'b0, 1'b1},  // RSTCC
        '{11'h001, 11'h000, K_WR,   W_CFGA,    5'd0,  6'd6,  1'b1, 1'b0},  // WRCFGA
        '{11'h024, 11'h000, K_WR,   W_CFGB,    5'd0,  6'd6,  1'b1, 1'b0},  // WRCFGB
        '{11'h717, 11'h000, K_WR,   W_CLRFLAG, 5'd0,  6'd6,  1'b1, 1'b0},  // CLRFLAG
        '{11'h718, 11'h000, K_POLL, P_ADC,     5'd0,  6'd0,  1'b0, 1'b0},  // PLADC
        '{11'h71C, 11'h000, K_POLL, P_CADC,    5'd0,  6'd0,  1'b0, 1'b0},  // PLCADC
        '{11'h71D, 11'h000, K_POLL, P_SADC,    5'd0,  6'd0,  1'b0, 1'b0},  // PLSADC
        '{11'h002, 11'h000, K_RD,   G_CFGA,    5'd0,  6'd6,  1'b0, 1'b0},  // RDCFGA
        '{11'h026, 11'h000, K_RD,   G_CFGB,    5'd0,  6'd6,  1'b0, 1'b0},  // RDCFGB
        '{11'h004, 11'h000, K_RD,   G_CV,      5'd0,  6'd6,  1'b0, 1'b0},  // RDCVA
        '{11'h006, 11'h000, K_RD,   G_CV,      5'd6,  6'd6,  1'b0, 1'b0},  // RDCVB
        '{11'h008, 11'h000, K_RD,   G_CV,      5'd12, 6'd6,  1'b0, 1'b0},  // RDCVC
        '{11'h00A, 11'h000, K_RD,   G_CV,      5'd18, 6'd6,  1'b0, 1'b0},  // RDCVD
        '{11'h009, 11'h000, K_RD,   G_CV,      5'd24, 6'd6,  1'b0, 1'b0},  // RDCVE
        '{11'h00B, 11'h000, K_RD,   G_CV,      5'd30, 6'd6,  1'b0, 1'b0},  // RDCVF
        '{11'h00C, 11'h000, K_RD,   G_CV,      5'd0,  6'd32, 1'b0, 1'b0},  // RDCVALL
        '{11'h003, 11'h000, K_RD,   G_SV,      5'd0,  6'd6,  1'b0, 1'b0},  // RDSVA
        '{11'h005, 11'h000, K_RD,   G_SV,      5'd6,  6'd6,  1'b0, 1'b0},  // RDSVB
        '{11'h007, 11'h000, K_RD,   G_SV,      5'd12, 6'd6,  1'b0, 1'b0},  // RDSVC
        '{11'h00D, 11'h000, K_RD,   G_SV,      5'd18, 6'd6,  1'b0, 1'b0},  // RDSVD
        '{11'h00E, 11'h000, K_RD,   G_SV,      5'd24, 6'd6,  1'b0, 1'b0},  // RDSVE
        '{11'h00F, 11'h000, K_RD,   G_SV,      5'd30, 6'd6,  1'b0, 1'b0},  // RDSVF
        '{11'h010, 11'h000, K_RD,   G_SV,      5'd0,  6'd32, 1'b0, 1'b0},  // RDSVALL
        '{11'h044, 11'h000, K_RD,   G_AC,      5'd0,  6'd6,  1'b0, 1'b0},  // RDACA
        '{11'h046, 11'h000, K_RD,   G_AC,      5'd6,  6'd6,  1'b0, 1'b0},  // RDACB
        '{11'h048, 11'h000, K_RD,   G_AC,      5'd12, 6'd6,  1'b0, 1'b0},  // RDACC
        '{11'h04A, 11'h000, K_RD,   G_AC,      5'd18, 6'd6,  1'b0, 1'b0},  // RDACD
        '{11'h049, 11'h000, K_RD,   G_AC,      5'd24, 6'd6,  1'b0, 1'b0},  // RDACE
        '{11'h04B, 11'h000, K_RD,   G_AC,      5'd30, 6'd6,  1'b0, 1'b0},  // RDACF
        '{11'h04C, 11'h000, K_RD,   G_AC,      5'd0,  6'd32, 1'b0, 1'b0},  // RDACALL
        '{11'h032, 11'h040, K_RD,   G_STATC,   5'd0,  6'd6,  1'b0, 1'b0},  // RDSTATC (ERR)
        '{11'h033, 11'h000, K_RD,   G_STATD,   5'd0,  6'd6,  1'b0, 1'b0},  // RDSTATD
        '{11'h034, 11'h000, K_RD,   G_STATE,   5'd0,  6'd6,  1'b0, 1'b0},  // RDSTATE
        '{11'h02C, 11'h000, K_RD,   G_SID,     5'd0,  6'd6,  1'b0, 1'b0}   // RDSID
    };

    entry_t e;

    // At most one entry matches (the model's decode table has no collisions); OR-reduce.
    always_comb begin
        e   = '0;
        hit = 1'b0;
        for (int i = 0; i < N; i++) begin
            if ((opcode & ~TABLE[i].pmask) == TABLE[i].base) begin
                e   = e | TABLE[i];
                hit = 1'b1;
            end
        end
    end

    assign kind   = e.kind;
    assign code   = e.code;
    assign offset = e.offset;
    assign len    = e.len;
    assign inc_cc = e.inc;
    assign rst_cc = e.rst;
endmodule
