"""Virtual battery pack: the truth the emulated monitor chip measures."""
