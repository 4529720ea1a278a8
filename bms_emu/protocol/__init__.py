"""ADBMS6830-compatible SPI protocol: PEC15/PEC10, command counter, opcode tables."""
