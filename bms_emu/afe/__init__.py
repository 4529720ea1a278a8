"""Analog front end of the monitor chip: reference, trim, front end, ADC paths."""
