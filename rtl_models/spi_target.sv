// spi_target: SPI target (slave) of the ADBMS6830-class serial port, oversampled in the
// system clock domain, with a byte-level interface to the protocol core.
//
// Mode 3 (CPOL = 1, CPHA = 1), MSB first, CSB active low: SCK idles high; the target samples
// MOSI (SDI) on the rising SCK edge and changes MISO (SDO) on the falling edge, so the first
// bit of every byte goes out at the byte's first falling edge. Sources: the LTC6802-1
// datasheet, "Data Link Layer" ("configured to operate in a system using CPHA=1 and CPOL=1";
// SDI latched on the rising edge of SCKI, SDO transitions on the falling edge), the same
// family convention as the LTC681x/ADBMS683x parts; the atopile ADBMS6830 Saleae analyzer's
// setup (CPOL=1, CPHA=1, MSB first, CS active low). The ADBMS6830 datasheet was not
// available (docs/protocol.md).
//
// Clocking: CSB, SCK and MOSI are asynchronous; each passes a 2-flop synchroniser and SCK
// edges are detected in the clk domain, so clk must run at >= 8x the SCK rate (an SCK half
// period of >= 4 clk cycles): MISO changes 2..3 clk cycles after the SCK falling edge and the
// host samples it half an SCK period (>= 4 cycles) later, and the core gets >= 3 cycles
// between rx_valid and the next byte's tx_byte load (cmd_decoder needs 2). CSB must fall
// >= 4 clk cycles before the first SCK edge and rise >= 4 cycles after the last one. MOSI
// passes the same synchroniser depth as SCK, so it is taken as it was when SCK rose.
//
// Byte interface (all pulses one clk wide, registered):
//   start          CSB fell (a window opens);
//   rx_valid       rx_byte holds the byte just completed (8th rising edge);
//   tx_load        tx_byte was taken at this byte's first falling edge (the core presents the
//                  next reply byte on tx_byte before then; it is sampled, not held);
//   stop           CSB rose; partial = 1 if the window ended inside a byte (those bits are
//                  discarded: no rx_valid for them).
// SCK edges while CSB is high are ignored; MISO is 1 (idle, the 0xFF of an undriven line)
// whenever CSB is high.
//
// Clock / reset: rising edge of clk; rst_n synchronous, active low.
module spi_target (
    input  logic       clk,
    input  logic       rst_n,
    // SPI pins (asynchronous to clk)
    input  logic       csb,
    input  logic       sck,
    input  logic       mosi,
    output logic       miso,
    // byte interface to the core
    output logic       start,
    output logic       stop,
    output logic       partial,
    output logic       rx_valid,
    output logic [7:0] rx_byte,
    input  logic [7:0] tx_byte,
    output logic       tx_load
);
    // 2-flop synchronisers; the third SCK/CSB flop holds the previous value for edge detection.
    logic [1:0] csb_sync, mosi_sync;
    logic [2:0] sck_sync;
    logic       csb_q;
    logic       sel, sel_q;
    logic       sck_rise, sck_fall;
    logic [2:0] bit_cnt;
    logic [6:0] rx_sh;
    logic [6:0] tx_sh;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            csb_sync  <= 2'b11;
            sck_sync  <= 3'b111;
            mosi_sync <= 2'b11;
            csb_q     <= 1'b1;
        end else begin
            csb_sync  <= {csb_sync[0], csb};
            sck_sync  <= {sck_sync[1:0], sck};
            mosi_sync <= {mosi_sync[0], mosi};
            csb_q     <= csb_sync[1];
        end
    end

    assign sel      = !csb_sync[1];
    assign sel_q    = !csb_q;
    assign sck_rise = sel && sck_sync[1] && !sck_sync[2];
    assign sck_fall = sel && !sck_sync[1] && sck_sync[2];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            bit_cnt  <= '0;
            rx_sh    <= '0;
            tx_sh    <= '1;
            miso     <= 1'b1;
            start    <= 1'b0;
            stop     <= 1'b0;
            partial  <= 1'b0;
            rx_valid <= 1'b0;
            rx_byte  <= '0;
            tx_load  <= 1'b0;
        end else begin
            start    <= sel && !sel_q;
            stop     <= !sel && sel_q;
            partial  <= !sel && sel_q && (bit_cnt != 3'd0);
            rx_valid <= 1'b0;
            tx_load  <= 1'b0;
            if (!sel) begin
                bit_cnt <= '0;
                miso    <= 1'b1;
                tx_sh   <= '1;
            end else begin
                if (sck_rise) begin
                    rx_sh   <= {rx_sh[5:0], mosi_sync[1]};
                    bit_cnt <= bit_cnt + 3'd1;
                    if (bit_cnt == 3'd7) begin
                        rx_valid <= 1'b1;
                        rx_byte  <= {rx_sh, mosi_sync[1]};
                    end
                end
                if (sck_fall) begin
                    if (bit_cnt == 3'd0) begin  // first edge of a byte: take the reply byte
                        miso    <= tx_byte[7];
                        tx_sh   <= tx_byte[6:0];
                        tx_load <= 1'b1;
                    end else begin
                        miso  <= tx_sh[6];
                        tx_sh <= {tx_sh[5:0], 1'b1};
                    end
                end
            end
        end
    end
endmodule
